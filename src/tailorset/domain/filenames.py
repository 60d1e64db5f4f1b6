"""File and folder names that are safe on Windows, macOS and Linux, from text a user chose.

Export archives are unpacked on any of them: a name must not be a Windows device (`CON.png` opens
the console, not a file), hide its true extension behind a right-to-left override, end in a dot or
space (Windows drops them, so two names collide), or exceed what a filesystem stores."""

from __future__ import annotations

import re
import unicodedata

# Windows' device names, reserved with any extension and in any case (and COM¹-COM³, LPT¹-LPT³ too).
RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{device}{n}" for device in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)
_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
# Format characters (bidi overrides, zero-width) are invisible: dropped. Control, surrogate, private-use,
# unassigned and line/paragraph separators become `_`.
_DROPPED = "Cf"
_REPLACED = frozenset(["Cc", "Cs", "Co", "Cn", "Zl", "Zp"])
MAX_BYTES = 200  # UTF-8 bytes of a stem: under every filesystem's 255, with room for a suffix and an extension


def portable_name(text: str, max_bytes: int = MAX_BYTES) -> str:
    """`text` as one path component every filesystem accepts and shows as it is ("" when nothing is left).

    Invisible characters are dropped and other unsafe ones become `_`; the name is NFC (macOS stores NFD,
    so names compare composed), cut to `max_bytes` of UTF-8 and stripped of leading and trailing dots and
    spaces; a device name gains a `_`."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(_clean(c) for c in text)
    text = re.sub("\0+", "_", text).strip(" .")
    text = text.encode()[:max_bytes].decode(errors="ignore").strip(" .")
    device, dot, rest = text.partition(".")
    if device.rstrip(" ").upper() in RESERVED:
        text = f"{device}_{dot}{rest}"
    return text


def _clean(c: str) -> str:
    category = unicodedata.category(c)
    return "" if category == _DROPPED else "\0" if category in _REPLACED or _FORBIDDEN.match(c) else c

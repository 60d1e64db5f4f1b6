"""Which characters stored text may hold: one rule for every field, a stricter one for captions."""

from __future__ import annotations

import re

# NUL cannot be stored in PostgreSQL text, and a lone surrogate (JSON "\ud800") cannot be encoded as UTF-8 at all.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A caption is text a trainer reads line by line: no control characters but tab and newline (C0, DEL and C1).
_CAPTION_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _describe(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate (\\u{ord(char):04x}), which is not valid Unicode"
    if char == "\x00":
        return "NUL (\\x00) characters"
    return f"a control character (\\x{ord(char):02x}); only tab and newline are allowed"


def unstorable(text: str) -> str | None:
    """What makes `text` impossible to store ("must not contain …"), or None."""
    found = _UNSTORABLE.search(text)
    return f"must not contain {_describe(found[0])}" if found else None


def caption_problem(text: str) -> str | None:
    """What makes `text` unfit as a caption's characters ("must not contain …"), or None."""
    found = _CAPTION_UNSAFE.search(text)
    return f"must not contain {_describe(found[0])}" if found else None

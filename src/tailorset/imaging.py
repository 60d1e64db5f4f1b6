"""Checking uploaded images and deriving what the service keeps from them (pure Pillow, no I/O)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from tailorset.domain.errors import Invalid, PreconditionFailed, TooLarge, UnsupportedMedia

# Judged by content, never by file name or declared type.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
# Other image formats people try, told by their first bytes (never parsed), so the 415 can name them.
OTHER_SIGNATURES = ((b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"))
OTHER_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}  # ISO-BMFF "ftyp" brands


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str
    image: Image.Image  # decoded once, here; captioning and the thumbnail reuse it


def decode_base64(text: str, field: str) -> bytes:
    """Image bytes from base64, also accepting the data: URLs browsers produce."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{field} is not valid base64.") from None


def check_upload(
    data: bytes, *, max_bytes: int, max_pixels: int, min_side: int, what: str = "The image"
) -> CheckedImage:
    """Accept a JPEG, PNG or WebP that decodes fully, is not a decompression bomb and is big enough."""
    if len(data) > max_bytes:
        raise TooLarge(f"{what} is {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    if not data:
        raise Invalid(f"{what} is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels is checked below
            # Only these three parsers ever see the bytes: Pillow's other plugins (EPS runs Ghostscript…)
            # are attack surface this service does not need.
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            kind = FORMATS[image.format]
            width, height = image.size
            # Checked from the header, before decoding: a tiny file can claim gigapixels.
            if width * height > max_pixels:
                raise TooLarge(f"{what} is {width}×{height} pixels; the limit is {max_pixels:,} pixels.")
            image.load()
    except UnidentifiedImageError:
        other = other_format(data)
        if other:
            raise UnsupportedMedia(f"{what} is a {other} image; upload a JPEG, PNG or WebP.") from None
        raise UnsupportedMedia(f"{what} is not a JPEG, PNG or WebP image.") from None
    except Image.DecompressionBombError:
        raise TooLarge(f"{what} has more pixels than the limit of {max_pixels:,}.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Invalid(f"{what} could not be decoded ({exc}).") from None
    if min(width, height) < min_side:
        raise PreconditionFailed(f"{what} is {width}×{height} pixels; both sides must be at least {min_side} pixels.")
    return CheckedImage(
        data=data,
        content_type=kind[0],
        extension=kind[1],
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        image=image,
    )


def other_format(data: bytes) -> str | None:
    """The name of a common image format these bytes start like, other than the three accepted."""
    for signature, name in OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    return OTHER_BRANDS.get(data[8:12]) if data[4:8] == b"ftyp" else None


def safe_name(name: str | None) -> str | None:
    """An image_name that can never become a path: its last component, without control characters."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:255]
    return None if name in ("", ".", "..") else name


def open_rgb(data: bytes) -> Image.Image:
    """The image as a captioner should see it: upright, RGB, transparency on black (as Bria does)."""
    return to_rgb(Image.open(io.BytesIO(data)))


def to_rgb(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def thumbnail(rgb: Image.Image, size: int) -> bytes:
    """A JPEG of an RGB image whose longest side is `size` pixels (never upscaled)."""
    image = rgb.copy()
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()

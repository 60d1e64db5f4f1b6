"""What a trainer cares about in a picture, measured once when it is stored (services/images.prepare):
a perceptual hash (near-duplicates), sharpness (blur), exposure, transparency and orientation.

Plain numpy on a small grey copy, a few milliseconds a picture: no scipy or imagehash for what is a
DCT and a Laplacian. The thresholds that turn these numbers into findings live in domain/health.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WORK_SIDE = 512  # sharpness and exposure are measured on the picture scaled to this longer side
HASH_SIDE, HASH_BITS = 32, 8  # pHash: the 8×8 lowest frequencies of a 32×32 grey copy's DCT, against their median
DARK, BRIGHT = 8, 247  # grey levels (0-255) counted as crushed black and blown-out white
TRANSPARENT_ALPHA = 250  # a pixel less opaque than this shows the black Bria puts behind it
TURNING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the picture a quarter


@dataclass(frozen=True)
class Measurements:
    phash: int  # 64 bits, stored as a signed integer (the database's BIGINT)
    sharpness: float  # variance of the Laplacian of the grey copy: low is blurry
    brightness: float  # mean grey level, 0-1
    dark_fraction: float
    bright_fraction: float
    transparent: bool  # some of it is see-through (more than a thousandth of the pixels)
    turned: bool  # its EXIF orientation turns it a quarter, so upright it is height × width


def measure(original: Image.Image, rgb: Image.Image) -> Measurements:
    """`original` as decoded (for its alpha and EXIF orientation), `rgb` the upright RGB picture."""
    grey = rgb.convert("L") if max(rgb.size) <= WORK_SIDE else _shrunk(rgb).convert("L")
    pixels = np.asarray(grey, dtype=np.float32)
    return Measurements(
        phash=perceptual_hash(grey),
        sharpness=float(_laplacian(pixels).var()),
        brightness=float(pixels.mean() / 255),
        dark_fraction=float((pixels <= DARK).mean()),
        bright_fraction=float((pixels >= BRIGHT).mean()),
        transparent=_transparent(original),
        turned=_orientation(original) in TURNING_ORIENTATIONS,
    )


def perceptual_hash(grey: Image.Image) -> int:
    """pHash (as imagehash computes it): resized/recompressed copies of a picture land a few bits apart."""
    small = np.asarray(grey.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT @ small @ _DCT.T)[:HASH_BITS, :HASH_BITS]
    bits = (low > np.median(low)).flatten()
    value = int("".join("1" if bit else "0" for bit in bits), 2)
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def _dct_matrix(n: int) -> np.ndarray:
    """The (unnormalised) DCT-II as a matrix: D @ x is the DCT of the columns of x."""
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return 2 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT = _dct_matrix(HASH_SIDE)


def _shrunk(image: Image.Image) -> Image.Image:
    scale = WORK_SIDE / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BOX)


def _laplacian(pixels: np.ndarray) -> np.ndarray:
    return 4 * pixels[1:-1, 1:-1] - pixels[:-2, 1:-1] - pixels[2:, 1:-1] - pixels[1:-1, :-2] - pixels[1:-1, 2:]


def _transparent(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA"):
        alpha = image.getchannel("A")
    elif image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
    else:
        return False
    if max(alpha.size) > WORK_SIDE:
        alpha = _shrunk(alpha)
    return bool((np.asarray(alpha) < TRANSPARENT_ALPHA).mean() > 0.001)


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except (ValueError, TypeError, OSError):
        return 1

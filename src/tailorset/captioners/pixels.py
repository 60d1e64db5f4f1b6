"""Pixel statistics for the local captioner: colour names, exposure, black-and-white, saliency, sharpness.

Everything here is plain numpy on small downscaled copies, so it is cheap and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# Hue bands in degrees (upper bound exclusive) -> colour name, for saturated pixels.
_HUES = (
    (12, "red"),
    (40, "orange"),
    (70, "yellow"),
    (165, "green"),
    (195, "teal"),
    (255, "blue"),
    (290, "purple"),
    (345, "pink"),
    (360, "red"),
)
MIN_COLOUR_SHARE = 0.12  # a colour must cover this share of the frame to be named
# Black and white: fewer than 1% of the pixels have a (max - min) channel spread of MONOCHROME_CHROMA or more.
# A percentile, not the mean: a colour photo that is mostly black (a deep-sky photo: small coloured galaxies
# on black) has a tiny mean spread, but its coloured 1% is plainly coloured. Every greyscale photo of the
# evaluation set has no spread at all (nor has one saved as a colour JPEG), while a colour photo of a grey
# thing (a black face mask: 0.039) keeps a faint cast; so a toned print with more than ~8/255 is colour.
MONOCHROME_CHROMA = 0.03
MONOCHROME_PERCENTILE = 99


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB: upright, transparency composited on black (as Bria does),
    16-bit and float greyscale scaled down rather than clipped. An upright RGB image is returned as it is, not
    copied (callers only read it)."""
    if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation; exif_transpose copies even when upright
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        data = np.asarray(image.convert("F") if image.mode != "F" else image, dtype=np.float64)
        peak = float(np.nanmax(data)) if data.size else 0.0
        scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
        data = np.clip(np.nan_to_num(data) / scale * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(data, "L").convert("RGB")
    if image.mode == "La":  # premultiplied; Pillow converts it only to LA
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """A copy whose longest side is at most `max_side` (never upscaled, never below 1 pixel)."""
    w, h = image.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)


@dataclass(frozen=True)
class Tones:
    colours: tuple[tuple[str, float], ...]  # named colours with their share of the frame, largest first
    monochrome: bool  # black and white (or a single neutral tone)
    luminance: float  # mean, 0..1
    contrast: float  # standard deviation of luminance, 0..1
    shadows: float  # share of near-black pixels
    highlights: float  # share of near-white pixels
    warmth: float  # mean (R - B), -1..1: >0 warm, <0 cool
    brightest: str  # "left", "right", "top", "bottom" or "even": where the frame is clearly brightest


def tones(rgb: np.ndarray) -> Tones:
    """Colour and exposure statistics of an RGB uint8 array (small: ~100 px a side is plenty)."""
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    chroma = x.max(axis=-1) - x.min(axis=-1)
    monochrome = float(np.percentile(chroma, MONOCHROME_PERCENTILE)) < MONOCHROME_CHROMA
    names = _colour_names(x, monochrome)
    values, counts = np.unique(names, return_counts=True)
    order = sorted(zip(values.tolist(), (counts / names.size).tolist(), strict=True), key=lambda vc: (-vc[1], vc[0]))
    colours = tuple((name, round(share, 3)) for name, share in order if share >= MIN_COLOUR_SHARE)
    if not colours:  # a busy multicoloured image: name the most common one anyway
        colours = ((order[0][0], round(order[0][1], 3)),)
    return Tones(
        colours=colours[:3],
        monochrome=monochrome,
        luminance=round(float(lum.mean()), 3),
        contrast=round(float(lum.std()), 3),
        shadows=round(float((lum < 0.1).mean()), 3),
        highlights=round(float((lum > 0.9).mean()), 3),
        warmth=round(float((r - b).mean()), 3),
        brightest=_brightest(lum),
    )


def border_colours(rgb: np.ndarray, monochrome: bool, width: float = 1 / 6) -> tuple[str, ...]:
    """Named colours of the outer ring of the frame (usually background), largest share first."""
    h, w = rgb.shape[:2]
    bh, bw = max(1, round(h * width)), max(1, round(w * width))
    ring = np.concatenate(
        [
            rgb[:bh].reshape(-1, 3),
            rgb[h - bh :].reshape(-1, 3),
            rgb[bh : h - bh, :bw].reshape(-1, 3),
            rgb[bh : h - bh, w - bw :].reshape(-1, 3),
        ]
    )
    names = _colour_names(ring.astype(np.float64) / 255.0, monochrome)
    values, counts = np.unique(names, return_counts=True)
    ranked = sorted(zip(values.tolist(), (counts / names.size).tolist(), strict=True), key=lambda vc: (-vc[1], vc[0]))
    return tuple(name for name, share in ranked if share >= MIN_COLOUR_SHARE * 2)[:2] or (ranked[0][0],)


def _colour_names(x: np.ndarray, monochrome: bool) -> np.ndarray:
    """One colour name per pixel from hue, saturation and value rules."""
    v = x.max(axis=-1)
    c = v - x.min(axis=-1)
    s = np.where(v > 0, c / np.maximum(v, 1e-9), 0.0)
    hue = _hue_degrees(x, v, c)
    names = np.full(v.shape, "gray", dtype=object)
    for upper, name in reversed(_HUES):
        names[hue < upper] = name
    warm = (hue >= 10) & (hue < 50)
    names[warm & (v < 0.6)] = "brown"
    names[(names == "blue") & (v < 0.45)] = "navy"
    names[warm & (s < 0.4) & (v >= 0.6)] = "beige"
    names[(s < 0.18) | monochrome] = "gray"
    names[(names == "gray") & (v >= 0.85)] = "white"
    names[v < 0.16] = "black"
    return names


def _hue_degrees(x: np.ndarray, v: np.ndarray, c: np.ndarray) -> np.ndarray:
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(c, 1e-9)
    hue = np.where(v == r, ((g - b) / safe) % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return hue * 60.0


def _brightest(lum: np.ndarray) -> str:
    h, w = lum.shape
    thirds = {
        "left": lum[:, : max(1, w // 3)].mean(),
        "right": lum[:, w - max(1, w // 3) :].mean(),
        "top": lum[: max(1, h // 3)].mean(),
        "bottom": lum[h - max(1, h // 3) :].mean(),
    }
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    side = max(thirds, key=lambda k: thirds[k] - thirds[opposite[k]])
    return side if thirds[side] - thirds[opposite[side]] > 0.15 else "even"


def spectral_residual(gray: np.ndarray) -> np.ndarray:
    """Saliency map (Hou & Zhang, CVPR 2007) of a small greyscale image (~64 px wide), scaled to 0..1.

    The log-amplitude spectrum minus its local average is the 'unexpected' part of the image; transformed
    back with the original phase it lights up the regions that stand out (proto-objects)."""
    spectrum = np.fft.fft2(gray.astype(np.float64) / 255.0)
    log_amplitude = np.log(np.abs(spectrum) + 1e-9)
    residual = log_amplitude - _box3(log_amplitude)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    sigma = max(1.0, gray.shape[1] / 21)  # about 3 px at 64 px wide, as in the paper
    saliency = _gauss_matrix(saliency.shape[0], sigma) @ saliency @ _gauss_matrix(saliency.shape[1], sigma).T
    peak = saliency.max()
    return saliency / peak if peak > 0 else saliency


def salient_point(saliency: np.ndarray, top: float = 0.1) -> tuple[float, float]:
    """Saliency-weighted centroid of the most salient `top` share of the map, as fractions of the frame."""
    threshold = np.quantile(saliency, 1 - top)
    ys, xs = np.nonzero(saliency >= threshold)
    weights = saliency[ys, xs]
    if weights.sum() <= 0:
        return 0.5, 0.5
    h, w = saliency.shape
    return float((xs + 0.5) @ weights / weights.sum() / w), float((ys + 0.5) @ weights / weights.sum() / h)


def sharpness(gray: np.ndarray) -> tuple[float, float]:
    """Laplacian energy of the whole frame and of its central third relative to the border.

    Returns (overall, centre_to_border): a high ratio means a sharp centre on a soft background."""
    g = gray.astype(np.float64) / 255.0
    if min(g.shape) < 6:
        return 0.0, 1.0
    lap = _laplacian(g)
    h, w = lap.shape
    centre = lap[h // 3 : h - h // 3, w // 3 : w - w // 3]
    border = np.concatenate(
        [lap[: h // 6].ravel(), lap[h - h // 6 :].ravel(), lap[:, : w // 6].ravel(), lap[:, w - w // 6 :].ravel()]
    )
    ratio = float(centre.mean() / max(border.mean(), 1e-6)) if border.size and centre.size else 1.0
    return round(float(lap.mean()), 4), round(ratio, 3)


@dataclass(frozen=True)
class Layout:
    """How the frame is built, for saying what is visible when nothing can be named."""

    texture: bool  # detail spread evenly over the whole frame: a surface filling it (grass, gravel, a wall)
    silhouette: bool  # nearly all pixels black or white, a dark shape on a light ground
    starfield: bool  # a black frame scattered with small bright points


# Texture: the detail (Laplacian energy) of a 4 x 4 grid of blocks varies by at most TEXTURE_SPREAD (coefficient
# of variation) and is at least TEXTURE_DETAIL; measured on the evaluation set (bench/caption_quality.py).
TEXTURE_SPREAD = 0.2
TEXTURE_DETAIL = 0.04
TEXTURE_MIN_SIDE = 64  # pixels of the ~256 px greyscale copy: blocks of at least 16
_GRID = [(i, j) for i in range(4) for j in range(4)]


def layout(gray: np.ndarray, luminance: float) -> Layout:
    """`gray`: uint8 greyscale, ~256 px a side; `luminance`: the frame's mean (Tones.luminance)."""
    g = gray.astype(np.float64) / 255.0
    if min(g.shape) < 16:
        return Layout(False, False, False)
    lap = _laplacian(g)
    blocks = np.array([block.mean() for block in _blocks(lap)])
    spread = float(blocks.std() / max(blocks.mean(), 1e-9))
    dark, light, bright = float((g < 0.15).mean()), float((g > 0.85).mean()), g > 0.5
    # Scattered points reach most of the grid's blocks; one bright shape on black (a crescent moon) does not.
    scattered = sum(bool(block.any()) for block in _blocks(bright))
    even = spread <= TEXTURE_SPREAD and float(blocks.mean()) >= TEXTURE_DETAIL and luminance >= 0.15
    return Layout(
        # A frame more than 4:1 (a street panorama) leaves the grid's blocks a few pixels tall: no evidence.
        texture=even and min(g.shape) >= TEXTURE_MIN_SIDE,
        silhouette=dark + light >= 0.9 and 0.1 <= dark <= 0.7,
        starfield=luminance < 0.15
        and dark >= 0.8
        and 0.001 <= light + float(bright.mean()) <= 0.2
        and scattered >= len(_GRID) // 2,
    )


def _blocks(a: np.ndarray) -> list[np.ndarray]:
    """The 4 x 4 grid of blocks of a 2-D array (_GRID's order)."""
    h, w = a.shape
    return [a[i * h // 4 : (i + 1) * h // 4, j * w // 4 : (j + 1) * w // 4] for i, j in _GRID]


def _laplacian(g: np.ndarray) -> np.ndarray:
    """Magnitude of the 4-neighbour Laplacian (detail) of a 0..1 greyscale image, one pixel smaller all round."""
    return np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def _gauss_matrix(n: int, sigma: float) -> np.ndarray:
    """Row-normalised Gaussian blur as an n×n matrix (tiny maps, so a matrix product is the cheapest)."""
    x = np.arange(n)
    k = np.exp(-0.5 * ((x[:, None] - x[None, :]) / sigma) ** 2)
    return k / k.sum(axis=1, keepdims=True)

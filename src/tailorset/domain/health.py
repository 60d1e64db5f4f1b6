"""The dataset health report's rules: what counts as a blurry, badly exposed, small or oddly shaped picture,
the aspect-ratio buckets a trainer forms, and whether the dataset is ready by Bria's rules. Pure functions over
numbers stored per image (tailorset/quality.py measures them, services/health.py gathers them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tailorset.domain import lifecycle

# Thresholds, chosen for precision (a finding should be worth a look), checked on scikit-image's photos:
# sharp photos measure 40-5,000, the same photos under a 3 px Gaussian blur 2-16.
BLURRY_BELOW = 25.0  # quality.sharpness: variance of the Laplacian at 512 px
DARK_BELOW, DARK_SHARE = 0.12, 0.5  # mean grey level, or this share of crushed-black pixels
BRIGHT_ABOVE, BRIGHT_SHARE = 0.88, 0.5  # mean grey level, or this share of blown-out pixels
RECOMMENDED_SIDE = 1024  # Bria recommends at least 1024 × 1024 (smaller ones, down to 256, are upscaled)
MIN_SIDE = 256  # below this Bria refuses an upload (412)
EXTREME_ASPECT = 2.5  # longer side over shorter side
NEAR_DUPLICATE_BITS = 8  # pHash bits apart: resized, recompressed or re-exposed copies are 0-6, other photos 20+

# Bria's recommended set sizes per training version (upload-image docs); FIBO's and 3.2's are not stated.
RECOMMENDED_IMAGES = {"max": (5, 50), "light": (15, 100)}

# Aspect-ratio buckets as kohya's sd-scripts forms them for SDXL-class training (library/model_util.py
# make_bucket_resolutions with --resolution 1024 --min_bucket_reso 256 --max_bucket_reso 2048,
# --bucket_reso_steps 64): every 64-px width from 256 to 2048 with the largest 64-px height keeping the
# area within 1024², and each image goes to the bucket of the nearest aspect ratio, scaled to cover it
# and centre-cropped (train_util.BucketManager.select_bucket).
BUCKET_AREA, BUCKET_STEP, BUCKET_MIN, BUCKET_MAX = 1024 * 1024, 64, 256, 2048

IMAGE_ISSUES = {
    "blurry": "blurry (little fine detail)",
    "underexposed": "under-exposed (very dark)",
    "overexposed": "over-exposed (washed out)",
    "below_recommended": f"smaller than Bria's recommended {RECOMMENDED_SIDE} px (it will be upscaled)",
    "extreme_aspect_ratio": f"an aspect ratio beyond {EXTREME_ASPECT:g}:1 (much is cropped or padded)",
    "transparent": "see-through in places (Bria puts it on black)",
}


@dataclass(frozen=True)
class Picture:
    """What the report knows of one image without opening it (measurements not yet taken are None)."""

    width: int
    height: int
    turned: bool | None
    sharpness: float | None
    brightness: float | None
    dark_fraction: float | None
    bright_fraction: float | None
    transparent: bool | None

    @property
    def upright(self) -> tuple[int, int]:
        return (self.height, self.width) if self.turned else (self.width, self.height)


def issue_masks(width, height, sharpness, brightness, dark_fraction, bright_fraction, transparent) -> dict:
    """Each IMAGE_ISSUES finding, for numpy arrays of many pictures at once (NaN: not measured, finds nothing)."""
    longer, shorter = np.maximum(width, height), np.minimum(width, height)
    return {
        "blurry": sharpness < BLURRY_BELOW,
        "underexposed": (brightness < DARK_BELOW) | (dark_fraction > DARK_SHARE),
        "overexposed": (brightness > BRIGHT_ABOVE) | (bright_fraction > BRIGHT_SHARE),
        "below_recommended": shorter < RECOMMENDED_SIDE,
        "extreme_aspect_ratio": longer > shorter * EXTREME_ASPECT,
        "transparent": transparent > 0,
    }


def image_issues(p: Picture) -> list[str]:
    """The IMAGE_ISSUES of one picture."""

    def value(x):
        return np.array([np.nan if x is None else float(x)])

    masks = issue_masks(
        value(p.width), value(p.height), value(p.sharpness), value(p.brightness), value(p.dark_fraction),
        value(p.bright_fraction), value(p.transparent),
    )  # fmt: skip
    return [name for name, mask in masks.items() if mask[0]]


def bucket_resolutions() -> list[tuple[int, int]]:
    side = int(math.sqrt(BUCKET_AREA) // BUCKET_STEP) * BUCKET_STEP
    resolutions = {(side, side)}
    for width in range(BUCKET_MIN, BUCKET_MAX + 1, BUCKET_STEP):
        height = min(BUCKET_MAX, int((BUCKET_AREA // width) // BUCKET_STEP) * BUCKET_STEP)
        if height >= BUCKET_MIN:
            resolutions |= {(width, height), (height, width)}
    return sorted(resolutions)


BUCKETS = bucket_resolutions()
_BUCKET_RATIOS = [w / h for w, h in BUCKETS]


def bucket_of(width: int, height: int) -> tuple[tuple[int, int], float]:
    """The bucket an upright width × height picture lands in, and the share of it cropped away there."""
    ratio = width / height
    index = min(range(len(BUCKETS)), key=lambda i: abs(_BUCKET_RATIOS[i] - ratio))
    bucket = BUCKETS[index]
    scale = bucket[1] / height if ratio > _BUCKET_RATIOS[index] else bucket[0] / width
    covered = (width * scale) * (height * scale)
    return bucket, max(0.0, 1 - bucket[0] * bucket[1] / covered)


@dataclass(frozen=True)
class Readiness:
    ready: bool  # Bria would let it be completed (and train on it)
    blocking: list[str]
    warnings: list[str]
    min_images: int
    max_images: int
    recommended: tuple[int, int] | None


def readiness(training_version: str, images: int, max_images: int, visual_schema: str | None) -> Readiness:
    """The dataset against Bria's rules for its training version (bria-api.md, update-dataset and upload-image)."""
    needed = lifecycle.min_images_to_complete(training_version)
    blocking, warnings = [], []
    if images < needed:
        blocking.append(
            f"A {training_version} dataset needs at least {needed} image{'s' if needed > 1 else ''} to be completed; "
            f"it has {images}."
        )
    if images > max_images:
        blocking.append(f"The dataset holds {images} images; at most {max_images} are allowed.")
    if training_version == lifecycle.FIBO and not visual_schema:
        blocking.append("A FIBO dataset needs a visual_schema before it is completed (generate_visual_schema).")
    recommended = RECOMMENDED_IMAGES.get(training_version)
    if recommended and not recommended[0] <= images <= recommended[1]:
        low, high = recommended
        warnings.append(
            f"Bria recommends {low}-{high} images for {training_version} training; the dataset has {images}."
        )
    return Readiness(not blocking, blocking, warnings, needed, max_images, recommended)

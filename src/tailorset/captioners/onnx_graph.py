"""What the torch-free model builders (efficientnet.py, places.py) share: a graph written op by op, with the
weights as initializers, closed into a checked ONNX model that any onnxruntime since 1.10 can load."""

from __future__ import annotations

import numpy as np

OPSET = 17


class Graph:
    def __init__(self, weights: dict[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.weights = weights
        self.nodes: list = []
        self.initializers: list = []
        self._names = 0

    def _name(self, stem: str) -> str:
        self._names += 1
        return f"{stem}_{self._names}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        name = self._name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def op(self, kind: str, inputs: list[str], **attributes) -> str:
        output = self._name(kind.lower())
        self.nodes.append(self.helper.make_node(kind, inputs, [output], **attributes))
        return output

    def classifier(self, x: str, fc: str, name: str, input_name: str, side: int, output_name: str, classes: int):
        """Global average pool, the fully connected layer `fc` and a softmax after `x`, closed into a checked
        onnx.ModelProto taking a float32 [N, 3, side, side] image."""
        from onnx import TensorProto, checker

        helper = self.helper
        x = self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1)
        w, b = self.constant("fc_w", self.weights[f"{fc}.weight"]), self.constant("fc_b", self.weights[f"{fc}.bias"])
        self.nodes.append(helper.make_node("Softmax", [self.op("Gemm", [x, w, b], transB=1)], [output_name], axis=1))
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 3, side, side])],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", classes])],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tailorset")
        model.ir_version = 8  # readable by every onnxruntime since 1.10
        checker.check_model(model)
        return model

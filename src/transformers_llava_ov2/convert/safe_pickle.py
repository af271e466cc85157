"""A restricted unpickler for Megatron checkpoint files, so they load without Megatron installed.

Tensors, storages, plain containers, ``argparse.Namespace`` and ``io.BytesIO`` are rebuilt; any other class
(Megatron enums and configs inside ``args``) becomes an inert :class:`Opaque` record that runs no code.
Use as ``torch.load(path, pickle_module=safe_pickle, weights_only=False)``.
"""

from __future__ import annotations

import pickle
from typing import Any

_ALLOWED: dict[str, set[str]] = {
    "collections": {"OrderedDict", "defaultdict"},
    "argparse": {"Namespace"},
    "io": {"BytesIO"},
    "builtins": {"set", "frozenset", "slice", "complex", "bytearray", "range", "tuple", "list", "dict"},
    "_codecs": {"encode"},
    "torch._utils": {
        "_rebuild_tensor_v2",
        "_rebuild_tensor",
        "_rebuild_parameter",
        "_rebuild_device_tensor_from_numpy",
    },
    "torch": {
        "Size",
        "bfloat16",
        "float16",
        "float32",
        "float64",
        "int64",
        "int32",
        "int8",
        "uint8",
        "bool",
        "device",
        "dtype",
    },
    "torch.storage": {"UntypedStorage", "TypedStorage"},
    "numpy": {"dtype", "ndarray"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
}


class Opaque:
    """Stand-in for a class the unpickler does not trust; keeps its name, arguments and state."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<opaque {self.qualname}{self.args!r}>"


def _opaque(module: str, name: str) -> type:
    return type(name, (Opaque,), {"qualname": f"{module}.{name}"})


class Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED.get(module, ()) or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        return _opaque(module, name)


def load(file, **kwargs) -> Any:
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs) -> Any:
    import io

    return Unpickler(io.BytesIO(data), **kwargs).load()


dump = pickle.dump
dumps = pickle.dumps
HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL

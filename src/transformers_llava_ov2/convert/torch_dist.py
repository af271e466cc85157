"""Megatron-Core ``torch_dist`` (DCP) checkpoints, read and written with ``torch.distributed.checkpoint``
on CPU, without Megatron and without a process group.

Layout (spec training_conversion.md §1.3): ``.metadata`` + ``__*_*.distcp`` + ``common.pt`` +
``metadata.json`` (``sharded_backend: torch_dist``). Tensor keys are global (TP/PP independent); per-layer
tensors are stacked with a leading layer axis (``…decoder.layers.<sub>`` ``[L, …]``) and MoE experts with a
second expert axis (``…mlp.experts.experts.<sub>`` ``[L, E, …]``, inferred from MCore's SequentialMLP
convention). Only tensors are read; no pickled entry is ever unpickled (``common.pt`` goes through
:mod:`.safe_pickle`).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from . import safe_pickle
from .checks import ConversionError
from .megatron_legacy import TRACKER
from .megatron_names import split_expert_key, split_layer_key

_STACKED = re.compile(r"^(language_model|vision_model)\.decoder\.layers\.(?!\d+\.)(.+)$")
_EXPERTS = "mlp.experts.experts."


def is_torch_dist(path: Path) -> bool:
    try:
        folder = dist_dir(path)
    except ConversionError:
        return False
    return (folder / ".metadata").is_file()


def dist_dir(path: Path) -> Path:
    """The folder holding ``.metadata`` (the root via its tracker file, or that folder itself)."""
    if (path / ".metadata").is_file():
        return path
    tracker = path / TRACKER
    if tracker.is_file():
        it = tracker.read_text().strip()
        sub = path / ("release" if it == "release" else f"iter_{int(it):07d}")
        if (sub / ".metadata").is_file():
            return sub
    raise ConversionError(f"{str(path)!r} is not a torch_dist checkpoint (no .metadata)")


class TorchDistView:
    """Canonical-name access to a torch_dist checkpoint (TP=1 view: every tensor is global)."""

    tp = 1

    def __init__(self, path: str | Path):
        self.root = Path(path)
        self.folder = dist_dir(self.root)
        self.reader = FileSystemReader(str(self.folder))
        try:
            meta = self.reader.read_metadata().state_dict_metadata
        except Exception as exc:
            raise ConversionError(
                f"torch_dist metadata of {str(self.folder)!r} is unreadable: {exc}"
            ) from None
        tensors = {k: v for k, v in meta.items() if isinstance(v, TensorStorageMetadata)}
        prefix = "model." if tensors and all(k.startswith("model.") for k in tensors) else ""
        self._stored = {k[len(prefix) :]: (k, v) for k, v in tensors.items()}
        self._names: dict[str, tuple[str, tuple[int, ...]]] = {}  # canonical → (stored key, index)
        for key, (_, md) in self._stored.items():
            self._add(key, tuple(md.size))
        self._cache: tuple[str, torch.Tensor] | None = None
        self.args = self._common_args()

    def _add(self, key: str, size: tuple[int, ...]) -> None:
        m = _STACKED.match(key)
        if m is None:
            self._names[key] = (key, ())
            return
        tower, sub = m.groups()
        if sub.startswith(_EXPERTS):
            rest = sub[len(_EXPERTS) :]
            for i in range(size[0]):
                for j in range(size[1]):
                    self._names[f"{tower}.decoder.layers.{i}.mlp.experts.local_experts.{j}.{rest}"] = (
                        key,
                        (i, j),
                    )
            return
        for i in range(size[0]):
            self._names[f"{tower}.decoder.layers.{i}.{sub}"] = (key, (i,))

    def _common_args(self):
        common = self.folder / "common.pt"
        if not common.is_file():
            return None
        try:
            data = torch.load(common, map_location="cpu", weights_only=False, pickle_module=safe_pickle)
        except Exception as exc:
            raise ConversionError(f"{str(common)!r} is unreadable or truncated: {exc}") from None
        return data.get("args") if isinstance(data, dict) else None

    def names(self) -> set[str]:
        return set(self._names)

    def ranks(self, name: str) -> list[str]:
        return ["global"]

    def _meta(self, name: str):
        key, index = self._names[name]
        return self._stored[key], index

    def shard_shapes(self, name: str) -> list[tuple[int, ...]]:
        (_, md), index = self._meta(name)
        return [tuple(md.size)[len(index) :]]

    def shard_dtypes(self, name: str) -> list[torch.dtype]:
        (_, md), _ = self._meta(name)
        return [md.properties.dtype]

    def _load(self, key: str) -> torch.Tensor:
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        self._cache = None
        stored, md = self._stored[key]
        target = {stored: torch.empty(tuple(md.size), dtype=md.properties.dtype)}
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="torch.distributed is disabled")
                dcp.load(target, storage_reader=self.reader, no_dist=True)
        except (Exception, CheckpointException) as exc:  # CheckpointException is a BaseException
            raise ConversionError(
                f"tensor {key!r} cannot be read from torch_dist checkpoint {str(self.folder)!r} (truncated?): {exc}"
            ) from None
        self._cache = (key, target[stored])
        return target[stored]

    def shards(self, name: str) -> list[torch.Tensor]:
        key, index = self._names[name]
        tensor = self._load(key)
        return [tensor[index].contiguous() if index else tensor]

    def order(self, name: str) -> int:
        return sorted(self._stored).index(self._names[name][0])

    def describe(self) -> str:
        return f"torch_dist checkpoint {str(self.folder)!r}"


def stacked_key(name: str) -> tuple[str, tuple[int, ...]]:
    """Canonical name → (stored key, index into its stacked axes)."""
    parts = split_layer_key(name)
    if parts is None:
        return name, ()
    tower, i, sub = parts
    expert = split_expert_key(sub)
    if expert is not None:
        return f"{tower}.decoder.layers.{_EXPERTS}{expert[1]}", (i, expert[0])
    return f"{tower}.decoder.layers.{sub}", (i,)


def write_torch_dist(folder: Path, tensors: dict[str, torch.Tensor], args) -> None:
    """Writes canonical full tensors as a torch_dist checkpoint in ``folder`` (layers/experts stacked)."""
    groups: dict[str, dict[tuple[int, ...], torch.Tensor]] = {}
    for name, tensor in tensors.items():
        key, index = stacked_key(name)
        groups.setdefault(key, {})[index] = tensor
    state = {}
    for key, parts in groups.items():
        if list(parts) == [()]:
            state[key] = parts[()]
            continue
        dims = [1 + max(ix[d] for ix in parts) for d in range(len(next(iter(parts))))]
        first = next(iter(parts.values()))
        stacked = torch.empty((*dims, *first.shape), dtype=first.dtype)
        if len(parts) != _prod(dims):
            raise ConversionError(f"internal: stacked key {key!r} is incomplete")
        for index, tensor in parts.items():
            stacked[index] = tensor
        state[key] = stacked
    folder.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save(state, storage_writer=FileSystemWriter(str(folder)), no_dist=True)
    torch.save({"args": args, "checkpoint_version": 3.0, "iteration": 0}, folder / "common.pt")
    (folder / "metadata.json").write_text(
        json.dumps({"sharded_backend": "torch_dist", "sharded_backend_version": 1, "common_backend": "torch",
                    "common_backend_version": 1}) + "\n"
    )  # fmt: skip


def _prod(dims: list[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n

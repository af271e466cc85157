"""Safetensors folders read tensor by tensor, and written shard by shard without holding a shard in memory.

The writer takes the full plan (name, shape, dtype of every tensor, in order) up front, so each shard's
header is written before its data and every tensor goes to disk as soon as it is produced.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from .checks import ConversionError

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_CODES = {v: k for k, v in _DTYPES.items()}


@dataclass(frozen=True)
class TensorSpec:
    """One planned tensor: checkpoint name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty((), dtype=self.dtype).element_size()


class SafetensorsFolder:
    """Read-only view of a folder's safetensors weights (index + shards, or one file).

    Opening checks that every file named by the index exists and opens (a truncated file fails here, named),
    that every tensor the index lists is in its file and that no file holds tensors the index does not list.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._files: dict[str, object] = {}
        self.weight_map = self._read_weight_map()

    def _open(self, file: str):
        if file not in self._files:
            path = self.folder / file
            if not path.is_file():
                raise ConversionError(f"weights file {str(path)!r} named by the index does not exist")
            try:
                self._files[file] = safe_open(str(path), framework="pt")
            except Exception as exc:  # safetensors raises its own error types
                raise ConversionError(
                    f"weights file {str(path)!r} is unreadable or truncated: {exc}"
                ) from None
        return self._files[file]

    def _read_weight_map(self) -> dict[str, str]:
        index = self.folder / INDEX_NAME
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (ValueError, KeyError) as exc:
                raise ConversionError(f"index {str(index)!r} is not a safetensors index: {exc}") from None
            for file in sorted(set(weight_map.values())):
                listed = {k for k, v in weight_map.items() if v == file}
                stored = set(self._open(file).keys())
                if listed - stored:
                    raise ConversionError(
                        f"tensor {sorted(listed - stored)[0]!r} is listed in the index for {file!r} but that file "
                        "does not hold it"
                    )
                if stored - listed:
                    raise ConversionError(
                        f"tensor {sorted(stored - listed)[0]!r} is stored in {file!r} but not listed in the index"
                    )
            return dict(weight_map)
        files = sorted(p.name for p in self.folder.glob("*.safetensors"))
        if not files:
            raise ConversionError(f"folder {str(self.folder)!r} has no safetensors weights")
        if len(files) > 1:
            raise ConversionError(
                f"folder {str(self.folder)!r} has {len(files)} safetensors files but no {INDEX_NAME}"
            )
        return dict.fromkeys(self._open(files[0]).keys(), files[0])

    def names(self) -> list[str]:
        return sorted(self.weight_map)

    def files(self) -> list[str]:
        return sorted(set(self.weight_map.values()))

    def spec(self, name: str) -> TensorSpec:
        handle = self._open(self.weight_map[name]).get_slice(name)
        code = handle.get_dtype()
        if code not in _DTYPES:
            raise ConversionError(f"tensor {name!r} has unsupported dtype {code}")
        return TensorSpec(name, tuple(handle.get_shape()), _DTYPES[code])

    def get(self, name: str) -> torch.Tensor:
        if name not in self.weight_map:
            raise ConversionError(f"tensor {name!r} is not in {str(self.folder)!r}")
        try:
            return self._open(self.weight_map[name]).get_tensor(name)
        except Exception as exc:
            raise ConversionError(
                f"tensor {name!r} cannot be read from {self.weight_map[name]!r}: {exc}"
            ) from None

    def iter_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Every tensor, shard by shard (file order), then by name."""
        for file in self.files():
            for name in sorted(k for k, v in self.weight_map.items() if v == file):
                yield name, self.get(name)

    def total_bytes(self) -> int:
        return sum((self.folder / f).stat().st_size for f in self.files())


def assign_shards(plan: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    """Splits the plan (in order) into shards of at most ``max_shard_bytes`` (a bigger tensor gets its own)."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in plan:
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


def shard_file_names(count: int) -> list[str]:
    if count == 1:
        return [SINGLE_NAME]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


class StreamingShardWriter:
    """Writes planned tensors, in plan order, into sharded safetensors files plus an index.

    ``write(name, tensor)`` must follow the plan's order; shape and dtype must match the plan.
    """

    def __init__(self, folder: Path, plan: list[TensorSpec], max_shard_bytes: int):
        self.folder = folder
        self.shards = assign_shards(plan, max_shard_bytes)
        self.files = shard_file_names(len(self.shards))
        self._order = [(i, spec) for i, shard in enumerate(self.shards) for spec in shard]
        self._pos = 0
        self._handle = None
        self._open_shard = -1

    def _start_shard(self, index: int) -> None:
        if self._handle is not None:
            self._handle.close()
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for spec in self.shards[index]:
            header[spec.name] = {
                "dtype": _CODES[spec.dtype],
                "shape": list(spec.shape),
                "data_offsets": [offset, offset + spec.nbytes],
            }
            offset += spec.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-(len(raw) + 8) % 8)
        self._handle = open(self.folder / self.files[index], "wb")  # noqa: SIM115 (closed in finish)
        self._handle.write(struct.pack("<Q", len(raw)) + raw)
        self._open_shard = index

    def write(self, name: str, tensor: torch.Tensor) -> None:
        shard, spec = self._order[self._pos]
        if name != spec.name:
            raise ConversionError(
                f"internal: tensor {name!r} written out of plan order (expected {spec.name!r})"
            )
        if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
            raise ConversionError(
                f"tensor {name!r} came out as {list(tensor.shape)} {tensor.dtype}, planned "
                f"{list(spec.shape)} {spec.dtype}"
            )
        if shard != self._open_shard:
            self._start_shard(shard)
        data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
        self._handle.write(memoryview(data))
        self._pos += 1

    def finish(self, metadata: dict[str, object] | None = None) -> None:
        """Closes the last shard and writes the index (checks that the whole plan was written)."""
        if self._pos != len(self._order):
            raise ConversionError(
                f"internal: only {self._pos} of {len(self._order)} planned tensors were written"
            )
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if len(self.files) > 1:
            weight_map = {spec.name: self.files[i] for i, spec in self._order}
            total = sum(spec.nbytes for _, spec in self._order)
            index = {"metadata": {"total_size": total, **(metadata or {})}, "weight_map": weight_map}
            (self.folder / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

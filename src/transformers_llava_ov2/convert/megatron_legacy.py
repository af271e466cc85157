"""Megatron legacy ``torch`` checkpoints: ``<root>/latest_checkpointed_iteration.txt`` +
``release|iter_NNNNNNN/mp_rank_TT[_PPP][_EEE]/model_optim_rng.pt``; read without Megatron, and written.

Files are memory-mapped (``torch.load(mmap=True)``) and unpickled with :mod:`.safe_pickle`, so reading
touches only the tensors asked for. Layer indices are local to a PP stage and expert indices local to an
EP rank; the reader and writer translate to and from the canonical global names of :mod:`.megatron_names`.
"""

from __future__ import annotations

import argparse
import re
from collections import OrderedDict
from pathlib import Path

import torch

from . import safe_pickle
from .checks import ConversionError, check_replicas_agree
from .megatron_names import expert_sub_key, split_expert_key, split_layer_key

TRACKER = "latest_checkpointed_iteration.txt"
RANK_FILE = "model_optim_rng.pt"
_RANK_DIR = re.compile(r"^mp_rank_(\d{2})(?:_(\d{3}))?(?:_(\d{3}))?$")


def iteration_dir(path: Path) -> Path:
    """The folder holding ``mp_rank_*`` (the root via its tracker file, or that folder itself)."""
    if any(path.glob("mp_rank_*")):
        return path
    tracker = path / TRACKER
    if not tracker.is_file():
        raise ConversionError(
            f"{str(path)!r} is not a Megatron checkpoint (no {TRACKER} and no mp_rank_* folders)"
        )
    it = tracker.read_text().strip()
    sub = path / ("release" if it == "release" else f"iter_{int(it):07d}")
    if not sub.is_dir():
        raise ConversionError(f"{TRACKER} names {it!r} but {str(sub)!r} does not exist")
    return sub


def load_rank_file(file: Path) -> dict:
    """One rank's ``model_optim_rng.pt`` (memory-mapped, restricted unpickler)."""
    if not file.is_file():
        raise ConversionError(f"Megatron rank file {str(file)!r} is missing")
    try:
        data = torch.load(file, map_location="cpu", mmap=True, weights_only=False, pickle_module=safe_pickle)
    except Exception as exc:
        raise ConversionError(f"Megatron rank file {str(file)!r} is unreadable or truncated: {exc}") from None
    if not isinstance(data, dict) or "model" not in data:
        extra = " (virtual pipeline stages model0/model1 are not supported)" if "model0" in data else ""
        raise ConversionError(f"Megatron rank file {str(file)!r} has no 'model' state dict{extra}")
    return data


def _rank_dirs(folder: Path) -> dict[tuple[int, int, int], Path]:
    dirs = {}
    for sub in sorted(folder.glob("mp_rank_*")):
        m = _RANK_DIR.match(sub.name)
        if not m:
            raise ConversionError(f"unexpected folder name {sub.name!r} in {str(folder)!r}")
        parts = [int(g) for g in m.groups() if g is not None]
        dirs[tuple(parts)] = sub
    return dirs


def _rank_grid(dirs: dict[tuple, Path], args) -> dict[tuple[int, int, int], Path]:
    """Maps ``(tp, pp, ep)`` → folder. Two-part names are ``(tp, pp)`` unless ``args`` say PP=1 and EP>1."""
    grid = {}
    for parts, path in dirs.items():
        if len(parts) == 3:
            key = parts
        elif len(parts) == 2:
            ep_only = (
                args is not None
                and getattr(args, "pipeline_model_parallel_size", 0) == 1
                and (getattr(args, "expert_model_parallel_size", 1) > 1)
            )
            key = (parts[0], 0, parts[1]) if ep_only else (parts[0], parts[1], 0)
        else:
            key = (parts[0], 0, 0)
        grid[key] = path
    tps, pps, eps = (sorted({k[i] for k in grid}) for i in range(3))
    for size, ranks, what in ((len(tps), tps, "TP"), (len(pps), pps, "PP"), (len(eps), eps, "EP")):
        if ranks != list(range(size)):
            raise ConversionError(f"Megatron checkpoint has {what} ranks {ranks}; expected 0..{size - 1}")
    missing = [(t, p, e) for t in tps for p in pps for e in eps if (t, p, e) not in grid]
    if missing:
        raise ConversionError(f"Megatron checkpoint is missing rank folder for (tp, pp, ep) = {missing[0]}")
    return grid


class LegacyMegatronView:
    """Canonical-name access to a legacy checkpoint: ``shards(name)`` gives one tensor per TP rank."""

    def __init__(self, path: str | Path):
        self.root = Path(path)
        folder = iteration_dir(self.root)
        dirs = _rank_dirs(folder)
        if not dirs:
            raise ConversionError(f"no mp_rank_* folders in {str(folder)!r}")
        first = load_rank_file(next(iter(dirs.values())) / RANK_FILE)
        grid = _rank_grid(dirs, first.get("args"))
        self.tp = 1 + max(k[0] for k in grid)
        self.pp = 1 + max(k[1] for k in grid)
        self.ep = 1 + max(k[2] for k in grid)
        self.models = {k: load_rank_file(p / RANK_FILE)["model"] for k, p in grid.items()}
        self.args = first.get("args")
        self._per_rank = self._experts_per_rank()
        self._index = self._build_index()

    def _build_index(self) -> dict[str, dict[tuple[int, int], tuple[int, str]]]:
        """canonical name → {(tp, ep): (pp, local name)} (an EP-replicated tensor appears under every ep)."""
        layer_counts = self._layer_counts()
        offsets = [sum(layer_counts[:p]) for p in range(self.pp)]
        index: dict[str, dict[tuple[int, int], tuple[int, str]]] = {}
        for (tp, pp, ep), state in self.models.items():
            for local in state:
                name = self._canonical(local, pp, ep, offsets)
                slot = index.setdefault(name, {})
                if (tp, ep) in slot:
                    raise ConversionError(
                        f"tensor {name!r} is stored on two pipeline stages ({slot[(tp, ep)][0]} and {pp})"
                    )
                slot[(tp, ep)] = (pp, local)
        return index

    def _layer_counts(self) -> list[int]:
        counts = []
        for pp in range(self.pp):
            layers = {
                parts[1]
                for local in self.models[(0, pp, 0)]
                if (parts := split_layer_key(local)) and parts[0] == "language_model"
            }
            if layers and layers != set(range(len(layers))):
                raise ConversionError(
                    f"pipeline stage {pp} holds LLM layers {sorted(layers)}; expected 0..{len(layers) - 1}"
                )
            counts.append(len(layers))
        return counts

    def _canonical(self, local: str, pp: int, ep: int, offsets: list[int]) -> str:
        parts = split_layer_key(local)
        if parts is None or parts[0] != "language_model":
            return local
        tower, i, sub = parts
        expert = split_expert_key(sub)
        if expert is not None:
            sub = f"mlp.experts.local_experts.{ep * self._per_rank + expert[0]}.{expert[1]}"
        return f"{tower}.decoder.layers.{offsets[pp] + i}.{sub}"

    def _experts_per_rank(self) -> int:
        experts = {
            e[0]
            for pp in range(self.pp)
            for local in self.models[(0, pp, 0)]
            if (parts := split_layer_key(local)) and (e := split_expert_key(parts[2]))
        }
        return len(experts)

    def names(self) -> set[str]:
        return set(self._index)

    def _slots(self, name: str) -> list[tuple[int, int, str]]:
        """(tp, ep, pp, local) of each rank holding ``name``, one EP rank per TP rank unless replicated."""
        slot = self._index[name]
        return [(tp, ep, *slot[(tp, ep)]) for (tp, ep) in sorted(slot)]

    def ranks(self, name: str) -> list[str]:
        tps = sorted({tp for tp, _ in self._index[name]})
        return [f"tp{tp}" for tp in tps]

    def shard_shapes(self, name: str) -> list[tuple[int, ...]]:
        return [tuple(t.shape) for t in self._tp_tensors(name, check=False)]

    def shard_dtypes(self, name: str) -> list[torch.dtype]:
        return [t.dtype for t in self._tp_tensors(name, check=False)]

    def _tp_tensors(self, name: str, check: bool) -> list[torch.Tensor]:
        by_tp: dict[int, list[tuple[int, torch.Tensor]]] = {}
        for tp, ep, pp, local in self._slots(name):
            by_tp.setdefault(tp, []).append((ep, self.models[(tp, pp, ep)][local]))
        if sorted(by_tp) != list(range(self.tp)):
            raise ConversionError(
                f"tensor {name!r} is missing on TP ranks {sorted(set(range(self.tp)) - set(by_tp))}"
            )
        out = []
        for tp in range(self.tp):
            replicas = by_tp[tp]
            tensor = replicas[0][1]
            if not isinstance(tensor, torch.Tensor):
                raise ConversionError(f"entry {name!r} is a {type(tensor).__name__}, not a tensor")
            if check and len(replicas) > 1:
                check_replicas_agree(name, [t for _, t in replicas], [f"tp{tp}/ep{e}" for e, _ in replicas])
            out.append(tensor)
        return out

    def shards(self, name: str) -> list[torch.Tensor]:
        return self._tp_tensors(name, check=True)

    def order(self, name: str) -> int:
        return 0

    def describe(self) -> str:
        return f"legacy torch checkpoint {str(self.root)!r} (TP={self.tp}, PP={self.pp}, EP={self.ep})"


def rank_dir_name(tp: int, pp: int, ep: int, pp_size: int, ep_size: int) -> str:
    """Megatron's folder name: ``mp_rank_TT``, ``_PPP`` when PP>1, and ``_PPP_EEE`` whenever EP>1."""
    name = f"mp_rank_{tp:02d}"
    if pp_size > 1 or ep_size > 1:
        name += f"_{pp:03d}"
    if ep_size > 1:
        name += f"_{ep:03d}"
    return name


def local_name(name: str, layer_offset: int, experts_per_rank: int, grouped_gemm: bool = False) -> str:
    """Canonical → local name (stage-local layer, EP-local expert; grouped-GEMM expert names on request)."""
    parts = split_layer_key(name)
    if parts is None or parts[0] != "language_model":
        return name
    tower, i, sub = parts
    expert = split_expert_key(sub)
    if expert is not None:
        sub = expert_sub_key(expert[0] % experts_per_rank, expert[1], grouped_gemm)
    return f"{tower}.decoder.layers.{i - layer_offset}.{sub}"


def write_rank_file(folder: Path, state: OrderedDict, args: argparse.Namespace) -> None:
    folder.mkdir(parents=True)
    payload = {"model": state, "args": args, "checkpoint_version": 3.0, "iteration": 0}
    torch.save(payload, folder / RANK_FILE)

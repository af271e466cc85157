"""Megatron-Core (legacy torch or torch_dist) → HF folder in the released layout, streamed tensor by tensor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .checks import ConversionError, DtypeGuard, check_coverage
from .fsutil import atomic_output_dir, check_output_dir
from .hf_folder import (
    DEFAULT_MAX_SHARD_BYTES,
    ConversionReport,
    describe_plan,
    has_tokenizer,
    save_config,
    save_processor_files,
    stream_weights,
)
from .layout import checkpoint_shapes
from .megatron_legacy import LegacyMegatronView
from .megatron_names import Recipe, is_dropped, recipes
from .recipe_ops import ModelDims, check_shard_shapes, to_hf
from .safetensors_io import TensorSpec
from .torch_dist import TorchDistView, is_torch_dist


@dataclass(frozen=True)
class MegatronToHfOptions:
    """Options of :func:`megatron_to_hf`.

    Attributes:
        dtype: cast every tensor to this dtype (None: keep the stored dtype; no cast, like the official tool).
        allow_mixed_dtypes: accept checkpoints whose tensors have different floating dtypes.
        max_shard_bytes: size limit of each output safetensors shard.
        skeleton: an HF folder whose tokenizer/processor files are used (its config too, unless given).
        tokenizer: a folder with tokenizer files (when there is no skeleton).
        source_format: ``"auto"``, ``"torch"`` (legacy) or ``"torch_dist"``.
    """

    dtype: torch.dtype | None = None
    allow_mixed_dtypes: bool = False
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
    skeleton: Path | None = None
    tokenizer: Path | None = None
    source_format: str = "auto"


def open_megatron(path: Path, source_format: str = "auto"):
    """A legacy or torch_dist view of ``path`` (auto-detected from ``.metadata``)."""
    if not path.exists():
        raise ConversionError(f"Megatron checkpoint {str(path)!r} does not exist")
    if source_format == "torch_dist" or (source_format == "auto" and is_torch_dist(path)):
        return TorchDistView(path)
    if source_format not in ("auto", "torch"):
        raise ConversionError(
            f"unknown Megatron format {source_format!r}; expected auto, torch or torch_dist"
        )
    return LegacyMegatronView(path)


def plan_megatron_to_hf(view, config, options: MegatronToHfOptions) -> tuple[list[Recipe], list[TensorSpec]]:
    """Validates names, shapes and dtypes against ``config`` (no data read) and returns the ordered plan."""
    items = recipes(config)
    hf_shapes = checkpoint_shapes(config)
    produced = [name for r in items for name in r.hf]
    check_coverage(produced, hf_shapes, "internal: the Megatron name map does not cover the HF layout")
    names = view.names()
    check_coverage(
        names, {r.megatron for r in items}, f"{view.describe()}", dropped=[n for n in names if is_dropped(n)]
    )
    dims = ModelDims.from_config(config)
    guard = DtypeGuard(allow_mixed=options.allow_mixed_dtypes or options.dtype is not None)
    items = sorted(items, key=lambda r: view.order(r.megatron))
    plan = []
    for r in items:
        check_shard_shapes(
            r, view.shard_shapes(r.megatron), [hf_shapes[h] for h in r.hf], dims, view.ranks(r.megatron)
        )
        dtypes = view.shard_dtypes(r.megatron)
        for rank, dtype in zip(view.ranks(r.megatron), dtypes):
            guard(r.megatron, dtype, f" (on {rank})")
        stored = dtypes[0]
        plan += [TensorSpec(h, hf_shapes[h], options.dtype or stored) for h in r.hf]
    return items, plan


def _produce(
    view, items: list[Recipe], dims: ModelDims, dtype: torch.dtype | None
) -> Iterator[tuple[str, torch.Tensor]]:
    for r in items:
        outs = to_hf(r, view.shards(r.megatron), dims, view.ranks(r.megatron))
        for name, tensor in zip(r.hf, outs):
            yield name, tensor if dtype is None else tensor.to(dtype)


def megatron_to_hf(
    source: str | Path,
    out: str | Path | None,
    config,
    options: MegatronToHfOptions = MegatronToHfOptions(),
    *,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    progress_factory: Callable[[int, str], object] | None = None,
) -> ConversionReport:
    """Converts a Megatron checkpoint to an HF folder ``out`` (never touched when anything fails).

    Args:
        source: the checkpoint root (with ``latest_checkpointed_iteration.txt``) or an iteration folder.
        out: the new folder (must not exist); ignored with ``dry_run``.
        config: the model's ``LlavaOnevision2Config`` / ``LlavaOnevision2MoeConfig``.
        dry_run: validate everything (names, shapes, dtypes, values) and print the plan; write nothing.
    """
    source = Path(source)
    out_path = None if dry_run else check_output_dir(out, source, options.skeleton, options.tokenizer)
    view = open_megatron(source, options.source_format)
    items, plan = plan_megatron_to_hf(view, config, options)
    dims = ModelDims.from_config(config)
    log(describe_plan(plan, options.max_shard_bytes, f"{view.describe()} -> HF ({type(config).__name__})"))
    bar = progress_factory(len(plan), "megatron->hf") if progress_factory else None
    update = bar.update if bar is not None else None
    try:
        if dry_run:
            report = stream_weights(None, plan, _produce(view, items, dims, options.dtype), progress=update)
        else:
            with atomic_output_dir(out_path) as tmp:
                report = stream_weights(
                    tmp, plan, _produce(view, items, dims, options.dtype),
                    max_shard_bytes=options.max_shard_bytes, progress=update,
                )  # fmt: skip
                save_config(tmp, config, options.dtype or plan[0].dtype)
                source_files = options.skeleton if has_tokenizer(options.skeleton) else options.tokenizer
                report.notes.append(save_processor_files(tmp, config, source_files))
            report.output = str(out_path)
    finally:
        if bar is not None:
            bar.close()
    log(report.summary())
    return report

"""HF folder (released layout) → Megatron-Core legacy torch checkpoint (chosen TP/PP/EP) or torch_dist.

Legacy output is written one rank file at a time (each file holds ``1/(TP·PP)`` of the model; HF tensors
are re-read per TP rank from the memory-mapped shards). torch_dist output is written by one
``torch.distributed.checkpoint.save`` call and so holds the whole model in memory once.
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .checks import ConversionError, DtypeGuard, check_coverage, check_finite, check_shape
from .fsutil import atomic_output_dir, check_output_dir
from .hf_folder import ConversionReport
from .layout import checkpoint_shapes, is_moe, load_config
from .megatron_legacy import TRACKER, local_name, rank_dir_name, write_rank_file
from .megatron_names import Recipe, recipes
from .recipe_ops import ModelDims, to_megatron
from .safetensors_io import SafetensorsFolder
from .torch_dist import write_torch_dist

_TE_LINEARS = ("linear_qkv.weight", "linear_proj.weight", "linear_fc1.weight", "linear_fc2.weight")


@dataclass(frozen=True)
class HfToMegatronOptions:
    """Options of :func:`hf_to_megatron`.

    Attributes:
        target_format: ``"torch"`` (legacy ``mp_rank_*`` files) or ``"torch_dist"``.
        tp / pp / ep: parallel sizes of the legacy output (torch_dist is parallelism-free).
        pp_layers: LLM layers per PP stage (default: an even split); the ViT and adapter are on stage 0.
        vocab_tp: torch_dist only: pad the vocabulary for this training TP size.
        dtype: cast every tensor (None: keep the stored dtype).
        grouped_gemm: legacy MoE only: name experts as TEGroupedMLP does (``mlp.experts.linear_fc1.weight<j>``)
            instead of SequentialMLP (``mlp.experts.local_experts.<j>.linear_fc1.weight``).
    """

    target_format: str = "torch"
    tp: int = 1
    pp: int = 1
    ep: int = 1
    pp_layers: tuple[int, ...] | None = None
    vocab_tp: int = 1
    dtype: torch.dtype | None = None
    grouped_gemm: bool = False


def stage_layers(num_layers: int, pp: int, pp_layers: tuple[int, ...] | None) -> list[int]:
    """LLM layers per pipeline stage."""
    if pp_layers is not None:
        if len(pp_layers) != pp or sum(pp_layers) != num_layers or min(pp_layers) < 0:
            raise ConversionError(
                f"--pp-layers {list(pp_layers)} must have {pp} entries >= 0 summing to the {num_layers} LLM layers"
            )
        return list(pp_layers)
    if num_layers % pp:
        raise ConversionError(f"{num_layers} LLM layers do not split evenly over PP={pp}; pass --pp-layers")
    return [num_layers // pp] * pp


def megatron_args(config, options: HfToMegatronOptions, tp: int, pp: int, ep: int) -> argparse.Namespace:
    """The ``args`` entry of the written checkpoint (the fields converters and loaders look at)."""
    text, vision = config.text_config, config.vision_config
    from .transforms import padded_vocab_size

    return argparse.Namespace(
        tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp, expert_model_parallel_size=ep,
        num_layers=text.num_hidden_layers, hidden_size=text.hidden_size,
        ffn_hidden_size=text.intermediate_size, num_attention_heads=text.num_attention_heads,
        num_query_groups=text.num_key_value_heads, kv_channels=ModelDims.from_config(config).head_dim,
        padded_vocab_size=padded_vocab_size(text.vocab_size, tp), make_vocab_size_divisible_by=128,
        num_experts=getattr(text, "num_experts", None) if is_moe(config) else None,
        moe_ffn_hidden_size=getattr(text, "moe_intermediate_size", None) if is_moe(config) else None,
        untie_embeddings_and_output_weights=True, transformer_impl="transformer_engine",
        ckpt_format=options.target_format, vision_num_layers=vision.num_hidden_layers,
        vision_hidden_size=vision.hidden_size, patch_size=vision.patch_size,
        spatial_merge_size=vision.spatial_merge_size,
    )  # fmt: skip


class _HfSource:
    """Checked, cached access to the HF tensors of a recipe."""

    def __init__(self, folder: SafetensorsFolder, config, allow_mixed: bool):
        self.folder = folder
        self.shapes = checkpoint_shapes(config)
        check_coverage(folder.names(), self.shapes, f"HF folder {str(folder.folder)!r}")
        guard = DtypeGuard(allow_mixed=allow_mixed)
        for name in sorted(self.shapes):
            spec = folder.spec(name)
            check_shape(name, spec.shape, self.shapes[name], "config does not match the weights?")
            guard(name, spec.dtype)
        self._checked: set[str] = set()

    def tensors(self, recipe: Recipe, dtype: torch.dtype | None) -> list[torch.Tensor]:
        out = []
        for name in recipe.hf:
            tensor = self.folder.get(name)
            if name not in self._checked:
                check_finite(name, tensor)
                self._checked.add(name)
            out.append(tensor if dtype is None else tensor.to(dtype))
        return out


def describe_stages(counts: list[int], options: HfToMegatronOptions) -> str:
    """What each pipeline stage's rank files hold."""
    lines = []
    for stage, n in enumerate(counts):
        first = sum(counts[:stage])
        parts = ["ViT", "adapter", "embedding"] if stage == 0 else []
        parts.append(f"LLM layers {first}-{first + n - 1}" if n else "no LLM layers")
        if stage == len(counts) - 1:
            parts += ["final norm", "output layer"]
        files = options.tp * options.ep
        lines.append(f"  stage {stage}: {', '.join(parts)} ({files} rank file{'s' if files > 1 else ''})")
    return "\n".join(lines)


def _stage_of(recipe: Recipe, counts: list[int], pp: int) -> int:
    if recipe.layer is not None:
        return next(p for p in range(pp) if recipe.layer < sum(counts[: p + 1]))
    if recipe.megatron.startswith("language_model.") and not recipe.megatron.startswith(
        "language_model.embedding."
    ):
        return pp - 1
    return 0


def _write_legacy(tmp: Path, source: _HfSource, items: list[Recipe], config, options, report, bar) -> None:
    dims = ModelDims.from_config(config)
    tp, pp, ep = options.tp, options.pp, options.ep
    experts = getattr(config.text_config, "num_experts", 0) if is_moe(config) else 0
    if ep > 1 and (not experts or experts % ep):
        raise ConversionError(f"EP={ep} must divide the number of experts ({experts or 'dense model: none'})")
    per_rank = experts // ep if experts else 1
    counts = stage_layers(config.text_config.num_hidden_layers, pp, options.pp_layers)
    offsets = [sum(counts[:p]) for p in range(pp)]
    folder = tmp / "release"
    for stage in range(pp):
        stage_items = [r for r in items if _stage_of(r, counts, pp) == stage]
        for e in range(ep):
            mine = [r for r in stage_items if r.expert is None or r.expert // per_rank == e]
            for t in range(tp):
                state: OrderedDict[str, object] = OrderedDict()
                for r in mine:
                    shard = to_megatron(r, source.tensors(r, options.dtype), dims, tp)[t]
                    name = local_name(r.megatron, offsets[stage], per_rank, options.grouped_gemm)
                    state[name] = shard.clone()
                    report.tensors += 1
                    report.bytes += shard.numel() * shard.element_size()
                    if name.endswith(_TE_LINEARS):
                        state[name.rsplit(".", 1)[0] + "._extra_state"] = None
                write_rank_file(
                    folder / rank_dir_name(t, stage, e, pp, ep),
                    state,
                    megatron_args(config, options, tp, pp, ep),
                )
                del state
                if bar is not None:
                    bar.update(1)
    (tmp / TRACKER).write_text("release\n")


def _write_dist(tmp: Path, source: _HfSource, items: list[Recipe], config, options, report) -> None:
    dims = ModelDims.from_config(config)
    tensors = {}
    for r in items:
        full = to_megatron(r, source.tensors(r, options.dtype), dims, 1)[0]
        if r.kind == "vocab" and options.vocab_tp > 1:
            from .transforms import pad_vocab, padded_vocab_size

            full = pad_vocab(full[: dims.vocab], padded_vocab_size(dims.vocab, options.vocab_tp))
        tensors[r.megatron] = full
        report.tensors += 1
        report.bytes += full.numel() * full.element_size()
    write_torch_dist(tmp / "release", tensors, megatron_args(config, options, 1, 1, 1))
    (tmp / TRACKER).write_text("release\n")


def hf_to_megatron(
    source: str | Path,
    out: str | Path | None,
    options: HfToMegatronOptions = HfToMegatronOptions(),
    *,
    allow_mixed_dtypes: bool = False,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    progress_factory: Callable[[int, str], object] | None = None,
) -> ConversionReport:
    """Converts an HF folder to a Megatron checkpoint root ``out`` (tracker file + ``release/``)."""
    source = Path(source)
    if options.target_format not in ("torch", "torch_dist"):
        raise ConversionError(
            f"unknown Megatron format {options.target_format!r}; expected torch or torch_dist"
        )
    out_path = None if dry_run else check_output_dir(out, source)
    config = load_config(source)
    hf = _HfSource(SafetensorsFolder(source), config, allow_mixed_dtypes or options.dtype is not None)
    items = recipes(config)
    layout = (
        f"TP={options.tp} PP={options.pp} EP={options.ep}"
        if options.target_format == "torch"
        else "torch_dist"
    )
    counts = stage_layers(config.text_config.num_hidden_layers, options.pp, options.pp_layers)
    log(
        f"HF folder {str(source)!r} ({len(hf.shapes)} tensors) -> Megatron {options.target_format} ({layout})"
    )
    if options.target_format == "torch":
        log(describe_stages(counts, options))
    if dry_run:
        tp = options.tp if options.target_format == "torch" else 1
        for r in items:  # every read, transform and check; nothing written
            to_megatron(r, hf.tensors(r, options.dtype), ModelDims.from_config(config), tp)
        report = ConversionReport(tensors=len(items), dry_run=True)
        log(report.summary())
        return report
    report = ConversionReport()
    t0 = time.perf_counter()
    ranks = options.tp * options.pp * options.ep
    bar = (
        progress_factory(ranks, "hf->megatron ranks")
        if progress_factory and options.target_format == "torch"
        else None
    )
    try:
        with atomic_output_dir(out_path) as tmp:
            if options.target_format == "torch":
                _write_legacy(tmp, hf, items, config, options, report, bar)
            else:
                _write_dist(tmp, hf, items, config, options, report)
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - t0
    report.output = str(out_path)
    log(report.summary())
    return report

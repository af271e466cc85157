"""Stage-0 merge: a standalone OneVision-Encoder folder + a Qwen3 / Qwen3-MoE folder (+ optional projector)
→ an initial LLaVA-OneVision-2 folder, with strict coverage and built-in validation.

Encoder keys (spec architecture.md §7.2): ``_orig_mod.`` stripped; ``q/k/v_proj`` fused (all three or an
error) into ``qkv``; ``out_proj`` → ``proj``; ``layernorm_post.*``, ``head.*`` and ``*inv_freq*`` dropped and
listed. Projector ``[model.]mm_projector.*`` → ``model.visual.merger.*`` (a fresh, seeded merger when none
is given). LLM ``model.*`` → ``model.language_model.*``; ``lm_head`` kept, or copied from the embeddings of a
tied LLM. Every target tensor is written exactly once and every source tensor is used or listed as dropped.
The encoder's own ``layer_norm_eps`` is kept (the official tool drops it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checks import ConversionError, DtypeGuard, check_coverage, check_shape
from .fsutil import atomic_output_dir, check_output_dir
from .hf_folder import (
    DEFAULT_MAX_SHARD_BYTES,
    ConversionReport,
    describe_plan,
    save_config,
    save_processor_files,
    stream_weights,
)
from .layout import checkpoint_shapes
from .safetensors_io import SafetensorsFolder, TensorSpec

VISION_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "patch_size",
                 "image_size", "layer_norm_eps", "hidden_act", "num_channels", "rope_theta")  # fmt: skip
_DROPPED = re.compile(r"^(layernorm_post\.|head\.)|inv_freq")
_QKV = re.compile(r"^(encoder\.layers\.\d+\.self_attn\.)([qkv])_proj\.(weight|bias)$")
_PROJECTOR = ("model.mm_projector.", "mm_projector.")


@dataclass(frozen=True)
class MergeOptions:
    """Options of :func:`merge_stage0`.

    Attributes:
        spatial_merge_size: merger block side (2 for p14m2, 3 for the m3 variants).
        dtype: cast every tensor (None: keep the source dtypes).
        allow_mixed_dtypes: accept sources of different floating dtypes without ``dtype``.
        seed: seed of the fresh merger.
        token_ids: overrides of ``image_token_id`` / ``video_token_id`` / ``vision_start_token_id`` /
            ``vision_end_token_id`` (default: the Qwen3 ids).
        validate: compare the merged vision tower and text logits with the sources before publishing.
        processor: folder with the tokenizer/processor files (default: the LLM folder).
    """

    spatial_merge_size: int = 2
    dtype: torch.dtype | None = None
    allow_mixed_dtypes: bool = False
    seed: int = 0
    token_ids: dict[str, int] = field(default_factory=dict)
    validate: bool = True
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
    processor: Path | None = None


@dataclass(frozen=True)
class Source:
    """How one target tensor is made: ``copy`` (one source), ``qkv`` (three, concatenated) or ``init``."""

    kind: str
    folder: SafetensorsFolder | None
    names: tuple[str, ...]


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ConversionError(f"{what} {str(path.parent)!r} has no config.json")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ConversionError(f"{str(path)!r} is not valid JSON: {exc}") from None


def merged_config(vit_config: dict, llm_config: dict, options: MergeOptions):
    """The LLaVA-OneVision-2 (or MoE) config of the merged model."""
    from ..configuration_llava_onevision2 import LlavaOnevision2Config
    from ..configuration_llava_onevision2_moe import LlavaOnevision2MoeConfig

    model_type = llm_config.get("model_type")
    if model_type not in ("qwen3", "qwen3_moe"):
        raise ConversionError(f"LLM config has model_type={model_type!r}; expected 'qwen3' or 'qwen3_moe'")
    text = {
        k: v for k, v in llm_config.items() if k not in ("architectures", "auto_map", "transformers_version")
    }
    text["tie_word_embeddings"] = False
    vision = {k: vit_config[k] for k in VISION_FIELDS if k in vit_config}
    vision.update(spatial_merge_size=options.spatial_merge_size, out_hidden_size=text["hidden_size"])
    cls = LlavaOnevision2MoeConfig if model_type == "qwen3_moe" else LlavaOnevision2Config
    try:
        return cls(vision_config=vision, text_config=text, **options.token_ids)
    except Exception as exc:
        raise ConversionError(f"the merged config is invalid: {exc}") from None


def _encoder_sources(vit: SafetensorsFolder) -> tuple[dict[str, Source], list[str]]:
    targets: dict[str, Source] = {}
    dropped: list[str] = []
    qkv: dict[tuple[str, str], dict[str, str]] = {}
    for name in vit.names():
        key = name.replace("_orig_mod.", "")
        if _DROPPED.search(key):
            dropped.append(name)
        elif m := _QKV.match(key):
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = name
        else:
            targets["model.visual." + key.replace("self_attn.out_proj.", "self_attn.proj.")] = Source(
                "copy", vit, (name,)
            )
    for (prefix, param), parts in sorted(qkv.items()):
        if set(parts) != {"q", "k", "v"}:
            missing = sorted({"q", "k", "v"} - set(parts))
            raise ConversionError(
                f"incomplete q/k/v in the encoder: {prefix}{{q,k,v}}_proj.{param} lacks "
                f"{', '.join(f'{prefix}{t}_proj.{param}' for t in missing)}"
            )
        names = tuple(parts[t] for t in "qkv")
        targets[f"model.visual.{prefix}qkv.{param}"] = Source("qkv", vit, names)
    return targets, dropped


def _llm_sources(llm: SafetensorsFolder) -> tuple[dict[str, Source], list[str]]:
    targets: dict[str, Source] = {}
    for name in llm.names():
        if name == "lm_head.weight":
            targets[name] = Source("copy", llm, (name,))
        elif name.startswith("model."):
            targets["model.language_model." + name[len("model.") :]] = Source("copy", llm, (name,))
        else:
            raise ConversionError(
                f"unexpected tensor {name!r} in the LLM folder (expected model.* or lm_head.weight)"
            )
    notes = []
    if "lm_head.weight" not in targets:
        targets["lm_head.weight"] = Source("copy", llm, ("model.embed_tokens.weight",))
        notes.append("the LLM has no lm_head.weight (tied): copied from model.embed_tokens.weight")
    return targets, notes


def _projector_sources(projector: SafetensorsFolder | None, merger_names: list[str]) -> dict[str, Source]:
    if projector is None:
        return {name: Source("init", None, ()) for name in merger_names}
    targets = {}
    for name in projector.names():
        prefix = next((p for p in _PROJECTOR if name.startswith(p)), None)
        if prefix is None:
            raise ConversionError(
                f"unexpected tensor {name!r} in the projector folder (expected model.mm_projector.*)"
            )
        targets["model.visual.merger." + name[len(prefix) :]] = Source("copy", projector, (name,))
    return targets


def plan_merge(vit: SafetensorsFolder, llm: SafetensorsFolder, projector, config, options: MergeOptions):
    """Checks coverage, shapes and dtypes; returns ``(sources, plan, dropped, notes)``."""
    shapes = checkpoint_shapes(config)
    enc, dropped = _encoder_sources(vit)
    lm, notes = _llm_sources(llm)
    merger = sorted(n for n in shapes if n.startswith("model.visual.merger."))
    proj = _projector_sources(projector, merger)
    if projector is None:
        notes.append(f"no projector given: fresh merger (seed {options.seed})")
    sources: dict[str, Source] = {}
    for part in (enc, proj, lm):
        for name, src in part.items():
            if name in sources:
                raise ConversionError(
                    f"target tensor {name!r} would be written twice ({src.names} and {sources[name].names})"
                )
            sources[name] = src
    check_coverage(sources, shapes, "merge: target tensors vs the LLaVA-OneVision-2 layout")
    guard = DtypeGuard(allow_mixed=options.allow_mixed_dtypes or options.dtype is not None)
    plan = []
    init_dtype = options.dtype
    for name, src in sources.items():
        if src.kind == "init":
            continue
        specs = [src.folder.spec(n) for n in src.names]
        for spec in specs:
            guard(spec.name, spec.dtype, f" (in {src.folder.folder})")
        rows = sum(s.shape[0] for s in specs) if src.kind == "qkv" else specs[0].shape[0]
        check_shape(
            src.names[0] if src.kind == "copy" else name, (rows, *specs[0].shape[1:]), shapes[name], "merge"
        )
        init_dtype = init_dtype or specs[0].dtype
    for name, src in sources.items():
        dtype = options.dtype or (init_dtype if src.kind == "init" else src.folder.spec(src.names[0]).dtype)
        plan.append(TensorSpec(name, shapes[name], dtype))
    return sources, plan, dropped, notes


def _produce(sources: dict[str, Source], plan: list[TensorSpec], config, seed: int):
    generator = torch.Generator().manual_seed(seed)
    std = config.vision_config.initializer_range
    for spec in plan:
        src = sources[spec.name]
        if src.kind == "init":
            if ".ln_q.weight" in spec.name:
                tensor = torch.ones(spec.shape)
            elif spec.name.endswith("bias"):
                tensor = torch.zeros(spec.shape)
            else:
                tensor = torch.randn(spec.shape, generator=generator) * std
        elif src.kind == "qkv":
            tensor = torch.cat([src.folder.get(n) for n in src.names], dim=0)
        else:
            tensor = src.folder.get(src.names[0])
        yield spec.name, tensor.to(spec.dtype).contiguous()


def merge_stage0(
    vit: str | Path,
    llm: str | Path,
    out: str | Path | None,
    projector: str | Path | None = None,
    options: MergeOptions = MergeOptions(),
    *,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    progress_factory: Callable[[int, str], object] | None = None,
) -> ConversionReport:
    """Merges the sources into ``out`` (published only after validation passes)."""
    vit, llm = Path(vit), Path(llm)
    projector = Path(projector) if projector is not None else None
    out_path = None if dry_run else check_output_dir(out, vit, llm, projector, options.processor)
    vit_config = _read_json(vit / "config.json", "encoder folder")
    llm_config = _read_json(llm / "config.json", "LLM folder")
    config = merged_config(vit_config, llm_config, options)
    vit_st, llm_st = SafetensorsFolder(vit), SafetensorsFolder(llm)
    proj_st = SafetensorsFolder(projector) if projector is not None else None
    sources, plan, dropped, notes = plan_merge(vit_st, llm_st, proj_st, config, options)
    log(
        describe_plan(
            plan, options.max_shard_bytes, f"stage-0 merge {vit} + {llm} -> {type(config).__name__}"
        )
    )
    for name in dropped:
        log(f"  dropped from the encoder: {name}")
    bar = progress_factory(len(plan), "merge") if progress_factory else None
    update = bar.update if bar is not None else None
    try:
        if dry_run:
            report = stream_weights(
                None, plan, _produce(sources, plan, config, options.seed), progress=update
            )
        else:
            with atomic_output_dir(out_path) as tmp:
                report = stream_weights(
                    tmp, plan, _produce(sources, plan, config, options.seed),
                    max_shard_bytes=options.max_shard_bytes, progress=update,
                )  # fmt: skip
                save_config(tmp, config, options.dtype or plan[0].dtype)
                notes.append(save_processor_files(tmp, config, options.processor or llm))
                if options.validate:
                    from .merge_validation import validate_merge

                    notes += validate_merge(tmp, vit_st, vit_config, llm, log=log)
            report.output = str(out_path)
    finally:
        if bar is not None:
            bar.close()
    report.notes += [*notes, f"dropped {len(dropped)} encoder tensors: {', '.join(dropped)}"]
    for note in notes:
        log(note)
    log(report.summary())
    return report

"""The Megatron-Core ⇄ HF name map of LLaVA-OneVision-2 (dense and MoE), one recipe per Megatron tensor.

Megatron names here are *canonical*: global layer index and global expert index (the legacy readers and
writers translate to per-stage / per-EP-rank local indices; torch_dist stacks layers). Spec
architecture.md §7.1 with training_conversion.md §1.2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .layout import is_moe

LLM = "language_model."
VIT = "vision_model."
ADAPTER = "adapter."

# Megatron-only entries that carry no weights: TE FP8 state and rotary caches
DROPPED_PATTERNS = (
    re.compile(r"\._extra_state$"),
    re.compile(r"(^|\.)inv_freq"),
    re.compile(r"rotary_pos_emb"),
)


def is_dropped(name: str) -> bool:
    return any(p.search(name) for p in DROPPED_PATTERNS)


@dataclass(frozen=True)
class Recipe:
    """One Megatron tensor and the HF tensor(s) it becomes.

    Attributes:
        megatron: canonical Megatron name.
        hf: HF names it maps to (several for split tensors: q/k/v, gate/up).
        tp_dim: the dim Megatron shards over TP ranks (None: replicated on every rank).
        kind: transform: ``copy``, ``llm_qkv``, ``vit_qkv``, ``gate_up``, ``patch`` or ``vocab``.
        layer: global LLM layer index (for the PP stage), or None.
        expert: global expert index (for the EP rank), or None.
    """

    megatron: str
    hf: tuple[str, ...]
    tp_dim: int | None
    kind: str = "copy"
    layer: int | None = None
    expert: int | None = None
    tower: str = "llm"


def _vit_recipes(vision) -> list[Recipe]:
    out = [
        Recipe(
            VIT + "patch_embed.proj.weight", ("model.visual.embeddings.patch_embedding.weight",), 0, "patch"
        ),
        Recipe(VIT + "pre_layernorm.weight", ("model.visual.layernorm_pre.weight",), None),
        Recipe(VIT + "pre_layernorm.bias", ("model.visual.layernorm_pre.bias",), None),
    ]
    for i in range(vision.num_hidden_layers):
        mg, hf = f"{VIT}decoder.layers.{i}.", f"model.visual.encoder.layers.{i}."
        out += [
            Recipe(mg + "self_attention.linear_qkv.layer_norm_weight", (hf + "layer_norm1.weight",), None),
            Recipe(mg + "self_attention.linear_qkv.layer_norm_bias", (hf + "layer_norm1.bias",), None),
            Recipe(mg + "self_attention.linear_qkv.weight", (hf + "self_attn.qkv.weight",), 0, "vit_qkv"),
            Recipe(mg + "self_attention.linear_qkv.bias", (hf + "self_attn.qkv.bias",), 0, "vit_qkv"),
            Recipe(mg + "self_attention.linear_proj.weight", (hf + "self_attn.proj.weight",), 1),
            Recipe(mg + "self_attention.linear_proj.bias", (hf + "self_attn.proj.bias",), None),
            Recipe(mg + "mlp.linear_fc1.layer_norm_weight", (hf + "layer_norm2.weight",), None),
            Recipe(mg + "mlp.linear_fc1.layer_norm_bias", (hf + "layer_norm2.bias",), None),
            Recipe(mg + "mlp.linear_fc1.weight", (hf + "mlp.fc1.weight",), 0),
            Recipe(mg + "mlp.linear_fc1.bias", (hf + "mlp.fc1.bias",), 0),
            Recipe(mg + "mlp.linear_fc2.weight", (hf + "mlp.fc2.weight",), 1),
            Recipe(mg + "mlp.linear_fc2.bias", (hf + "mlp.fc2.bias",), None),
        ]
    for mg, hf in (("layernorm", "ln_q"), ("linear_fc1", "mlp.0"), ("linear_fc2", "mlp.2")):
        for p in ("weight", "bias"):
            out.append(Recipe(f"{ADAPTER}{mg}.{p}", (f"model.visual.merger.{hf}.{p}",), None))
    return [Recipe(r.megatron, r.hf, r.tp_dim, r.kind, tower="vit") for r in out]


def _llm_layer_recipes(text, i: int, moe: bool) -> list[Recipe]:
    mg, hf = f"{LLM}decoder.layers.{i}.", f"model.language_model.layers.{i}."
    attn = hf + "self_attn."
    out = [
        Recipe(mg + "self_attention.linear_qkv.layer_norm_weight", (hf + "input_layernorm.weight",), None),
        Recipe(
            mg + "self_attention.linear_qkv.weight",
            (attn + "q_proj.weight", attn + "k_proj.weight", attn + "v_proj.weight"),
            0,
            "llm_qkv",
        ),
        Recipe(mg + "self_attention.q_layernorm.weight", (attn + "q_norm.weight",), None),
        Recipe(mg + "self_attention.k_layernorm.weight", (attn + "k_norm.weight",), None),
        Recipe(mg + "self_attention.linear_proj.weight", (attn + "o_proj.weight",), 1),
    ]
    if not moe:
        out += [
            Recipe(mg + "mlp.linear_fc1.layer_norm_weight", (hf + "post_attention_layernorm.weight",), None),
            Recipe(
                mg + "mlp.linear_fc1.weight",
                (hf + "mlp.gate_proj.weight", hf + "mlp.up_proj.weight"),
                0,
                "gate_up",
            ),
            Recipe(mg + "mlp.linear_fc2.weight", (hf + "mlp.down_proj.weight",), 1),
        ]
        return out
    out += [
        Recipe(mg + "pre_mlp_layernorm.weight", (hf + "post_attention_layernorm.weight",), None),
        Recipe(mg + "mlp.router.weight", (hf + "mlp.gate.weight",), None),
    ]
    for j in range(text.num_experts):
        emg, ehf = f"{mg}mlp.experts.local_experts.{j}.", f"{hf}mlp.experts.{j}."
        out += [
            Recipe(
                emg + "linear_fc1.weight",
                (ehf + "gate_proj.weight", ehf + "up_proj.weight"),
                0,
                "gate_up",
                expert=j,
            ),
            Recipe(emg + "linear_fc2.weight", (ehf + "down_proj.weight",), 1, expert=j),
        ]
    return out


def recipes(config) -> list[Recipe]:
    """Every Megatron tensor of ``config``'s model, in checkpoint order (ViT, adapter, LLM)."""
    text, moe = config.text_config, is_moe(config)
    if moe and (getattr(text, "mlp_only_layers", None) or getattr(text, "decoder_sparse_step", 1) != 1):
        from .checks import ConversionError

        raise ConversionError(
            "MoE configs with dense layers (mlp_only_layers / decoder_sparse_step) are not supported"
        )
    out = _vit_recipes(config.vision_config)
    out.append(
        Recipe(
            LLM + "embedding.word_embeddings.weight",
            ("model.language_model.embed_tokens.weight",),
            0,
            "vocab",
        )
    )
    for i in range(text.num_hidden_layers):
        out += [
            Recipe(r.megatron, r.hf, r.tp_dim, r.kind, layer=i, expert=r.expert)
            for r in _llm_layer_recipes(text, i, moe)
        ]
    out += [
        Recipe(LLM + "decoder.final_layernorm.weight", ("model.language_model.norm.weight",), None),
        Recipe(LLM + "output_layer.weight", ("lm_head.weight",), 0, "vocab"),
    ]
    return out


_LAYER = re.compile(r"^(language_model|vision_model)\.decoder\.layers\.(\d+)\.(.+)$")
_EXPERT = re.compile(r"^mlp\.experts\.local_experts\.(\d+)\.(.+)$")
_GROUPED = re.compile(r"^mlp\.experts\.(linear_fc[12])\.weight(\d+)$")  # TEGroupedMLP (--moe-grouped-gemm)


def split_layer_key(name: str) -> tuple[str, int, str] | None:
    """``("language_model", 3, "mlp.linear_fc2.weight")`` for a per-layer key, else None."""
    m = _LAYER.match(name)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def split_expert_key(sub: str) -> tuple[int, str] | None:
    """``(7, "linear_fc1.weight")`` for a per-layer expert sub-key in SequentialMLP
    (``mlp.experts.local_experts.7.linear_fc1.weight``) or grouped-GEMM (``mlp.experts.linear_fc1.weight7``)
    naming, else None."""
    if m := _EXPERT.match(sub):
        return int(m.group(1)), m.group(2)
    if m := _GROUPED.match(sub):
        return int(m.group(2)), f"{m.group(1)}.weight"
    return None


def expert_sub_key(index: int, rest: str, grouped: bool) -> str:
    """Inverse of :func:`split_expert_key` in the chosen naming."""
    if grouped:
        return f"mlp.experts.{rest.removesuffix('.weight')}.weight{index}"
    return f"mlp.experts.local_experts.{index}.{rest}"

"""Applying a :class:`~.megatron_names.Recipe`: Megatron TP shards → HF tensors and back, and the
expected Megatron shape of each recipe (for checks before any data is read)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import transforms as T
from .checks import ConversionError, check_replicas_agree
from .megatron_names import Recipe


@dataclass(frozen=True)
class ModelDims:
    """The sizes the transforms need, read from a config."""

    heads: int
    kv_heads: int
    head_dim: int
    vit_heads: int
    vit_hidden: int
    channels: int
    patch: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> ModelDims:
        text, vision = config.text_config, config.vision_config
        return cls(
            heads=text.num_attention_heads,
            kv_heads=text.num_key_value_heads,
            head_dim=getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads,
            vit_heads=vision.num_attention_heads,
            vit_hidden=vision.hidden_size,
            channels=vision.num_channels,
            patch=vision.patch_size,
            vocab=text.vocab_size,
        )


def megatron_full_shape(
    recipe: Recipe, hf_shapes: list[tuple[int, ...]], dims: ModelDims, tp: int
) -> tuple[int, ...]:
    """The Megatron tensor's shape with its TP shards concatenated (vocab padded for ``tp``)."""
    first = hf_shapes[0]
    if recipe.kind in ("llm_qkv", "gate_up"):
        return (sum(s[0] for s in hf_shapes), *first[1:])
    if recipe.kind == "vocab":
        return (T.padded_vocab_size(first[0], tp), *first[1:])
    if recipe.kind == "patch":
        return (first[0], first[1] * first[2] * first[3])
    return first


def check_shard_shapes(
    recipe: Recipe, shapes: list[tuple[int, ...]], hf_shapes, dims: ModelDims, ranks: list[str]
) -> None:
    """Fails (naming the tensor) when TP shards disagree in shape or do not fit the config."""
    name = recipe.megatron
    if recipe.kind == "patch":
        return  # replicated vs sharded is decided by shape in the transform
    dim = recipe.tp_dim
    for shape, rank in zip(shapes[1:], ranks[1:]):
        if (
            len(shape) != len(shapes[0])
            or any(a != b for d, (a, b) in enumerate(zip(shape, shapes[0])) if d != dim)
            or (dim is not None and shape[dim] != shapes[0][dim])
        ):
            raise ConversionError(
                f"tensor {name!r}: TP shards disagree in shape ({rank}: {list(shape)}, {ranks[0]}: {list(shapes[0])})"
            )
    full = list(shapes[0])
    if dim is not None:
        full[dim] = sum(s[dim] for s in shapes)
    expected = list(megatron_full_shape(recipe, hf_shapes, dims, 1))
    if recipe.kind == "vocab":
        if full[1:] != expected[1:] or full[0] < dims.vocab:
            raise ConversionError(
                f"tensor {name!r} has (TP-merged) shape {full}, expected [>= {dims.vocab}, {expected[1]}] "
                "(config does not match the weights?)"
            )
        return
    if full != expected:
        raise ConversionError(
            f"tensor {name!r} has (TP-merged) shape {full}, expected {expected} from the config "
            "(config does not match the weights?)"
        )


def to_hf(
    recipe: Recipe, shards: list[torch.Tensor], dims: ModelDims, ranks: list[str]
) -> list[torch.Tensor]:
    """TP shards (one per rank) → the recipe's HF tensors, in ``recipe.hf`` order."""
    name, kind = recipe.megatron, recipe.kind
    if recipe.tp_dim is None:
        return [check_replicas_agree(name, shards, ranks).contiguous()]
    if kind == "patch":
        return [T.patch_shards_to_conv(name, shards, dims.vit_hidden, dims.channels, dims.patch)]
    if kind == "gate_up":
        return list(T.fc1_shards_to_gate_up(shards))
    full = T.merge_tp(shards, recipe.tp_dim)
    if kind == "llm_qkv":
        return list(T.llm_qkv_to_hf(full, dims.heads, dims.kv_heads, dims.head_dim))
    if kind == "vit_qkv":
        return [T.vit_qkv_to_hf(full, dims.vit_heads)]
    if kind == "vocab":
        return [full[: dims.vocab].contiguous()]
    return [full.contiguous()]


def to_megatron(recipe: Recipe, tensors: list[torch.Tensor], dims: ModelDims, tp: int) -> list[torch.Tensor]:
    """The recipe's HF tensors → one Megatron tensor per TP rank (replicas for replicated tensors)."""
    kind = recipe.kind
    if kind == "patch":
        return T.conv_to_patch_shards(tensors[0], tp)
    if kind == "gate_up":
        return T.gate_up_to_fc1_shards(tensors[0], tensors[1], tp)
    if kind == "llm_qkv":
        if dims.kv_heads % tp:
            raise ConversionError(f"TP={tp} must divide the {dims.kv_heads} KV heads of the LLM")
        full = T.hf_qkv_to_llm(*tensors, dims.kv_heads, dims.head_dim)
    elif kind == "vit_qkv":
        if dims.vit_heads % tp:
            raise ConversionError(f"TP={tp} must divide the {dims.vit_heads} ViT heads")
        full = T.hf_qkv_to_vit(tensors[0], dims.vit_heads)
    elif kind == "vocab":
        full = T.pad_vocab(tensors[0], T.padded_vocab_size(tensors[0].shape[0], tp))
    else:
        full = tensors[0]
    try:
        return T.split_tp(full, tp, recipe.tp_dim)
    except ConversionError as exc:
        raise ConversionError(f"tensor {recipe.megatron!r}: {exc}") from None

"""Tensor transforms between Megatron-Core and the released HF layout (spec training_conversion.md §1.2).

All functions are pure and exact (only views, slices and concatenations; never arithmetic), so every
conversion round trip is bit-exact. "Full" Megatron tensors are the TP shards concatenated on their TP dim.
"""

from __future__ import annotations

import torch

from .checks import ConversionError


def llm_qkv_to_hf(
    fused: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Megatron LLM ``linear_qkv`` ``[KV·(H/KV+2)·D, hidden]`` (per KV group ``[q×H/KV; k; v]``) → q, k, v."""
    per_group = num_heads // num_kv_heads
    grouped = fused.reshape(num_kv_heads, per_group + 2, head_dim, -1)
    q = grouped[:, :per_group].reshape(num_heads * head_dim, -1)
    k = grouped[:, per_group].reshape(num_kv_heads * head_dim, -1)
    v = grouped[:, per_group + 1].reshape(num_kv_heads * head_dim, -1)
    return q.contiguous(), k.contiguous(), v.contiguous()


def hf_qkv_to_llm(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_kv_heads: int, head_dim: int
) -> torch.Tensor:
    """Inverse of :func:`llm_qkv_to_hf`."""
    cols = q.shape[1:]
    qg = q.reshape(num_kv_heads, -1, head_dim, *cols)
    kg = k.reshape(num_kv_heads, 1, head_dim, *cols)
    vg = v.reshape(num_kv_heads, 1, head_dim, *cols)
    return torch.cat([qg, kg, vg], dim=1).reshape(-1, *cols).contiguous()


def vit_qkv_to_hf(fused: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Megatron ViT ``linear_qkv`` (weight ``[3·hidden, hidden]`` or bias ``[3·hidden]``, per head
    ``[q_h; k_h; v_h]``) → the HF fused ``qkv`` ``[Q; K; V]``."""
    rest = fused.shape[1:]
    per_head = fused.reshape(num_heads, 3, -1, *rest)
    return per_head.transpose(0, 1).reshape(fused.shape).contiguous()


def hf_qkv_to_vit(fused: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Inverse of :func:`vit_qkv_to_hf`."""
    rest = fused.shape[1:]
    split = fused.reshape(3, num_heads, -1, *rest)
    return split.transpose(0, 1).reshape(fused.shape).contiguous()


def fc1_shards_to_gate_up(shards: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """SwiGLU ``linear_fc1`` TP shards (each ``[gate_t; up_t]``) → ``gate_proj``, ``up_proj``.

    With one shard (TP=1, or a torch_dist global tensor ``[all gate; all up]``) this is a plain split.
    """
    halves = [shard.chunk(2, dim=0) for shard in shards]
    if any(h[0].shape != h[1].shape for h in halves):
        raise ConversionError(
            f"linear_fc1 shard of {shards[0].shape[0]} rows cannot be split into gate and up"
        )
    gate = torch.cat([h[0] for h in halves], dim=0)
    up = torch.cat([h[1] for h in halves], dim=0)
    return gate.contiguous(), up.contiguous()


def gate_up_to_fc1_shards(gate: torch.Tensor, up: torch.Tensor, tp: int) -> list[torch.Tensor]:
    """Inverse of :func:`fc1_shards_to_gate_up`: one ``[gate_t; up_t]`` per TP rank."""
    return [torch.cat([g, u], dim=0).contiguous() for g, u in zip(gate.chunk(tp), up.chunk(tp))]


def padded_vocab_size(vocab_size: int, tp: int, divisible_by: int = 128) -> int:
    """Megatron's padded vocabulary: the next multiple of ``divisible_by × tp``."""
    multiple = divisible_by * tp
    return -(-vocab_size // multiple) * multiple


def pad_vocab(weight: torch.Tensor, padded: int) -> torch.Tensor:
    """Appends copies of the last row up to ``padded`` rows (what the official HF→Megatron pass writes)."""
    extra = padded - weight.shape[0]
    if extra <= 0:
        return weight
    return torch.cat([weight, weight[-1:].expand(extra, *weight.shape[1:])], dim=0)


def patch_shards_to_conv(
    name: str, shards: list[torch.Tensor], out_channels: int, channels: int, patch: int
) -> torch.Tensor:
    """Patch-embedding weights of every TP rank → Conv2d ``[O, C, P, P]``.

    Each rank holds either a TP shard (``O/TP`` rows, ``PATCH_EMBED_TYPE=TP_LINEAR``) or a full replica
    (``LINEAR``/``CONV2D``). Decided by shape, not by value: a full-size tensor on every rank is a replica
    (all must agree), a ``1/TP`` slice is a shard (concatenated). Linear ``[O, C·P·P]`` is reshaped.
    """
    rows = {s.shape[0] for s in shards}
    if len(rows) != 1:
        raise ConversionError(
            f"tensor {name!r}: TP shards disagree in shape {[list(s.shape) for s in shards]}"
        )
    if rows == {out_channels}:
        for rank, shard in enumerate(shards[1:], start=1):
            if not torch.equal(shard, shards[0]):
                raise ConversionError(
                    f"tensor {name!r} is a full replica on every TP rank but rank {rank} differs from rank 0"
                )
        full = shards[0]
    elif rows == {out_channels // len(shards)} and out_channels % len(shards) == 0:
        full = torch.cat(shards, dim=0)
    else:
        raise ConversionError(
            f"tensor {name!r}: {len(shards)} TP ranks hold {rows.pop()} rows each; expected {out_channels} "
            f"(replicated) or {out_channels // len(shards)} (sharded)"
        )
    expected = (out_channels, channels, patch, patch)
    if full.ndim == 2 and full.shape[1] == channels * patch * patch:
        full = full.reshape(expected)
    if tuple(full.shape) != expected:
        raise ConversionError(
            f"tensor {name!r} has shape {list(full.shape)}, expected {list(expected)} (or 2-D)"
        )
    return full.contiguous()


def conv_to_patch_shards(weight: torch.Tensor, tp: int) -> list[torch.Tensor]:
    """Conv2d ``[O, C, P, P]`` → 2-D Linear TP shards ``[O/TP, C·P·P]`` (``PATCH_EMBED_TYPE=TP_LINEAR``)."""
    return [s.contiguous() for s in weight.reshape(weight.shape[0], -1).chunk(tp, dim=0)]


def split_tp(tensor: torch.Tensor, tp: int, dim: int | None) -> list[torch.Tensor]:
    """One tensor per TP rank: a slice along ``dim``, or the same tensor (replicated) when ``dim`` is None."""
    if dim is None:
        return [tensor] * tp
    if tensor.shape[dim] % tp:
        raise ConversionError(f"dimension {dim} of size {tensor.shape[dim]} is not divisible by TP={tp}")
    return [s.contiguous() for s in tensor.chunk(tp, dim=dim)]


def merge_tp(shards: list[torch.Tensor], dim: int | None) -> torch.Tensor:
    """Inverse of :func:`split_tp` (replicas are checked by the caller)."""
    if dim is None or len(shards) == 1:
        return shards[0]
    return torch.cat(shards, dim=dim)

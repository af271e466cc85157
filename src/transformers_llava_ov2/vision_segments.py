"""Which vision tokens attend to which: segments, and grouped attention over them.

A *segment* is a set of tokens with full bidirectional attention inside and none across. Three ways to
define them, all producing a :class:`VisionSegments`:

* :func:`segments_from_grid` — the released rule, bit-identical: one segment per ``image_grid_thw`` row
  ``(t, h, w)``; a row with ``t > frame_windows_size`` is cut into ``t // W`` segments of ``W·h·w`` tokens
  plus one of ``(t mod W)·h·w`` if non-zero.
* :func:`segments_from_group_ids` — the paper's group-visible attention: tokens sharing a group id (e.g. a
  GOP id) attend to each other. Groups may have unequal lengths and need not be contiguous.
* :func:`segments_from_cu_seqlens` — precomputed cumulative lengths over contiguous segments.

:func:`segment_attention` runs one attention backend over all segments without an ``N×N`` mask: for
flash-attention one varlen call; otherwise segments of equal length are gathered into one batch and
attended in a single call per distinct length, so memory grows with ``N × segment length``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VisionSegments:
    """Attention segments over ``N`` vision tokens.

    Attributes:
        cu_seqlens: ``int32 [S+1]`` cumulative segment lengths over the tokens taken in ``order``.
        order: ``int64 [N]`` token permutation that makes every segment contiguous, or ``None`` when the
            segments are already contiguous in token order.
    """

    cu_seqlens: torch.Tensor
    order: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.cu_seqlens[1:] - self.cu_seqlens[:-1]

    @property
    def max_seqlen(self) -> int:
        return int(self.lengths.max()) if self.cu_seqlens.numel() > 1 else 0

    @property
    def num_tokens(self) -> int:
        return int(self.cu_seqlens[-1])


def segment_lengths_from_grid(grid_thw: torch.Tensor, frame_windows_size: int) -> list[int]:
    """Segment lengths of the released rule (see module docstring), in row order."""
    if frame_windows_size < 1:
        raise ValueError(f"frame_windows_size must be >= 1, got {frame_windows_size}")
    lengths: list[int] = []
    for t, h, w in grid_thw.tolist():
        frame = h * w
        if t > frame_windows_size:
            lengths.extend([frame_windows_size * frame] * (t // frame_windows_size))
            if t % frame_windows_size:
                lengths.append((t % frame_windows_size) * frame)
        else:
            lengths.append(t * frame)
    return lengths


def _cu_from_lengths(lengths: list[int] | torch.Tensor, device: torch.device | None) -> torch.Tensor:
    lengths = torch.as_tensor(lengths, dtype=torch.int32, device=device)
    return torch.nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))


def segments_from_grid(grid_thw: torch.Tensor, frame_windows_size: int) -> VisionSegments:
    """The released segment rule (``cu_seqlens`` int32 on ``grid_thw``'s device)."""
    return VisionSegments(
        _cu_from_lengths(segment_lengths_from_grid(grid_thw, frame_windows_size), grid_thw.device)
    )


def segments_from_cu_seqlens(cu_seqlens: torch.Tensor, num_tokens: int) -> VisionSegments:
    """Validates precomputed ``cu_seqlens`` (``[S+1]``, starting at 0, non-decreasing, ending at N)."""
    cu = torch.as_tensor(cu_seqlens).to(torch.int32)
    if (
        cu.ndim != 1
        or cu.numel() < 2
        or int(cu[0]) != 0
        or int(cu[-1]) != num_tokens
        or bool((cu[1:] < cu[:-1]).any())
    ):
        raise ValueError(
            f"vision_cu_seqlens must be a 1-D non-decreasing tensor from 0 to the number of patches "
            f"({num_tokens}), got {cu.tolist() if cu.numel() < 20 else tuple(cu.shape)}"
        )
    lengths = cu[1:] - cu[:-1]
    return VisionSegments(_cu_from_lengths(lengths[lengths > 0], cu.device))


def segments_from_group_ids(group_ids: torch.Tensor, num_tokens: int) -> VisionSegments:
    """Group-visible attention: tokens with the same id form one segment (any lengths, any placement).

    Args:
        group_ids: ``[N]`` integer group id per vision token (e.g. the GOP id of its canvas).
    """
    ids = torch.as_tensor(group_ids)
    if ids.ndim != 1 or ids.numel() != num_tokens or ids.is_floating_point():
        raise ValueError(
            f"vision_group_ids must be an integer tensor of shape [{num_tokens}] (one id per patch), "
            f"got {ids.dtype} {tuple(ids.shape)}"
        )
    order = torch.sort(ids, stable=True).indices
    _, counts = torch.unique_consecutive(ids[order], return_counts=True)
    identity = torch.arange(num_tokens, device=ids.device)
    return VisionSegments(
        _cu_from_lengths(counts, ids.device), None if torch.equal(order, identity) else order
    )


def _batch_plan(segments: VisionSegments, device: torch.device) -> list[tuple[int, slice | torch.Tensor]]:
    """One ``(L, tokens)`` entry per distinct segment length ``L``, covering all segments of that length.

    ``tokens`` is a ``slice`` when those segments are adjacent in token order (the batch is a zero-copy
    view), otherwise an index tensor ``[S_L·L]`` in segment-major order (the batch is gathered).
    """
    cu = segments.cu_seqlens.to(device=device, dtype=torch.int64)
    starts, lengths = cu[:-1], cu[1:] - cu[:-1]
    order = segments.order.to(device) if segments.order is not None else None
    plan: list[tuple[int, slice | torch.Tensor]] = []
    for length in torch.unique(lengths).tolist():
        if length == 0:
            continue
        seg_starts = starts[lengths == length]
        first, count = int(seg_starts[0]), seg_starts.numel()
        if order is None and int(seg_starts[-1]) - first == (count - 1) * length:
            plan.append((length, slice(first, first + count * length)))
            continue
        index = (seg_starts[:, None] + torch.arange(length, device=device)[None, :]).reshape(-1)
        plan.append((length, order[index] if order is not None else index))
    return plan


AttentionFn = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


def segment_attention(
    attention_fn: AttentionFn,
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    segments: VisionSegments,
    *,
    varlen: bool,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> torch.Tensor:
    """Attention restricted to segments.

    Args:
        attention_fn: a ``transformers`` attention interface (``(module, q, k, v, mask, ...) -> (out, w)``
            with q/k/v ``[B, H, L, D]`` and out ``[B, L, H, D]``).
        query, key, value: ``[N, H, D]`` vision tokens.
        segments: which tokens attend to each other.
        varlen: True for flash-attention style kernels that take ``cu_seq_lens_*`` (one call).

    Returns:
        ``[N, H, D]`` attention output in token order.
    """
    n = query.shape[0]
    if segments.num_tokens != n:
        raise ValueError(
            f"attention segments cover {segments.num_tokens} tokens but there are {n} vision tokens"
        )
    if varlen:
        order = segments.order
        q, k, v = (t if order is None else t[order] for t in (query, key, value))
        q, k, v = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        cu = segments.cu_seqlens.to(device=query.device, dtype=torch.int32)
        out, _ = attention_fn(
            module, q, k, v, None, scaling=scaling, dropout=dropout, is_causal=False,
            cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=segments.max_seqlen, max_length_k=segments.max_seqlen,
            **kwargs,
        )  # fmt: skip
        out = out.reshape(n, *query.shape[1:])
        if order is not None:
            out = torch.empty_like(out).index_copy_(0, order.to(out.device), out)
        return out

    output = query.new_empty(query.shape)
    heads_dim = query.shape[1:]
    for length, part in _batch_plan(segments, query.device):
        # every segment of one length is one batch element: [S_L, L, H, D] -> [S_L, H, L, D]
        q, k, v = (t[part].view(-1, length, *heads_dim).transpose(1, 2) for t in (query, key, value))
        out, _ = attention_fn(
            module, q, k, v, None, scaling=scaling, dropout=dropout, is_causal=False, **kwargs
        )
        output[part] = out.reshape(-1, *heads_dim)
    return output


def block_diagonal_mask(segments: VisionSegments, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dense additive ``[1, 1, N, N]`` mask of the segments (0 inside, -inf across). For tests/references only."""
    n = segments.num_tokens
    seg_id = torch.repeat_interleave(torch.arange(segments.lengths.numel()), segments.lengths.long().cpu())
    if segments.order is not None:
        seg_id = torch.empty_like(seg_id).index_copy_(0, segments.order.cpu(), seg_id)
    allowed = seg_id[:, None] == seg_id[None, :]
    mask = torch.zeros(n, n, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]

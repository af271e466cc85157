"""Stage 5: canvas geometry under a budget, and canvas packing.

Geometry: every source frame is resized to one ``smart_resize`` geometry with factor ``patch * merge``
(``min_pixels``/``max_pixels`` bounds), which is also the canvas size; a canvas holds the frame's full
patch grid. An I-canvas is a whole frame; a P-canvas holds ``B = (h/m) * (w/m)`` merge blocks packed in
block-raster order, each block copied from the same position of its source frame.

Budget rule (:func:`choose_layout`), ``G`` groups planned, ``c = 1 + m_g`` canvases per group:

1. ``num_canvases = N``: ``G = min(G, N // c)``; with ``N < c`` one group with ``N - 1`` P-canvases;
2. ``max_visual_tokens = T``: keep ``G`` and shrink the canvases until ``G * c * tokens(canvas) <= T``,
   but not below ``budget_min_pixels``; if that is not enough drop groups
   (``G = T // (c * tokens(min canvas))``), then P-canvases, and only then shrink below
   ``budget_min_pixels`` (down to one token per canvas).

With ``budget_policy="target"`` (:func:`target_canvases`) a budget larger than this layout spends is used
up by more groups and P-canvases at full resolution (the caller re-plans the groups); ``p_total`` is the
number of P-canvases to share among the groups (:func:`fixed_p_counts` for the fixed rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from .config import CodecConfig

__all__ = [
    "CanvasLayout",
    "block_grid_positions",
    "canvas_tokens",
    "choose_layout",
    "content_p_counts",
    "fixed_p_counts",
    "gather_blocks",
    "gather_tiles",
    "grown_layout",
    "p_canvas_positions",
    "pack_p_canvas",
    "smart_resize",
    "target_canvases",
    "tile_blocks",
]


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL ``smart_resize``: sides multiples of ``factor``, area within ``[min_pixels, max_pixels]``.

    Rounds each side to the nearest multiple; shrinks with ``floor`` when the area is too large and grows
    with ``ceil`` when it is too small, keeping the aspect ratio. Extreme aspect ratios are not rejected
    (unlike the Qwen version); each side is at least ``factor``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return int(h_bar), int(w_bar)


@dataclass(frozen=True)
class CanvasLayout:
    """Canvas geometry and counts chosen for a video.

    Attributes:
        canvas_hw: ``(H, W)`` canvas (= resized source frame) size in pixels, display orientation.
        grid_hw: ``(h, w)`` patch grid of one canvas.
        num_groups: groups to emit.
        p_per_group: P-canvases per group (``m_g`` or fewer under a tight budget).
        reason: how the budget shaped the layout (for ``backend_info``).
    """

    canvas_hw: tuple[int, int]
    grid_hw: tuple[int, int]
    num_groups: int
    p_per_group: int
    patch_size: int
    merge_size: int
    reason: str = "default"
    p_total: int | None = None

    @property
    def total_p(self) -> int:
        """P-canvases to share among the groups (``num_groups * p_per_group`` unless set)."""
        return self.num_groups * self.p_per_group if self.p_total is None else self.p_total

    @property
    def num_canvases(self) -> int:
        return self.num_groups + self.total_p

    @property
    def tokens_per_canvas(self) -> int:
        return self.grid_hw[0] * self.grid_hw[1] // (self.merge_size**2)

    @property
    def blocks_hw(self) -> tuple[int, int]:
        """Merge-block grid ``(h/m, w/m)``."""
        return self.grid_hw[0] // self.merge_size, self.grid_hw[1] // self.merge_size

    @property
    def blocks_per_canvas(self) -> int:
        bh, bw = self.blocks_hw
        return bh * bw

    @property
    def max_tokens(self) -> int:
        return self.num_canvases * self.tokens_per_canvas


def _fit(height: int, width: int, cfg: CodecConfig, tokens: int) -> tuple[int, int]:
    """Largest ``smart_resize`` geometry with at most ``tokens`` LLM tokens (at least one token)."""
    f = cfg.factor
    per_token = cfg.patch_size**2 * cfg.merge_size**2
    cap = max(f * f, min(cfg.max_pixels, tokens * per_token))
    h, w = smart_resize(height, width, f, min(cfg.min_pixels, cap), cap)
    while (h // f) * (w // f) > tokens and (h > f or w > f):
        if h >= w and h > f:
            h -= f
        else:
            w -= f
    return h, w


def choose_layout(frame_hw: tuple[int, int], num_groups: int, cfg: CodecConfig) -> CanvasLayout:
    """Canvas geometry, group count and P-canvases per group under the budget (module docstring)."""
    height, width = frame_hw
    f = cfg.factor
    m2 = cfg.merge_size**2
    groups = max(1, num_groups)
    m = cfg.p_canvases_per_group
    reason = "default"
    if cfg.num_canvases is not None:
        n = cfg.num_canvases
        if n < 1 + m:
            groups, m = 1, n - 1
        else:
            groups = min(groups, n // (1 + m))
        reason = "num_canvases"
    h, w = smart_resize(height, width, f, cfg.min_pixels, cfg.max_pixels)

    def tokens_of(hw: tuple[int, int]) -> int:
        return (hw[0] // cfg.patch_size) * (hw[1] // cfg.patch_size) // m2

    budget = cfg.max_visual_tokens
    if budget is not None and groups * (1 + m) * tokens_of((h, w)) > budget:
        min_hw = _fit(height, width, cfg, max(1, cfg.budget_min_pixels // (cfg.patch_size**2 * m2)))
        min_tokens = tokens_of(min_hw)
        allowed = budget // (groups * (1 + m))
        if allowed >= min_tokens:
            h, w = _fit(height, width, cfg, allowed)
            reason = "max_visual_tokens: smaller canvases"
        else:
            fit_groups = budget // ((1 + m) * min_tokens)
            if fit_groups >= 1:
                groups = min(groups, fit_groups)
                h, w = _fit(height, width, cfg, budget // (groups * (1 + m)))
                reason = "max_visual_tokens: fewer groups"
            else:
                groups = 1
                fit_p = budget // min_tokens - 1
                if fit_p >= 0:
                    m = min(m, fit_p)
                    h, w = _fit(height, width, cfg, budget // (1 + m))
                    reason = "max_visual_tokens: one group, fewer P-canvases"
                else:
                    m = 0
                    h, w = _fit(height, width, cfg, budget)
                    reason = "max_visual_tokens: one I-canvas below budget_min_pixels"
    return CanvasLayout(
        canvas_hw=(h, w),
        grid_hw=(h // cfg.patch_size, w // cfg.patch_size),
        num_groups=groups,
        p_per_group=m,
        patch_size=cfg.patch_size,
        merge_size=cfg.merge_size,
        reason=reason,
    )


def canvas_tokens(frame_hw: tuple[int, int], cfg: CodecConfig) -> int:
    """LLM tokens of one full-resolution canvas (``smart_resize`` at ``max_pixels``) of a frame."""
    h, w = smart_resize(frame_hw[0], frame_hw[1], cfg.factor, cfg.min_pixels, cfg.max_pixels)
    return (h // cfg.patch_size) * (w // cfg.patch_size) // cfg.merge_size**2


def target_canvases(frame_hw: tuple[int, int], layout: CanvasLayout, cfg: CodecConfig) -> int | None:
    """Full-resolution canvases that spend ``max_visual_tokens`` under the ``"target"`` policy when they
    spend more of it than ``layout`` (more canvases than it holds, or a layout shrunk under the budget
    that lost tokens to rounding), else ``None`` (no budget, a canvas budget, or ``"ceiling"``)."""
    if cfg.budget_policy != "target" or cfg.max_visual_tokens is None or cfg.num_canvases is not None:
        return None
    tokens = canvas_tokens(frame_hw, cfg)
    want = cfg.max_visual_tokens // tokens
    if want > layout.num_canvases or (want >= 1 and want * tokens > layout.max_tokens):
        return want
    return None


def grown_layout(frame_hw: tuple[int, int], num_groups: int, canvases: int, cfg: CodecConfig) -> CanvasLayout:
    """``canvases`` full-resolution canvases over ``num_groups`` groups (P-canvases capped per group)."""
    h, w = smart_resize(frame_hw[0], frame_hw[1], cfg.factor, cfg.min_pixels, cfg.max_pixels)
    groups = max(1, num_groups)
    cap = cfg.max_p_canvases_per_group
    p_total = max(0, min(canvases - groups, groups * cap))
    return CanvasLayout(
        canvas_hw=(h, w),
        grid_hw=(h // cfg.patch_size, w // cfg.patch_size),
        num_groups=groups,
        p_per_group=min(cap, -(-p_total // groups)),
        patch_size=cfg.patch_size,
        merge_size=cfg.merge_size,
        reason="max_visual_tokens: target (more groups and P-canvases)",
        p_total=p_total,
    )


def fixed_p_counts(layout: CanvasLayout, weights: np.ndarray) -> np.ndarray:
    """``int64 [G]`` P-canvases per group under the fixed rule: ``total_p`` shared evenly, the remainder
    to the groups of largest ``weights`` (bit cost); ``p_per_group`` each when ``total_p`` is its multiple."""
    g = layout.num_groups
    base, extra = divmod(layout.total_p, g)
    counts = np.full(g, base, dtype=np.int64)
    if extra:
        counts[np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable")[:extra]] += 1
    return np.minimum(counts, max(layout.p_per_group, base))


def content_p_counts(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """``int64 [G]`` P-canvases per group proportional to ``weights`` (largest remainders), each at most
    its cap, summing to ``min(total, caps.sum())``; groups of zero weight get none unless needed."""
    caps = np.maximum(np.asarray(caps, dtype=np.int64), 0)
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    counts = np.zeros(len(caps), dtype=np.int64)
    remaining = int(min(total, caps.sum()))
    while remaining > 0:
        open_ = counts < caps
        ww = np.where(open_, w, 0.0)
        if ww.sum() <= 0:
            ww = open_.astype(np.float64)
        ideal = ww / ww.sum() * remaining
        add = np.minimum(np.floor(ideal).astype(np.int64), caps - counts)
        if add.sum() == 0:  # hand out one at a time by largest remainder (then weight)
            order = np.lexsort((np.arange(len(w)), -ww, -(ideal - np.floor(ideal))))
            b = next(int(i) for i in order if counts[i] < caps[i])
            add[b] = 1
        counts += add
        remaining -= int(add.sum())
    return counts


def block_grid_positions(
    grid_hw: tuple[int, int], merge: int, block: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Source patch rows/cols ``(int64 [K, m*m], int64 [K, m*m])`` of blocks, patches row-major in a block."""
    _gh, gw = grid_hw
    bw = gw // merge
    br, bc = np.divmod(np.asarray(block, dtype=np.int64), bw)
    dy, dx = np.divmod(np.arange(merge * merge), merge)
    return br[:, None] * merge + dy[None, :], bc[:, None] * merge + dx[None, :]


def pack_p_canvas(
    sources: dict[int, np.ndarray],
    frame_ids: np.ndarray,
    blocks: np.ndarray,
    layout: CanvasLayout,
) -> tuple[np.ndarray, np.ndarray]:
    """Pack ``B`` blocks into one P-canvas (block-raster slots, in the given order).

    Args:
        sources: ``{frame_id: uint8 [H, W, 3]}`` resized RGB source frames.
        frame_ids: ``int64 [B]`` source frame of each block.
        blocks: ``int64 [B]`` block index (raster over the ``(h/m, w/m)`` block grid) in its source frame.
        layout: the canvas layout.

    Returns:
        ``(canvas uint8 [H, W, 3], positions int64 [h*w, 3])`` with positions ``(t, src_row, src_col)`` in
        canvas raster order.
    """
    bh, bw = layout.blocks_hw
    s = layout.merge_size * layout.patch_size
    if len(blocks) != bh * bw:
        raise ValueError(f"a P-canvas needs {bh * bw} blocks, got {len(blocks)}")
    frame_ids = np.asarray(frame_ids, dtype=np.int64)
    blocks = np.asarray(blocks, dtype=np.int64)
    px = np.empty((len(blocks), s, s, 3), dtype=np.uint8)
    for f in np.unique(frame_ids).tolist():
        sel = frame_ids == f
        px[sel] = gather_blocks(sources[f], blocks[sel], layout)
    canvas = tile_blocks(px, layout)[0]
    return canvas, p_canvas_positions(frame_ids, blocks, layout)


def gather_blocks(image: np.ndarray, blocks: np.ndarray, layout: CanvasLayout) -> np.ndarray:
    """``uint8 [k, s, s, 3]`` copies of the merge blocks ``blocks`` (``int64 [k]``, raster over the
    ``layout.blocks_hw`` grid) of a canvas-size ``image`` (``uint8 [H, W, 3]``), ``s`` = merge x patch."""
    bh, bw = layout.blocks_hw
    s = layout.merge_size * layout.patch_size
    view = image.reshape(bh, s, bw, s, 3).swapaxes(1, 2)  # [bh, bw, s, s, 3], no copy
    r, c = np.divmod(np.asarray(blocks, dtype=np.int64), bw)
    return view[r, c]


def tile_blocks(block_px: np.ndarray, layout: CanvasLayout) -> np.ndarray:
    """``uint8 [n, H, W, 3]``: ``block_px`` (``uint8 [n * B, s, s, 3]``) laid out ``B`` per canvas in
    block-raster slots (slot ``k`` at block row ``k // bw``, column ``k % bw``)."""
    bh, bw = layout.blocks_hw
    s = layout.merge_size * layout.patch_size
    n = len(block_px) // (bh * bw)
    return block_px.reshape(n, bh, bw, s, s, 3).swapaxes(2, 3).reshape(n, bh * s, bw * s, 3)


def gather_tiles(store: np.ndarray, rows: np.ndarray, layout: CanvasLayout) -> np.ndarray:
    """``uint8 [n, H, W, 3]``: the blocks ``store[rows]`` (``store uint8 [K, s, s, 3]``, ``rows int64
    [n * B]``) laid out ``B`` per canvas as :func:`tile_blocks` lays them, in one copy (each canvas pixel
    row is read straight from its block's row instead of through a gathered ``[n * B, s, s, 3]``)."""
    bh, bw = layout.blocks_hw
    s = layout.merge_size * layout.patch_size
    n = len(rows) // (bh * bw)
    block_rows = store.reshape(len(store) * s, s * 3)  # one pixel row of one block per row
    index = np.asarray(rows, dtype=np.int64).reshape(n, bh, 1, bw) * s + np.arange(s).reshape(1, 1, s, 1)
    return block_rows[index].reshape(n, bh * s, bw * s, 3)


@cache
def _slot_grid(grid_hw: tuple[int, int], merge_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(slot, row offset, col offset)``, each ``int64 [h*w]`` read-only: for every canvas patch in raster
    order, its block-raster slot ``(R//m) * (w/m) + C//m`` and its offset ``(R%m, C%m)`` in the block."""
    gh, gw = grid_hw
    m = merge_size
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    slot, dr, dc = (
        ((rows // m) * (gw // m) + cols // m).reshape(-1),
        (rows % m).reshape(-1),
        (cols % m).reshape(-1),
    )
    for g in (slot, dr, dc):
        g.setflags(write=False)
    return slot, dr, dc


def p_canvas_positions(frame_ids: np.ndarray, blocks: np.ndarray, layout: CanvasLayout) -> np.ndarray:
    """``int64 [h*w, 3]`` positions ``(t, src_row, src_col)`` of a P-canvas packed with ``blocks`` of
    ``frame_ids`` in block-raster slots, in canvas raster order."""
    m = layout.merge_size
    slot, dr, dc = _slot_grid(layout.grid_hw, m)
    src_r, src_c = np.divmod(np.asarray(blocks, dtype=np.int64), layout.blocks_hw[1])
    pos = np.empty((len(slot), 3), dtype=np.int64)
    pos[:, 0] = np.asarray(frame_ids, dtype=np.int64)[slot]
    pos[:, 1] = src_r[slot] * m + dr
    pos[:, 2] = src_c[slot] * m + dc
    return pos


def i_canvas_positions(frame_id: int, grid_hw: tuple[int, int]) -> np.ndarray:
    """``int64 [h*w, 3]`` positions of a full-frame canvas in raster order."""
    gh, gw = grid_hw
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    return np.stack([np.full(gh * gw, frame_id, dtype=np.int64), rows.reshape(-1), cols.reshape(-1)], axis=-1)

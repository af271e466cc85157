"""Stages 4b and 5 for one group: its anchor, the selected blocks, its I- and P-canvases.

:class:`GroupBuilder` receives the scored candidates of one group (:class:`Candidate`) when the decode
pass has gone past the group's end, and appends a :class:`GroupOutput`. With the fixed rule each group
gets its P-canvases at once (``p_counts``); with ``p_allocation="content"`` the group keeps only the
pixels of the blocks it could use (its selections for 0..cap P-canvases) and its activity, and
:meth:`GroupBuilder.close` shares the P-canvases among the groups by activity. See ``docs/codec.md``
§ "4. Saliency and selection" and § "5. Canvases, budget and output".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..video_types import ROLE_I, ROLE_P
from .canvas import (
    CanvasLayout,
    content_p_counts,
    gather_blocks,
    gather_tiles,
    i_canvas_positions,
    p_canvas_positions,
    pack_p_canvas,
)
from .config import CodecConfig
from .gop import GroupSpec
from .saliency import FrameQuality
from .selection import BlockSelection, RankedBlocks, rank_blocks

__all__ = [
    "Candidate",
    "GroupBuilder",
    "GroupOutput",
    "choose_anchor",
    "choose_blocks",
    "pack_group",
    "still_lead_in",
]


@dataclass
class Candidate:
    """One scored candidate frame of a group."""

    index: int
    time: float
    bits: int
    blocks: np.ndarray  # float64 [NB] block scores (display orientation)
    quality: FrameQuality
    rgb: np.ndarray  # uint8 [H, W, 3] canvas-size RGB (display orientation)
    activity: float = 0.0  # saliency.frame_activity (content allocation weight)


@dataclass
class GroupOutput:
    """One finished group: its canvases (I first), their source positions and roles."""

    spec: GroupSpec
    anchor: int
    canvases: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)


@dataclass
class _Deferred:
    """A finished group waiting for its P-canvas count (content allocation)."""

    spec: GroupSpec
    anchor: int
    anchor_rgb: np.ndarray
    weight: float
    selections: list[tuple[np.ndarray, np.ndarray]]  # [m] -> (frames, blocks) of m full P-canvases
    keys: np.ndarray  # int64 [U] sorted frame * blocks_per_frame + block of every block some selection uses
    pixels: np.ndarray  # uint8 [U, s, s, 3] those blocks' pixels


class GroupBuilder:
    """Stages 4b and 5 per group: the anchor, the selected blocks, the I- and P-canvases.

    Args:
        layout: the canvas layout.
        cfg: the configuration (``p_allocation``).
        p_counts: ``int64 [G]`` P-canvases of each group (fixed rule); ``None``: ``layout.p_per_group``.
    """

    def __init__(self, layout: CanvasLayout, cfg: CodecConfig, p_counts: np.ndarray | None = None):
        self.layout = layout
        self.cfg = cfg
        self.p_counts = p_counts
        self.content = cfg.p_allocation == "content"
        self.outputs: list[GroupOutput] = []
        self.deferred: list[_Deferred] = []
        self.t_sel = 0.0
        self.t_canvas = 0.0

    @property
    def content_cap(self) -> int:
        """Most P-canvases one group may get under content allocation."""
        lay = self.layout
        avg = lay.total_p / max(1, lay.num_groups)
        return int(
            min(self.cfg.max_p_canvases_per_group, lay.total_p, max(lay.p_per_group, np.ceil(2.5 * avg)))
        )

    def finalize(self, g: GroupSpec, members: list[Candidate]) -> None:
        """Anchor, blocks and canvases of group ``g`` from its candidates (nothing when it has none)."""
        if not members:
            return
        t0 = time.perf_counter()
        members.sort(key=lambda c: c.index)
        anchor = choose_anchor(g, members, self.cfg.anchor_still_fraction)
        pool = [c for c in members if c is not anchor and c.quality.good and c.index > anchor.index]
        if self.content:
            self._defer(g, anchor, members, pool)
            self.t_sel += time.perf_counter() - t0
            return
        p = self.layout.p_per_group if self.p_counts is None else int(self.p_counts[g.index])
        chosen_frames, chosen_blocks = choose_blocks(pool, self.layout, self.cfg, p=p)
        t1 = time.perf_counter()
        self.t_sel += t1 - t0
        self.outputs.append(pack_group(g, anchor, members, chosen_frames, chosen_blocks, self.layout))
        self.t_canvas += time.perf_counter() - t1

    def _defer(
        self, g: GroupSpec, anchor: Candidate, members: list[Candidate], pool: list[Candidate]
    ) -> None:
        """Keep the group's selections for 0..cap P-canvases, their block pixels and its weight."""
        lay = self.layout
        s = lay.merge_size * lay.patch_size
        selections: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
        by_index = {c.index: c for c in members}
        act = np.asarray([c.activity for c in pool], dtype=np.float64)
        weights = None
        if self.cfg.activity_frame_power > 0 and len(act) and act.max() > 0:
            weights = (act / act.max()) ** self.cfg.activity_frame_power
        if pool:
            ranked = rank_pool(pool, self.cfg, weights)
            for m in range(1, self.content_cap + 1):
                frames, blocks = _full_canvases(ranked.select(m, lay.blocks_per_canvas), pool, lay)
                if len(frames) < m * lay.blocks_per_canvas:
                    break
                selections.append((frames, blocks))
        nb = lay.blocks_per_canvas  # blocks per frame (a P-canvas holds a frame's worth)
        keys = np.unique(np.concatenate([f * nb + b for f, b in selections]))
        store = np.empty((len(keys), s, s, 3), dtype=np.uint8)
        frames_of = keys // nb
        bounds = (np.flatnonzero(np.diff(frames_of)) + 1).tolist()  # keys are sorted: one run per frame
        for lo, hi in zip([0, *bounds], [*bounds, len(keys)]) if len(keys) else ():
            store[lo:hi] = gather_blocks(by_index[int(frames_of[lo])].rgb, keys[lo:hi] % nb, lay)
        activity = float(np.mean([c.activity for c in pool])) if pool else 0.0
        weight = activity * max(g.end - g.start, 0.0)
        self.deferred.append(_Deferred(g, anchor.index, anchor.rgb, weight, selections, keys, store))

    def close(self) -> np.ndarray | None:
        """Content allocation: share ``layout.total_p`` among the deferred groups by weight and pack
        them; returns the P-canvas counts (``None`` under the fixed rule)."""
        if not self.content:
            return None
        t0 = time.perf_counter()
        d = self.deferred
        caps = np.asarray([len(x.selections) - 1 for x in d], dtype=np.int64)
        counts = content_p_counts(self.layout.total_p, np.asarray([x.weight for x in d]), caps)
        for x, p in zip(d, counts.tolist()):
            out = GroupOutput(spec=x.spec, anchor=x.anchor)
            out.canvases.append(x.anchor_rgb)
            out.positions.append(i_canvas_positions(x.anchor, self.layout.grid_hw))
            out.roles.append(ROLE_I)
            frames, blocks = x.selections[p]
            rows = np.searchsorted(x.keys, frames * self.layout.blocks_per_canvas + blocks)
            _append_p_canvases(out, frames, blocks, self.layout, gather_tiles(x.pixels, rows, self.layout))
            self.outputs.append(out)
        self.deferred = []
        self.t_canvas += time.perf_counter() - t0
        return counts


def _append_p_canvases(
    out: GroupOutput, frames: np.ndarray, blocks: np.ndarray, layout: CanvasLayout, canvases: np.ndarray
) -> None:
    """Append the P-canvases ``canvases`` (``uint8 [n, H, W, 3]``, :func:`gather_tiles`) packed with
    ``frames``/``blocks`` (``B`` per canvas) and their positions."""
    B = layout.blocks_per_canvas
    for k, canvas in enumerate(canvases):
        sl = slice(k * B, (k + 1) * B)
        out.canvases.append(canvas)
        out.positions.append(p_canvas_positions(frames[sl], blocks[sl], layout))
        out.roles.append(ROLE_P)


#: candidates in the rolling mean of :func:`still_lead_in`
STILL_WINDOW = 5


def still_lead_in(members: list[Candidate], fraction: float) -> int:
    """Length of the group's still lead-in, the candidates (display order) before its first active one.

    With ``thr = fraction x`` the group's mean activity, the action starts in the first window of
    ``STILL_WINDOW`` consecutive candidates whose mean activity reaches ``thr`` (means, not medians: the
    activity of moving content alternates strongly between picture types), at that window's most active
    candidate. ``0`` when ``fraction`` is 0, the group is too short, its first window is already active
    or no window is.
    """
    act = np.asarray([c.activity for c in members], dtype=np.float64)
    if fraction <= 0 or len(act) <= STILL_WINDOW:
        return 0
    thr = fraction * float(act.mean())
    if thr <= 0:
        return 0
    windows = np.lib.stride_tricks.sliding_window_view(act, STILL_WINDOW).mean(axis=1)
    active = np.flatnonzero(windows >= thr)
    if len(active) == 0 or active[0] == 0:
        return 0
    start = int(active[0])
    return start + int(np.argmax(act[start : start + STILL_WINDOW]))


def choose_anchor(g: GroupSpec, members: list[Candidate], still_fraction: float = 0.0) -> Candidate:
    """The planned anchor if good, else the first good member, else the planned anchor (or the first).

    With ``still_fraction > 0`` (``CodecConfig.anchor_still_fraction``) a still lead-in of the group
    (:func:`still_lead_in`) is skipped: the anchor is then the first good member after it, so the
    I-canvas shows where the group's action starts instead of the still stretch before it.
    """
    lead = still_lead_in(members, still_fraction)
    if lead > 0:
        after = next((c for c in members[lead:] if c.quality.good), None)
        if after is not None:
            return after
    anchor = next((c for c in members if c.index == g.anchor_frame and c.quality.good), None)
    if anchor is None:
        anchor = next((c for c in members if c.quality.good), None)
    if anchor is None:
        anchor = next((c for c in members if c.index == g.anchor_frame), members[0])
    return anchor


def choose_blocks(
    pool: list[Candidate],
    layout: CanvasLayout,
    cfg: CodecConfig,
    *,
    p: int | None = None,
    frame_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, blocks)`` (``int64 [n * B]``) of the group's full P-canvases (``n <= p``, default
    ``layout.p_per_group``; ``p`` strata), in packing order.

    ``frame_weights`` (``[len(pool)]``) scale each frame's block scores (``activity_frame_power``).

    Only whole canvases are kept (the lowest-scored leftover blocks are dropped); packing order is
    ``(frame, block row, block col)``.
    """
    p = layout.p_per_group if p is None else p
    if not pool or p <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return _full_canvases(
        rank_pool(pool, cfg, frame_weights).select(p, layout.blocks_per_canvas), pool, layout
    )


def rank_pool(
    pool: list[Candidate], cfg: CodecConfig, frame_weights: np.ndarray | None = None
) -> RankedBlocks:
    """The group's block scores (times ``frame_weights`` and the bit-cost prior) ranked once
    (:func:`~.selection.rank_blocks`), for any number of P-canvases."""
    scores = np.stack([c.blocks for c in pool])
    if frame_weights is not None:
        scores = scores * np.asarray(frame_weights, dtype=np.float64)[:, None]
    if cfg.bitcost_prior_beta > 0:
        bits = np.asarray([c.bits for c in pool], dtype=np.float64)
        b_hat = bits / max(bits.max(), 1.0)
        scores = scores * (1.0 + cfg.bitcost_prior_beta * b_hat)[:, None]
    return rank_blocks(
        scores,
        penalty=cfg.rank_penalty,
        mode=cfg.rank_attenuation,
        alpha_peak=cfg.alpha_peak,
        prior=scores.mean(axis=0) if cfg.tie_break == "group" else None,
        kernels=cfg.kernels,
    )


def _full_canvases(
    sel: BlockSelection, pool: list[Candidate], layout: CanvasLayout
) -> tuple[np.ndarray, np.ndarray]:
    """The whole canvases of a selection (best ``n * B`` blocks) as ``(frames, blocks)`` in packing order."""
    B = layout.blocks_per_canvas
    n_full = len(sel) // B
    if not n_full:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keep = np.sort(np.argsort(-sel.score, kind="stable")[: n_full * B])
    fpos, blk, sc = sel.frame_pos[keep], sel.block[keep], sel.score[keep]
    frame_ids = np.asarray([c.index for c in pool], dtype=np.int64)[fpos]
    bh = blk // layout.blocks_hw[1]
    bw = blk % layout.blocks_hw[1]
    order = np.lexsort((-sc, bw, bh, frame_ids))
    return frame_ids[order], blk[order]


def pack_group(
    g: GroupSpec,
    anchor: Candidate,
    members: list[Candidate],
    chosen_frames: np.ndarray,
    chosen_blocks: np.ndarray,
    layout: CanvasLayout,
) -> GroupOutput:
    """The group's I-canvas (the anchor frame) and its P-canvases of ``B`` chosen blocks each."""
    B = layout.blocks_per_canvas
    by_index = {c.index: c for c in members}
    needed = {anchor.index, *chosen_frames.tolist()}
    rgbs = {i: by_index[i].rgb for i in needed}
    out = GroupOutput(spec=g, anchor=anchor.index)
    out.canvases.append(rgbs[anchor.index])
    out.positions.append(i_canvas_positions(anchor.index, layout.grid_hw))
    out.roles.append(ROLE_I)
    for p in range(len(chosen_blocks) // B):
        sl = slice(p * B, (p + 1) * B)
        canvas, pos = pack_p_canvas(rgbs, chosen_frames[sl], chosen_blocks[sl], layout)
        out.canvases.append(canvas)
        out.positions.append(pos)
        out.roles.append(ROLE_P)
    return out

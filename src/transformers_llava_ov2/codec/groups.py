"""Stages 4b and 5 for one group: its anchor, the selected blocks, its I- and P-canvases.

:class:`GroupBuilder` receives the scored candidates of one group (:class:`Candidate`) when the decode
pass has gone past the group's end, and appends a :class:`GroupOutput`. See ``docs/codec.md``
§ "4. Saliency and selection" and § "5. Canvases, budget and output".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..video_types import ROLE_I, ROLE_P
from .canvas import CanvasLayout, i_canvas_positions, pack_p_canvas
from .config import CodecConfig
from .gop import GroupSpec
from .saliency import FrameQuality
from .selection import select_blocks

__all__ = ["Candidate", "GroupBuilder", "GroupOutput", "choose_anchor", "choose_blocks", "pack_group"]


@dataclass
class Candidate:
    """One scored candidate frame of a group."""

    index: int
    time: float
    bits: int
    blocks: np.ndarray  # float64 [NB] block scores (display orientation)
    quality: FrameQuality
    rgb: np.ndarray  # uint8 [H, W, 3] canvas-size RGB (display orientation)


@dataclass
class GroupOutput:
    """One finished group: its canvases (I first), their source positions and roles."""

    spec: GroupSpec
    anchor: int
    canvases: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)


class GroupBuilder:
    """Stages 4b and 5 per group: the anchor, the selected blocks, the I- and P-canvases."""

    def __init__(self, layout: CanvasLayout, cfg: CodecConfig):
        self.layout = layout
        self.cfg = cfg
        self.outputs: list[GroupOutput] = []
        self.t_sel = 0.0
        self.t_canvas = 0.0

    def finalize(self, g: GroupSpec, members: list[Candidate]) -> None:
        """Anchor, blocks and canvases of group ``g`` from its candidates (nothing when it has none)."""
        if not members:
            return
        t0 = time.perf_counter()
        members.sort(key=lambda c: c.index)
        anchor = choose_anchor(g, members)
        pool = [c for c in members if c is not anchor and c.quality.good and c.index > anchor.index]
        chosen_frames, chosen_blocks = choose_blocks(pool, self.layout, self.cfg)
        t1 = time.perf_counter()
        self.t_sel += t1 - t0
        self.outputs.append(pack_group(g, anchor, members, chosen_frames, chosen_blocks, self.layout))
        self.t_canvas += time.perf_counter() - t1


def choose_anchor(g: GroupSpec, members: list[Candidate]) -> Candidate:
    """The planned anchor if good, else the first good member, else the planned anchor (or the first)."""
    anchor = next((c for c in members if c.index == g.anchor_frame and c.quality.good), None)
    if anchor is None:
        anchor = next((c for c in members if c.quality.good), None)
    if anchor is None:
        anchor = next((c for c in members if c.index == g.anchor_frame), members[0])
    return anchor


def choose_blocks(
    pool: list[Candidate], layout: CanvasLayout, cfg: CodecConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, blocks)`` (``int64 [n * B]``) of the group's full P-canvases, in packing order.

    Only whole canvases are kept (the lowest-scored leftover blocks are dropped); packing order is
    ``(frame, block row, block col)``.
    """
    B = layout.blocks_per_canvas
    chosen_frames = np.zeros(0, dtype=np.int64)
    chosen_blocks = np.zeros(0, dtype=np.int64)
    if not pool or layout.p_per_group <= 0:
        return chosen_frames, chosen_blocks
    scores = np.stack([c.blocks for c in pool])
    if cfg.bitcost_prior_beta > 0:
        bits = np.asarray([c.bits for c in pool], dtype=np.float64)
        b_hat = bits / max(bits.max(), 1.0)
        scores = scores * (1.0 + cfg.bitcost_prior_beta * b_hat)[:, None]
    sel = select_blocks(
        scores,
        layout.p_per_group,
        B,
        penalty=cfg.rank_penalty,
        mode=cfg.rank_attenuation,
        alpha_peak=cfg.alpha_peak,
    )
    n_full = len(sel) // B
    if n_full:
        keep = np.sort(np.argsort(-sel.score, kind="stable")[: n_full * B])
        fpos, blk, sc = sel.frame_pos[keep], sel.block[keep], sel.score[keep]
        frame_ids = np.asarray([pool[i].index for i in fpos], dtype=np.int64)
        bh = blk // layout.blocks_hw[1]
        bw = blk % layout.blocks_hw[1]
        order = np.lexsort((-sc, bw, bh, frame_ids))
        chosen_frames, chosen_blocks = frame_ids[order], blk[order]
    return chosen_frames, chosen_blocks


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

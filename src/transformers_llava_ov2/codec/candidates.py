"""Candidate frames: the information-reweighted timeline of frames whose saliency is computed.

``seq_len = clamp(candidates_per_canvas * planned_canvases, min_candidates, max_candidates)`` (capped at the
frame count) frames are drawn by the energy CDF: bin ``b`` gets a share of
``(1 - uniform_mix) * E_b + uniform_mix * mean(E)`` (at most ``max_candidates_per_bin``, remainders to the
largest fractional parts), spread evenly over the frames of the bin; the frames around the highest-energy
bins ("peaks") and every group anchor are added, and every group gets at least ``m_g + 1`` candidates
when it has the frames.
"""

from __future__ import annotations

import numpy as np

from .config import CodecConfig
from .gop import GopPlan, GroupSpec
from .probe import StreamProbe

__all__ = ["candidate_count", "sample_candidates"]


def candidate_count(num_canvases: int, total_frames: int, config: CodecConfig) -> int:
    """``clamp(candidates_per_canvas * num_canvases, min_candidates, max_candidates)``, at most the frames."""
    want = min(max(config.candidates_per_canvas * num_canvases, config.min_candidates), config.max_candidates)
    return int(min(want, total_frames))


def _allocate(weights: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Integer counts ``<= caps`` summing to ``min(total, caps.sum())``, proportional to ``weights``."""
    total = int(min(total, caps.sum()))
    counts = np.zeros(len(weights), dtype=np.int64)
    if total <= 0:
        return counts
    w = np.where(caps > 0, np.maximum(weights, 0.0), 0.0)
    if w.sum() <= 0:
        w = (caps > 0).astype(np.float64)
    remaining = total
    active = caps > counts
    while remaining > 0 and active.any():
        ideal = w * active
        ideal = ideal / ideal.sum() * remaining
        add = np.minimum(np.floor(ideal).astype(np.int64), caps - counts)
        counts += add
        remaining -= int(add.sum())
        if remaining <= 0:
            break
        frac = np.where(caps > counts, ideal - np.floor(ideal), -1.0)
        # largest fractional parts first, ties by weight, then by bin
        order = np.lexsort((np.arange(len(w)), -w, -frac))
        for b in order:
            if remaining <= 0:
                break
            if counts[b] < caps[b] and frac[b] >= 0:
                counts[b] += 1
                remaining -= 1
        active = caps > counts
    return counts


def sample_candidates(
    probe: StreamProbe,
    plan: GopPlan,
    groups: list[GroupSpec],
    num_candidates: int,
    config: CodecConfig,
) -> np.ndarray:
    """Sorted unique candidate frame indices ``int64 [<= num_candidates + extras]``.

    The anchors of ``groups`` are always included (they are extras beyond ``num_candidates``).
    """
    n = probe.total_frames
    times = probe.times
    nb = len(plan.smoothed)
    bins = np.clip(np.floor(times / plan.bin_seconds + 1e-9).astype(np.int64), 0, nb - 1)
    frames_per_bin = np.bincount(bins, minlength=nb)
    first_in_bin = np.searchsorted(bins, np.arange(nb), side="left")

    energy = np.ones(nb) if plan.static else plan.smoothed
    weights = (1.0 - config.uniform_mix) * energy + config.uniform_mix * float(energy.mean())
    caps = np.minimum(frames_per_bin, config.max_candidates_per_bin)
    counts = _allocate(weights, num_candidates, caps)
    chosen: set[int] = set()
    for b in np.flatnonzero(counts):
        lo = int(first_in_bin[b])
        hi = lo + int(frames_per_bin[b]) - 1
        chosen.update(int(x) for x in np.round(np.linspace(lo, hi, int(counts[b]))).astype(np.int64))

    # peaks: frames around the centres of the highest-energy bins
    k = int(min(config.peaks_cap, round(plan.duration * config.peaks_per_second), nb))
    if k > 0 and not plan.static:
        top = np.argsort(-plan.smoothed, kind="stable")[:k]
        for b in top:
            centre = (b + 0.5) * plan.bin_seconds
            f = int(np.clip(np.searchsorted(times, centre), 0, n - 1))
            for d in range(-config.peak_neighbors, config.peak_neighbors + 1):
                if 0 <= f + d < n:
                    chosen.add(f + d)

    cand = np.asarray(sorted(chosen), dtype=np.int64)
    if len(cand) > config.max_candidates:  # cap, keeping an even spread (anchors are re-added below)
        keep = np.unique(np.round(np.linspace(0, len(cand) - 1, config.max_candidates)).astype(np.int64))
        cand = cand[keep]
    chosen = set(cand.tolist())
    need = config.p_canvases_per_group + 1
    for g in groups:
        chosen.add(g.anchor_frame)
        inside = [c for c in chosen if g.frame_start <= c < g.frame_end]
        if len(inside) < need + 1:
            span = g.frame_end - g.frame_start
            extra = np.round(np.linspace(g.frame_start, g.frame_end - 1, min(span, need + 1))).astype(
                np.int64
            )
            chosen.update(int(x) for x in extra)
    return np.asarray(sorted(chosen), dtype=np.int64)

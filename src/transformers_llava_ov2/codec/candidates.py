"""Candidate frames: the information-reweighted timeline of frames whose saliency is computed.

``seq_len = clamp(candidates_per_canvas * planned_canvases, min_candidates, max_candidates)`` (capped at the
frame count) frames are drawn by the energy CDF: bin ``b`` gets a share of
``(1 - uniform_mix) * E_b + uniform_mix * mean(E)`` (at most ``max_candidates_per_bin``, remainders to the
largest fractional parts), spread evenly over the frames of the bin (:func:`spread_in_bin`); the frames around the highest-energy
bins ("peaks") and every group anchor are added, and every group gets at least ``m_g + 1`` candidates
when it has the frames.
"""

from __future__ import annotations

import math

import numpy as np

from .config import CodecConfig
from .gop import GopPlan, GroupSpec
from .probe import StreamProbe

__all__ = ["candidate_count", "official_image_estimate", "sample_candidates", "spread_in_bin"]


def official_image_estimate(duration: float, patches_per_canvas: int, k_target: int) -> int:
    """The official generator's canvas-count estimate that sizes its candidate pool.

    Images by duration (``<= 7 s``: 8, ``<= 12 s``: 12, else ``ceil(1.2 * duration)``), capped by the
    resolution tier of ``S_full`` patches per canvas (``>= 7000``: 4 / 8 for clips up to / over 6 s,
    ``>= 2500``: 8 / 12, else 12 / 28) and by ``30000 // S_full``, rounded down to a multiple of 4; then
    ``max(4 * K_tar, that)``.
    """
    if duration <= 7:
        n = 8
    elif duration <= 12:
        n = 12
    else:
        n = math.ceil(1.2 * duration)
    short = duration <= 6
    if patches_per_canvas >= 7000:
        tier = 4 if short else 8
    elif patches_per_canvas >= 2500:
        tier = 8 if short else 12
    else:
        tier = 12 if short else 28
    n = min(n, tier, 30000 // max(1, patches_per_canvas)) // 4 * 4
    return int(max(4 * k_target, n))


def candidate_count(
    num_canvases: int,
    total_frames: int,
    config: CodecConfig,
    *,
    official_estimate: int | None = None,
    duration: float = 0.0,
) -> int:
    """``clamp(max(candidates_per_canvas * canvases, ceil(candidates_per_second * duration)),
    min_candidates, max_candidates)``, at most the frames.

    ``canvases`` is ``num_canvases``, or with ``candidate_rule="official"``/``"centered"`` the larger of
    it and ``official_estimate`` (:func:`official_image_estimate`).
    """
    canvases = num_canvases
    if config.candidate_rule != "legacy" and official_estimate is not None:
        canvases = max(canvases, official_estimate)
    want = max(config.candidates_per_canvas * canvases, math.ceil(config.candidates_per_second * duration))
    want = min(max(want, config.min_candidates), config.max_candidates)
    return int(min(want, total_frames))


def spread_in_bin(lo: int, hi: int, count: int, rule: str = "official") -> np.ndarray:
    """``count`` evenly spaced frames of ``[lo, hi]``: ``"official"`` truncates
    ``linspace(lo, hi, count)`` and puts a single frame in the middle; ``"centered"`` takes
    ``lo + floor((k + 1/2) * n / count)`` (``n = hi - lo + 1``: the centre of each ``1/count`` share, so
    consecutive bins continue the same spacing instead of meeting at ``hi``/``lo``); ``"legacy"`` rounds
    ``linspace(lo, hi, count)`` (a single frame at ``lo``)."""
    if rule == "centered":
        n = hi - lo + 1
        return lo + ((2 * np.arange(count, dtype=np.int64) + 1) * n) // (2 * count)
    if rule == "official":
        if count == 1:
            return np.asarray([(lo + hi) // 2], dtype=np.int64)
        return np.floor(np.linspace(lo, hi, count) + 1e-9).astype(np.int64)
    return np.round(np.linspace(lo, hi, count)).astype(np.int64)


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
        chosen.update(int(x) for x in spread_in_bin(lo, hi, int(counts[b]), config.candidate_rule))

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

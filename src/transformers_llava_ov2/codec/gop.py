"""Stage 2: the adaptive GOP plan, cut from the P/B bit-cost timeline.

The timeline sums ``log1p(size)`` (or raw sizes) of every non-keyframe packet into ``bin_seconds`` bins and
smooths it with a ``+-smooth_bins`` box. The cut rule scans the smoothed energy, accumulating it; a
segment is cut when it reaches ``T_max`` bins, or when it has at least ``T_min`` bins and its energy
reaches the quota ``total / K_tar``. The cut is then moved to the lowest-energy bin ("valley") within
``valley_radius`` bins of the trigger that keeps ``T_min <= span <= T_max`` (ties: closest to the trigger).
The tail is merged into / rebalanced with the previous segment. Scene-cut keyframes split the timeline
into sections that are segmented independently.

Groups (what the canvases are built from) are derived from the segments by :func:`plan_groups`:
``anchor_mode="midpoint"`` anchors an I-canvas at each segment's midpoint plus t=0 and lets each group
run from its anchor to the next one (the public code); ``anchor_mode="start"`` uses the segments as
groups, anchored at their first frame.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import CodecConfig, with_overrides
from .probe import StreamProbe

__all__ = [
    "GopPlan",
    "GroupSpec",
    "Segment",
    "bin_energy",
    "detect_scene_cuts",
    "plan_gops",
    "plan_groups",
    "segment_energy",
    "target_num_groups",
]


@dataclass(frozen=True)
class Segment:
    """One energy segment: bins ``[start_bin, end_bin]`` (inclusive), times in seconds."""

    start_bin: int
    end_bin: int
    start: float
    end: float
    anchor: float
    energy: float

    @property
    def num_bins(self) -> int:
        return self.end_bin - self.start_bin + 1


@dataclass(frozen=True)
class GopPlan:
    """The bit-cost timeline and its adaptive segmentation.

    Attributes:
        bin_seconds: bin width.
        energy: ``float64 [nb]`` per-bin energy (unsmoothed).
        smoothed: ``float64 [nb]`` smoothed energy (what the cut rule scans).
        quota: energy per segment ``total / K_tar``.
        k_target: ``K_tar``.
        segments: the segments in time order (they tile ``[0, duration)``).
        scene_cuts: times (s) of the scene cuts used as forced boundaries.
        duration: timeline length in seconds.
        static: the P/B cost was (numerically) zero, the timeline was cut on a flat energy of 1 per bin.
    """

    bin_seconds: float
    energy: np.ndarray
    smoothed: np.ndarray
    quota: float
    k_target: int
    segments: tuple[Segment, ...]
    scene_cuts: tuple[float, ...]
    duration: float
    static: bool

    @property
    def boundaries(self) -> np.ndarray:
        """``float64 [K+1]`` segment boundaries in seconds."""
        return np.asarray([s.start for s in self.segments] + [self.duration], dtype=np.float64)

    @property
    def midpoints(self) -> np.ndarray:
        """``float64 [K]`` segment anchor times (centre of the middle bin)."""
        return np.asarray([s.anchor for s in self.segments], dtype=np.float64)


@dataclass(frozen=True)
class GroupSpec:
    """One group of frames ``[frame_start, frame_end)`` whose I-canvas is ``anchor_frame``."""

    index: int
    anchor_frame: int
    frame_start: int
    frame_end: int
    start: float
    end: float
    bit_cost: float


# ---------------------------------------------------------------------------------------------- timeline
def bin_energy(
    times: np.ndarray,
    sizes: np.ndarray,
    keyframe: np.ndarray,
    duration: float,
    *,
    bin_seconds: float = 0.5,
    smooth_bins: int = 1,
    mode: str = "log1p",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin P/B energy and its box-smoothed version.

    Args:
        times: ``[T]`` frame times in seconds.
        sizes: ``[T]`` packet sizes in bytes.
        keyframe: ``[T]`` keyframe flags (keyframes are excluded).
        duration: timeline length; ``nb = max(1, ceil(duration / bin_seconds))``.
        mode: ``"log1p"`` sums ``log1p(size)``, ``"raw"`` sums sizes.

    Returns:
        ``(energy [nb], smoothed [nb])`` float64.
    """
    nb = max(1, math.ceil(duration / bin_seconds - 1e-9))
    times = np.asarray(times, dtype=np.float64)
    keep = ~np.asarray(keyframe, dtype=bool)
    values = np.asarray(sizes, dtype=np.float64)[keep]
    values = np.log1p(values) if mode == "log1p" else values
    bins = np.clip(np.floor(times[keep] / bin_seconds + 1e-9).astype(np.int64), 0, nb - 1)
    energy = np.bincount(bins, weights=values, minlength=nb).astype(np.float64)
    return energy, box_smooth(energy, smooth_bins)


def box_smooth(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over ``[i - radius, i + radius]`` clipped to the array (edges average fewer bins)."""
    if radius <= 0 or len(x) == 0:
        return x.astype(np.float64).copy()
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    idx = np.arange(len(x))
    lo = np.clip(idx - radius, 0, len(x))
    hi = np.clip(idx + radius + 1, 0, len(x))
    return (c[hi] - c[lo]) / (hi - lo)


def target_num_groups(duration: float, config: CodecConfig) -> int:
    """``K_tar``: ``config.num_groups`` or ``clamp(round(duration / seconds_per_group), 1, max_auto_groups)``."""
    if config.num_groups > 0:
        return config.num_groups
    return int(min(max(round(duration / config.seconds_per_group), 1), config.max_auto_groups))


# ---------------------------------------------------------------------------------------------- cut rule
def segment_energy(
    energy: np.ndarray,
    *,
    quota: float,
    min_bins: int,
    max_bins: int,
    valley_radius: int = 3,
    strict: bool = True,
    tail_merge_fraction: float = 0.5,
    sections: tuple[int, ...] = (),
) -> list[tuple[int, int]]:
    """Cut ``energy`` into segments ``[(start_bin, end_bin_inclusive), ...]`` tiling ``[0, nb)``.

    Args:
        energy: ``[nb]`` the (smoothed) energy to scan.
        quota: energy that triggers a cut once a segment has ``min_bins``.
        min_bins / max_bins: ``T_min`` / ``T_max`` in bins.
        valley_radius: search radius (clamped to ``[1, max(1, max_bins // 3)]``).
        strict: keep ``min_bins <= span <= max_bins`` for the tail too (merge or re-split); otherwise merge
            only tails shorter than ``tail_merge_fraction * min_bins`` (the public code's rule).
        sections: extra forced boundaries (bin indices that must start a segment).

    Every segment satisfies ``min_bins <= span <= max_bins`` when ``strict`` and its section has at least
    ``min_bins`` bins.
    """
    nb = len(energy)
    if nb == 0:
        return []
    if min_bins < 1 or max_bins < min_bins:
        raise ValueError(f"need 1 <= min_bins <= max_bins, got {min_bins}, {max_bins}")
    radius = max(1, min(valley_radius, max_bins // 3))
    bounds = [0, *sorted({b for b in sections if 0 < b < nb}), nb]
    out: list[tuple[int, int]] = []
    for s0, s1 in itertools.pairwise(bounds):
        out.extend(
            _segment_section(energy, s0, s1, quota, min_bins, max_bins, radius, strict, tail_merge_fraction)
        )
    return out


def _valley(energy: np.ndarray, lo: int, hi: int, trigger: int) -> int:
    """Lowest-energy bin in ``[lo, hi]``; ties go to the bin closest to ``trigger``, then the earlier."""
    best = lo
    best_key = (energy[lo], abs(lo - trigger))
    for b in range(lo + 1, hi + 1):
        key = (energy[b], abs(b - trigger))
        if key < best_key:
            best, best_key = b, key
    return best


def _segment_section(
    e: np.ndarray,
    s0: int,
    s1: int,
    quota: float,
    min_bins: int,
    max_bins: int,
    radius: int,
    strict: bool,
    tail_fraction: float,
) -> list[tuple[int, int]]:
    segs: list[tuple[int, int]] = []
    start, acc, i = s0, 0.0, s0
    while i < s1:
        acc += float(e[i])
        span = i - start + 1
        if span >= max_bins or (span >= min_bins and acc >= quota):
            lo = max(start + min_bins - 1, i - radius)
            hi = min(start + max_bins - 1, s1 - 1, i + radius)
            cut = _valley(e, lo, hi, i) if lo <= hi else min(i, s1 - 1)
            segs.append((start, cut))
            start, acc, i = cut + 1, 0.0, cut + 1
            continue
        i += 1
    if start < s1:
        segs.append((start, s1 - 1))
    if len(segs) < 2:
        return segs
    tail_start, tail_end = segs[-1]
    tail = tail_end - tail_start + 1
    if not strict:
        if tail < tail_fraction * min_bins:
            prev_start = segs[-2][0]
            segs[-2:] = [(prev_start, tail_end)]
        return segs
    if tail >= min_bins:
        return segs
    prev_start, prev_end = segs[-2]
    merged = tail_end - prev_start + 1
    if merged <= max_bins:
        segs[-2:] = [(prev_start, tail_end)]
        return segs
    # re-split prev+tail into two parts, both within [min_bins, max_bins]
    lo = max(prev_start + min_bins - 1, tail_end - max_bins)
    hi = min(tail_end - min_bins, prev_start + max_bins - 1)
    cut = _valley(e, lo, hi, prev_end) if lo <= hi else prev_end
    segs[-2:] = [(prev_start, cut), (cut + 1, tail_end)]
    return segs


# ---------------------------------------------------------------------------------------------- scene cuts
def detect_scene_cuts(probe: StreamProbe) -> np.ndarray:
    """Frame indices of keyframes that do not follow the encoder's regular keyframe interval.

    When some keyframe interval occurs at least twice, the most common one (ties: the longest) is the
    encoder's periodic interval and only keyframes that come earlier than it (by more than one frame) are
    scene cuts; a fixed-GOP stream therefore has none, nor has an intra-only stream. When no interval
    repeats (typical for short clips with scene-change detection), every keyframe after frame 0 is a cut.
    """
    keys = np.flatnonzero(probe.keyframe)
    if len(keys) < 2:
        return np.zeros(0, dtype=np.int64)
    intervals = np.diff(keys)
    values, counts = np.unique(intervals, return_counts=True)
    if counts.max() >= 2:
        regular = int(values[counts == counts.max()].max())
        cuts = keys[1:][intervals < regular - 1]
    else:
        cuts = keys[1:]
    return cuts[cuts > 0].astype(np.int64)


# ---------------------------------------------------------------------------------------------- plan
def plan_gops(probe: StreamProbe, config: CodecConfig | None = None, **overrides: Any) -> GopPlan:
    """Adaptive GOP segmentation of a probed stream (see the module docstring).

    Args:
        probe: the packet table from :func:`~.probe.probe_video`.
        config: the configuration; keyword ``overrides`` replace its fields.

    Returns:
        a :class:`GopPlan`; static streams (no P/B cost) are cut on a flat energy and flagged ``static``.
    """
    cfg = with_overrides(config, **overrides)
    duration = max(float(probe.duration), cfg.bin_seconds * 1e-3)
    energy, smoothed = bin_energy(
        probe.times,
        probe.sizes,
        probe.keyframe,
        duration,
        bin_seconds=cfg.bin_seconds,
        smooth_bins=cfg.smooth_bins,
        mode=cfg.energy,
    )
    k_target = target_num_groups(duration, cfg)
    total = float(smoothed.sum())
    static = not total > 1e-9
    scan = np.ones_like(smoothed) if static else smoothed
    quota = float(scan.sum()) / k_target
    nb = len(scan)
    min_bins, max_bins = cfg.min_bins, cfg.max_bins

    cut_bins, cut_times = _section_cuts(probe, cfg, nb) if cfg.scene_cut_boundaries else ([], [])
    spans = segment_energy(
        scan,
        quota=quota,
        min_bins=min_bins,
        max_bins=max_bins,
        valley_radius=cfg.valley_radius_bins,
        strict=cfg.strict_spans,
        tail_merge_fraction=cfg.tail_merge_fraction,
        sections=tuple(cut_bins),
    )
    segments = _segments(spans, dict(zip(cut_bins, cut_times)), smoothed, duration, cfg.bin_seconds)
    return GopPlan(
        bin_seconds=cfg.bin_seconds,
        energy=energy,
        smoothed=smoothed,
        quota=quota,
        k_target=k_target,
        segments=tuple(segments),
        scene_cuts=tuple(cut_times),
        duration=duration,
        static=static,
    )


def _section_cuts(probe: StreamProbe, cfg: CodecConfig, num_bins: int) -> tuple[list[int], list[float]]:
    """``(bins, times)`` of the scene cuts used as section boundaries: both sides keep ``T_min`` bins."""
    cut_bins: list[int] = []
    cut_times: list[float] = []
    last = 0
    for frame in detect_scene_cuts(probe):
        t = float(probe.times[frame])
        b = math.floor(t / cfg.bin_seconds + 1e-9)
        if b - last >= cfg.min_bins and num_bins - b >= cfg.min_bins:
            cut_bins.append(b)
            cut_times.append(t)
            last = b
    return cut_bins, cut_times


def _segments(
    spans: list[tuple[int, int]],
    cut_at: dict[int, float],
    smoothed: np.ndarray,
    duration: float,
    bin_seconds: float,
) -> list[Segment]:
    """Segments of the bin ``spans``: times (a scene cut keeps its exact time), midpoint anchor, energy."""
    segments = []
    for k, (b0, b1) in enumerate(spans):
        start = 0.0 if k == 0 else cut_at.get(b0, b0 * bin_seconds)
        end = min((b1 + 1) * bin_seconds, duration)
        if k + 1 < len(spans):
            nxt = spans[k + 1][0]
            end = cut_at.get(nxt, nxt * bin_seconds)
        anchor = min(((b0 + b1) // 2 + 0.5) * bin_seconds, duration)
        anchor = min(max(anchor, start), max(start, end - 1e-9))
        segments.append(
            Segment(
                start_bin=b0,
                end_bin=b1,
                start=float(start),
                end=float(end),
                anchor=float(anchor),
                energy=float(smoothed[b0 : b1 + 1].sum()),
            )
        )
    return segments


def _nearest_frame(times: np.ndarray, t: float) -> int:
    i = int(np.searchsorted(times, t))
    if i <= 0:
        return 0
    if i >= len(times):
        return len(times) - 1
    return i - 1 if (t - times[i - 1]) <= (times[i] - t) else i


def plan_groups(
    plan: GopPlan, probe: StreamProbe, config: CodecConfig, *, max_groups: int | None = None
) -> list[GroupSpec]:
    """Anchors and frame ranges of the groups (see the module docstring for the two anchor modes).

    Anchors closer than ``min_group_frames`` frames to the previous kept anchor are dropped (greedy), in
    midpoint mode the last anchor is dropped when its group spans less than ``tail_anchor_min_seconds``,
    and beyond ``max_groups`` the anchors are subsampled evenly, the clip's end counting as a boundary
    (anchor positions ``floor(k * n / max_groups)``; the first is always kept).
    """
    times = probe.times
    n = probe.total_frames
    if config.anchor_mode == "start":
        anchors = [int(np.searchsorted(times, s.start - 1e-9)) for s in plan.segments]
    else:
        anchors = [0] + [_nearest_frame(times, s.anchor) for s in plan.segments]
    anchors = sorted({min(max(a, 0), n - 1) for a in anchors})
    anchors[0] = 0
    kept = [anchors[0]]
    for a in anchors[1:]:
        if a - kept[-1] >= config.min_group_frames and n - a >= 1:
            kept.append(a)
    if config.anchor_mode == "midpoint" and len(kept) > 1:
        tail_span = probe.duration - float(times[kept[-1]])
        if tail_span < config.tail_anchor_min_seconds:
            kept.pop()
    limit = config.max_groups if max_groups is None else min(max_groups, config.max_groups)
    limit = max(1, limit)
    if len(kept) > limit:
        # evenly over the anchors with the clip's end as one more boundary (the first is kept), so the
        # last group is not a short tail: positions floor(k * len / limit), k < limit
        pick = np.unique(np.floor(np.linspace(0, len(kept), limit + 1)[:-1] + 1e-9).astype(np.int64))
        kept = [kept[i] for i in pick]
    groups = []
    for k, a in enumerate(kept):
        end_frame = kept[k + 1] if k + 1 < len(kept) else n
        start_t = float(times[a])
        end_t = float(times[end_frame]) if end_frame < n else float(probe.duration)
        b0 = math.floor(start_t / plan.bin_seconds + 1e-9)
        b1 = math.ceil(end_t / plan.bin_seconds - 1e-9)
        groups.append(
            GroupSpec(
                index=k,
                anchor_frame=int(a),
                frame_start=int(a),
                frame_end=int(end_frame),
                start=start_t,
                end=end_t,
                bit_cost=float(plan.smoothed[b0 : max(b0 + 1, b1)].sum()),
            )
        )
    return groups

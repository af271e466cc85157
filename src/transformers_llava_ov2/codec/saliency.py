"""Stage 4a: per-frame saliency maps and block scores (official normalisation).

* motion: ``|v| / mv_unit_div`` from the (resized, rescaled) L0 field,
  ``m = clip(mag / max(P95, 1e-6, floor), 0, 1)``, ``floor`` = ``mv_norm_floor`` canvas pixels in
  ``mag``'s units (0: official);
* residual: ``x = |res_u8 - 128|``, ``r = clip(x / max(P95, res_norm_floor), 0, 1)`` (1: official);
* fusion ``s = clip((w_mv m + w_res r) / (w_mv + w_res), 0, 1)`` (residual only when there is no motion);
* letterbox mask, then ``p x p`` patch sums and ``merge x merge`` block sums.

See ``docs/codec.md`` § "4. Saliency and selection (official constants)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import CodecConfig
from .kernels import (
    FUSE_RESIDUAL,
    FUSE_TABLES,
    FUSE_ZERO_MOTION,
    magnitude_table,
    quality_sums,
    residual_scale,
    saliency_blocks,
    use_numba,
)
from .kernels import weighted_order_stats as nb_order_stats
from .motion import MotionField

__all__ = [
    "FrameQuality",
    "block_scores",
    "frame_activity",
    "frame_block_scores",
    "frame_quality",
    "fuse_saliency",
    "global_motion",
    "letterbox_mask",
    "motion_magnitude",
    "motion_saliency",
    "normalise_motion",
    "percentile",
    "residual_saliency",
    "saliency_and_activity",
    "saliency_map",
]


def percentile(x: np.ndarray, q: float) -> float:
    """``np.percentile(x, q)`` (linear interpolation) computed with a partial sort."""
    flat = np.asarray(x, dtype=np.float32).reshape(-1)
    n = flat.size
    if n == 0:
        return 0.0
    pos = (n - 1) * q / 100.0
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    part = np.partition(flat, (lo, hi))
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))


def weighted_order_stats(
    values: np.ndarray,
    counts: np.ndarray,
    ranks: np.ndarray,
    *,
    presorted: bool = False,
    kernels: str = "numpy",
) -> np.ndarray:
    """The 0-based ``ranks`` order statistics of the multiset holding ``counts[i]`` copies of ``values[i]``
    (``np.sort(np.repeat(values, counts))[ranks]`` without the repeat); ``presorted``: ``values`` ascend.
    ``kernels``: ``CodecConfig.kernels`` for unsorted values (numba :func:`~.kernels.weighted_order_stats`
    or numpy; the same values)."""
    if presorted:
        return values[np.searchsorted(np.cumsum(counts), ranks, side="right")]
    if use_numba(kernels):
        return nb_order_stats(values, counts, ranks)
    order = np.argsort(values)  # equal values are interchangeable: no stable sort needed
    return values[order[np.searchsorted(np.cumsum(counts[order]), ranks, side="right")]]


def weighted_percentile(
    values: np.ndarray, counts: np.ndarray, q: float, *, presorted: bool = False, kernels: str = "numpy"
) -> float:
    """:func:`percentile` of ``np.repeat(values, counts)`` (``float32 values``), the same float32
    interpolation: the per-pixel P95 of a :class:`~.motion.MotionField` read off its vector table."""
    n = int(counts.sum())
    if n == 0:
        return 0.0
    pos = (n - 1) * q / 100.0
    lo = int(pos)
    ranks = np.asarray([lo, min(lo + 1, n - 1)])
    a, b = weighted_order_stats(values, counts, ranks, presorted=presorted, kernels=kernels)
    return float(a + (b - a) * (pos - lo))


def weighted_median(values: np.ndarray, counts: np.ndarray, *, kernels: str = "numpy") -> np.floating:
    """``np.median(np.repeat(values, counts))``: the middle order statistic, or the float mean of the two
    middle ones (same dtype as ``values``)."""
    n = int(counts.sum())
    mid = weighted_order_stats(values, counts, np.asarray([(n - 1) // 2, n // 2]), kernels=kernels)
    return mid[0] if n % 2 else (mid[0] + mid[1]) / 2  # float32 arithmetic, as np.mean


def motion_saliency(
    flow: np.ndarray | MotionField,
    *,
    unit_div: float = 4.0,
    pct: float = 95.0,
    compensate: str = "none",
    direction: str = "l0",
    floor: float = 0.0,
) -> np.ndarray:
    """``float32 [h, w]`` normalised motion magnitude in ``[0, 1]``.

    Args:
        flow: ``float32 [4, h, w]`` (L0 x, L0 y, L1 x, L1 y) or a :class:`~.motion.MotionField`.
        compensate: camera-motion compensation (:func:`global_motion`): ``"none"``, ``"median"``, ``"affine"``.
        direction: ``"l0"`` (official) or ``"both"`` (max of the L0 and L1 magnitudes).
        floor: least normalisation scale (:func:`normalise_motion`; 0 = official).
    """
    mag = _magnitude(_as_field(flow), unit_div, compensate, direction)
    return mag.pixels(_motion_scale(mag.percentile(pct), floor))


def _motion_scale(p: float, floor: float) -> np.float32:
    """The motion normalisation scale ``max(P, 1e-6, floor)``."""
    return np.float32(max(p, 1e-6, floor))


def normalise_motion(mag: np.ndarray, pct: float = 95.0, floor: float = 0.0) -> np.ndarray:
    """``clip(mag / max(P_pct(mag), 1e-6, floor), 0, 1)`` in place (``float32 [h, w]``).

    ``floor = 0`` is the official rule; a positive floor (``CodecConfig.mv_norm_floor``, converted to
    ``mag``'s units) keeps a frame whose motion is all below it (residual shake, encoder noise) from being
    stretched to full saliency.
    """
    np.divide(mag, _motion_scale(percentile(mag, pct), floor), out=mag)
    return np.clip(mag, 0.0, 1.0, out=mag)


@dataclass(frozen=True)
class _Magnitude:
    """A frame's motion magnitude as tables: per list ``(mag float32 [m], owner int64 [h * w],
    pixels int64 [m])``; the pixel's magnitude is the max over the lists of ``mag[owner]``."""

    lists: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    hw: tuple[int, int]
    kernels: str = "numpy"

    def tables(self, scale: np.float32 | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per list ``(float32 [m] magnitude table, int64 [h * w] owner)``, the table normalised to
        ``clip(mag / scale, 0, 1)`` when ``scale`` is given."""
        if scale is None:
            return [(mag, owner) for mag, owner, _ in self.lists]
        return [(np.clip(mag / scale, 0.0, 1.0), owner) for mag, owner, _ in self.lists]

    def pixels(self, scale: np.float32 | None = None) -> np.ndarray:
        """``float32 [h, w]`` magnitude, or with ``scale`` ``clip(mag / scale, 0, 1)``: the max over the
        lists of ``table[owner]``."""
        out = None
        for mag, owner in self.tables(scale):
            m = mag.take(owner)
            out = m if out is None else np.maximum(out, m)
        assert out is not None
        return out.reshape(self.hw)

    def percentile(self, pct: float) -> float:
        """:func:`percentile` of the pixel magnitudes (per table entry when there is one list)."""
        if len(self.lists) == 1:
            mag, _, pixels = self.lists[0]
            return weighted_percentile(mag, pixels, pct, kernels=self.kernels)
        return percentile(self.pixels(), pct)

    def mean(self) -> float:
        """Mean pixel magnitude (float64)."""
        if len(self.lists) == 1:
            mag, _, pixels = self.lists[0]
            return float(pixels @ mag.astype(np.float64)) / max(1, int(pixels.sum()))
        return float(self.pixels().mean(dtype=np.float64))


def _as_field(flow: np.ndarray | MotionField) -> MotionField:
    return flow if isinstance(flow, MotionField) else MotionField.from_flow(flow)


def _magnitude(
    field: MotionField, unit_div: float, compensate: str, direction: str, kernels: str = "numpy"
) -> _Magnitude:
    """``|v - g| / unit_div`` per list (``g`` = :func:`global_motion` of that list, 0 for ``"none"``):
    L0, or L0 and L1 for ``direction="both"``; ``kernels`` for the table's order statistics."""
    if compensate not in ("none", "median", "affine"):
        raise ValueError(f"mv_compensate must be 'none', 'median' or 'affine', got {compensate!r}")
    h, w = field.hw
    vx = np.divide(field.vx, unit_div, dtype=np.float32)
    vy = np.divide(field.vy, unit_div, dtype=np.float32)
    lists = []
    for lst in (0,) if direction == "l0" else (0, 1):
        owner, pixels = field.owner[lst], field.pixels[lst]
        x, y = vx, vy
        if compensate == "median":
            x = x - weighted_median(x, pixels, kernels=kernels)
            y = y - weighted_median(y, pixels, kernels=kernels)
        elif compensate == "affine":  # a per-pixel fit: one table entry per pixel
            v = np.stack([x.take(owner), y.take(owner)]).reshape(2, h, w)
            v = v - global_motion(v, "affine")
            x, y = v[0].reshape(-1), v[1].reshape(-1)
            owner, pixels = np.arange(h * w), np.ones(h * w, dtype=np.int64)
        m = x * x
        m += y * y
        np.sqrt(m, out=m)
        if compensate == "affine":  # the fit's float error must not become motion after normalisation
            m[m < AFFINE_DEAD_ZONE] = 0.0
        lists.append((m, owner, pixels))
    return _Magnitude(lists, (h, w), kernels)


def motion_magnitude(
    flow: np.ndarray | MotionField, *, unit_div: float = 4.0, compensate: str = "none", direction: str = "l0"
) -> np.ndarray:
    """``float32 [h, w]`` motion magnitude ``|v - g| / unit_div`` (``g`` = :func:`global_motion`, 0 for
    ``"none"``), the max over L0/L1 for ``direction="both"``."""
    return _magnitude(_as_field(flow), unit_div, compensate, direction).pixels()


#: compensated magnitudes below this (MV units / ``unit_div``, far below a quarter-pel step at any
#: analysis scale used here) are zero under ``"affine"``: without it the fit's tiny residue on a still
#: background is scaled up by the per-frame P95 normalisation
AFFINE_DEAD_ZONE = 0.01


def global_motion(v: np.ndarray, mode: str, *, step: int = 4, rounds: int = 2) -> np.ndarray:
    """Camera motion of one frame's vector field ``v`` (``float32 [2, h, w]``), broadcastable to it.

    ``"median"``: the per-component median vector (``[2, 1, 1]``). ``"affine"``: a robust affine fit
    ``v(x, y) = A [x, y, 1]`` (``[2, h, w]``): least squares on every ``step``-th cell, started from the
    median and refitted ``rounds`` times on the inliers (residual ``<= max(3 * median residual, 0.05)``),
    so a moving subject does not pull the fit; falls back to the median when too few inliers remain.
    """
    med = np.median(v.reshape(2, -1), axis=1).astype(np.float32)[:, None, None]
    if mode == "median":
        return med
    if mode != "affine":
        raise ValueError(f"mv_compensate must be 'none', 'median' or 'affine', got {mode!r}")
    _, h, w = v.shape
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    sv = v[:, ::step, ::step].reshape(2, -1).astype(np.float64)
    design = np.stack([xs.reshape(-1) / w, ys.reshape(-1) / h, np.ones(xs.size)], axis=1)
    pred = np.broadcast_to(med.reshape(2, 1), sv.shape)
    coef = None
    for _ in range(rounds):
        err = np.hypot(sv[0] - pred[0], sv[1] - pred[1])
        inl = err <= max(3.0 * float(np.median(err)), 0.05)
        if inl.sum() < 12:
            break
        coef, *_ = np.linalg.lstsq(design[inl], sv[:, inl].T, rcond=None)  # [3, 2]
        pred = (design @ coef).T
    if coef is None:
        return med
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    c = coef.astype(np.float32)
    return np.stack([c[0, k] * gx / w + c[1, k] * gy / h + c[2, k] for k in range(2)])


#: grey levels of motion-compensated residual treated as coding noise by :func:`frame_activity`
#: (measured on the coverage-benchmark clips: the mean residual of a jittering still stretch is 0.8x that
#: of the action, the mean excess over 8 levels 0.12x)
RESIDUAL_NOISE_FLOOR = 8.0

_ABS_DEV = np.abs(np.arange(256, dtype=np.float32) - 128.0)  # |v - 128| for every uint8 value
_LEVELS = np.arange(129, dtype=np.float32)  # the values |v - 128| can take
_EXCESS = np.maximum(_ABS_DEV - RESIDUAL_NOISE_FLOOR, 0.0).astype(np.float64)  # coding-noise excess


def _residual_hist(residual_u8: np.ndarray) -> np.ndarray:
    """``int64 [256]`` counts of the values of a ``uint8`` residual."""
    if residual_u8.dtype != np.uint8:
        raise TypeError(f"the residual must be uint8 clip(128 + res), got {residual_u8.dtype}")
    return np.bincount(residual_u8.reshape(-1), minlength=256)


def _activity(mv_mean: float | None, hist: np.ndarray, config: CodecConfig) -> float:
    """:func:`frame_activity` from the mean motion magnitude (``None``: no motion term) and the residual
    histogram."""
    n = int(hist.sum())
    res = float(hist @ _EXCESS) / n / 8.0 if n else 0.0
    w_mv = config.w_mv if mv_mean is not None else 0.0
    return (w_mv * (mv_mean or 0.0) + config.w_res * res) / max(w_mv + config.w_res, 1e-9)


def frame_activity(mag: np.ndarray | None, residual_u8: np.ndarray, config: CodecConfig) -> float:
    """How much changes in a frame, before any per-frame normalisation (content allocation weight):
    ``(w_mv * mean(motion magnitude) + w_res * mean(max(|res - 128| - 8, 0)) / 8) / (w_mv + w_res)``
    (float64 means; no motion term when ``mag`` is ``None``)."""
    mv = None if mag is None else (float(mag.mean(dtype=np.float64)) if mag.size else 0.0)
    return _activity(mv, _residual_hist(residual_u8), config)


def _hist_abs_dev_percentile(hist: np.ndarray, q: float) -> float:
    """:func:`percentile` of ``|res - 128|`` (float32) from the residual's value histogram.

    The order statistics are read off the cumulative counts of ``|v - 128|`` (0..128), then interpolated
    with the same float32 arithmetic as :func:`percentile`, so the result is identical.
    """
    counts = np.zeros(129, dtype=np.int64)
    counts[:128] += hist[128:]  # v = 128 + x
    counts[1:] += hist[127::-1]  # v = 128 - x
    return weighted_percentile(_LEVELS, counts, q, presorted=True)


def _residual_scale(hist: np.ndarray, pct: float, floor: float) -> np.float32:
    """The residual normalisation scale ``max(P_pct(|res - 128|), floor)`` (P from the histogram)."""
    return np.float32(max(_hist_abs_dev_percentile(hist, pct), floor))


def _residual_map(residual_u8: np.ndarray, hist: np.ndarray, pct: float, floor: float) -> np.ndarray:
    """``float32 [h, w]`` ``clip(|res - 128| / max(P, floor), 0, 1)`` (P from the histogram ``hist``)."""
    x = residual_u8.astype(np.float32)
    x -= 128.0
    np.abs(x, out=x)
    x /= _residual_scale(hist, pct, floor)
    return np.clip(x, 0.0, 1.0, out=x)


def residual_saliency(residual_u8: np.ndarray, *, pct: float = 95.0, floor: float = 1.0) -> np.ndarray:
    """``float32 [h, w]``: ``clip(|res - 128| / max(P95, floor), 0, 1)`` (``floor = 1``: official;
    ``CodecConfig.res_norm_floor``), for a ``uint8`` residual ``clip(128 + res)``."""
    return _residual_map(residual_u8, _residual_hist(residual_u8), pct, floor)


def fuse_saliency(motion: np.ndarray | None, residual: np.ndarray, w_mv: float, w_res: float) -> np.ndarray:
    """``clip((w_mv m + w_res r) / (w_mv + w_res), 0, 1)``; residual alone when ``motion`` is ``None``."""
    if motion is None or w_mv == 0:
        return residual if w_res > 0 else np.zeros_like(residual)
    fused = w_mv * motion
    fused += w_res * residual
    fused /= w_mv + w_res
    return np.clip(fused, 0.0, 1.0, out=fused)


def saliency_map(
    flow: np.ndarray | MotionField | None, residual_u8: np.ndarray, config: CodecConfig, *, has_motion: bool
) -> np.ndarray:
    """Fused ``float32 [h, w]`` saliency of one frame.

    Args:
        flow: motion field of the frame (dense ``float32 [4, h, w]`` or :class:`~.motion.MotionField`), or
            ``None`` (I frame / no vectors: zero motion).
        residual_u8: ``uint8 [h, w]`` ``clip(128 + res)``.
        has_motion: the stream has motion vectors at all; when ``False`` the motion term is dropped
            (residual-only saliency), otherwise a missing field counts as zero motion.
    """
    return saliency_and_activity(flow, residual_u8, config, has_motion=has_motion)[0]


def saliency_and_activity(
    flow: np.ndarray | MotionField | None, residual_u8: np.ndarray, config: CodecConfig, *, has_motion: bool
) -> tuple[np.ndarray, float]:
    """:func:`saliency_map` and :func:`frame_activity` of one frame.

    With a :class:`~.motion.MotionField` and ``direction="l0"`` the motion statistics (median, P95) are
    order statistics of the vector table weighted by pixel counts, equal to the per-pixel ones, and the
    normalised motion is looked up per pixel (one ``take``); the residual's P95 comes from its 256-value
    histogram. The activity's means are float64 (a dot product over the table / the histogram).
    """
    hist = _residual_hist(residual_u8)
    r = _residual_map(residual_u8, hist, config.res_percentile, config.res_norm_floor)
    w_mv, w_res = config.w_mv, config.w_res
    if not has_motion or flow is None:
        zero = None if not has_motion else np.zeros_like(r)
        return fuse_saliency(zero, r, w_mv if has_motion else 0.0, w_res if has_motion else 1.0), _activity(
            None, hist, config
        )
    mag = _magnitude(_as_field(flow), config.mv_unit_div, config.mv_compensate, config.mv_direction)
    floor = config.mv_norm_floor / (config.analysis_downsample * config.mv_unit_div)  # canvas px -> mag
    m = mag.pixels(_motion_scale(mag.percentile(config.mv_percentile), floor))
    return fuse_saliency(m, r, w_mv, w_res), _activity(mag.mean(), hist, config)


def frame_block_scores(
    flow: np.ndarray | MotionField | None,
    residual_u8: np.ndarray,
    config: CodecConfig,
    *,
    has_motion: bool,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """One frame's merge-block scores and activity: :func:`block_scores` of
    ``saliency_map(...) * mask`` (``float64 [h / (p m), w / (p m)]``, ``p`` = patch in analysis pixels,
    ``m = config.merge_size``; coded orientation) and :func:`frame_activity`.

    ``config.kernels`` picks the numba kernel :func:`~.kernels.saliency_blocks` (one pass, no per-pixel
    maps) or numpy: same result (the sums are of float32 values whose float64 sums are exact).
    ``mask``: ``float32 [h, w]`` letterbox mask (:func:`letterbox_mask`) or ``None``.
    """
    patch = config.patch_size // config.analysis_downsample
    if not use_numba(config.kernels):
        smap, activity = saliency_and_activity(flow, residual_u8, config, has_motion=has_motion)
        if mask is not None:
            smap = smap * mask
        return block_scores(smap, patch, config.merge_size), activity
    if residual_u8.dtype != np.uint8:
        raise TypeError(f"the residual must be uint8 clip(128 + res), got {residual_u8.dtype}")
    residual_u8 = np.ascontiguousarray(residual_u8)
    hist, res_scale = residual_scale(residual_u8, config.res_percentile, config.res_norm_floor)
    w_mv, w_res = (config.w_mv, config.w_res) if has_motion else (0.0, 1.0)
    tables: list[tuple[np.ndarray, np.ndarray]] = []
    mv_mean = None
    if not has_motion:
        mode = FUSE_RESIDUAL
    elif flow is None:
        mode = FUSE_ZERO_MOTION
    else:
        field = _as_field(flow)
        floor = config.mv_norm_floor / (config.analysis_downsample * config.mv_unit_div)
        if config.mv_direction == "l0" and config.mv_compensate != "affine":  # the table in one call
            table, p = magnitude_table(
                field.vx,
                field.vy,
                field.pixels[0],
                config.mv_unit_div,
                config.mv_compensate == "median",
                config.mv_percentile,
            )
            mag = _Magnitude([(table, field.owner[0], field.pixels[0])], field.hw, config.kernels)
        else:
            mag = _magnitude(
                field, config.mv_unit_div, config.mv_compensate, config.mv_direction, config.kernels
            )
            p = mag.percentile(config.mv_percentile)
        tables = mag.tables(_motion_scale(p, floor))
        mode, mv_mean = FUSE_TABLES, mag.mean()
    if w_mv == 0:  # fuse_saliency: the residual alone
        mode = FUSE_RESIDUAL
    blocks = saliency_blocks(
        residual_u8, res_scale, tables, (w_mv, w_res), mode, mask, patch, config.merge_size
    )
    return blocks, _activity(mv_mean, hist, config)


def letterbox_mask(luma: np.ndarray, dark_threshold: float = 16.0, min_content: float = 0.25) -> np.ndarray:
    """``float32 [h, w]`` 1 inside the content box, 0 on dark borders (rows/cols with mean ``< thr``).

    Only outer contiguous dark rows/columns count; when the content box would keep less than
    ``min_content`` of either side (e.g. a black frame), the mask is all ones.
    """
    h, w = luma.shape
    rows = luma.mean(axis=1) >= dark_threshold
    cols = luma.mean(axis=0) >= dark_threshold
    mask = np.ones((h, w), dtype=np.float32)
    if not rows.any() or not cols.any():
        return mask
    r0, r1 = int(np.argmax(rows)), h - int(np.argmax(rows[::-1]))
    c0, c1 = int(np.argmax(cols)), w - int(np.argmax(cols[::-1]))
    if (r1 - r0) < min_content * h or (c1 - c0) < min_content * w:
        return mask
    mask[:r0] = 0
    mask[r1:] = 0
    mask[:, :c0] = 0
    mask[:, c1:] = 0
    return mask


def block_scores(score: np.ndarray, patch: int, merge: int) -> np.ndarray:
    """``float64 [H/(patch*merge), W/(patch*merge)]`` sums of ``score`` over each merge block.

    ``score`` is ``[H, W]`` with ``H, W`` multiples of ``patch * merge`` (``patch`` in analysis pixels).
    Patch sums are taken first (``p x p``), then ``merge x merge`` of them, as in the official scorer.
    """
    h, w = score.shape
    ph, pw = h // patch, w // patch
    patches = (
        score[: ph * patch, : pw * patch].reshape(ph, patch, pw, patch).sum(axis=(1, 3), dtype=np.float64)
    )
    return patches.reshape(ph // merge, merge, pw // merge, merge).sum(axis=(1, 3))


@dataclass(frozen=True)
class FrameQuality:
    """Bad-frame test result: ``black`` (dark and flat) or ``corrupt`` (mostly saturated green)."""

    black: bool
    corrupt: bool
    luma_mean: float
    luma_std: float
    green_fraction: float

    @property
    def good(self) -> bool:
        return not (self.black or self.corrupt)


def frame_quality(luma: np.ndarray, thumb_rgb: np.ndarray, config: CodecConfig) -> FrameQuality:
    """Black: luma mean ``< black_y_mean`` and std ``< black_y_std`` (both from exact integer sums,
    ``sqrt((n S2 - S1^2) / n^2)``); corrupt: more than
    ``corrupt_green_fraction`` of the thumbnail pixels have ``G > corrupt_g`` and ``R, B < corrupt_rb``."""
    n = luma.size
    if use_numba(config.kernels):
        s1, s2, green = quality_sums(luma, thumb_rgb, config.corrupt_g, config.corrupt_rb)
    else:
        flat = luma.reshape(-1).astype(np.int64)
        s1, s2 = int(flat.sum()), int(flat @ flat)  # exact integer sums
        rgb = thumb_rgb.astype(np.int16)
        green = int(
            (
                (rgb[..., 1] > config.corrupt_g)
                & (rgb[..., 0] < config.corrupt_rb)
                & (rgb[..., 2] < config.corrupt_rb)
            ).sum()
        )
    mean = s1 / n if n else 0.0
    std = math.sqrt((n * s2 - s1 * s1) / (n * n)) if n else 0.0
    pixels = thumb_rgb.shape[0] * thumb_rgb.shape[1]
    frac = green / pixels if pixels else 0.0
    return FrameQuality(
        black=mean < config.black_y_mean and std < config.black_y_std,
        corrupt=frac > config.corrupt_green_fraction,
        luma_mean=mean,
        luma_std=std,
        green_fraction=frac,
    )

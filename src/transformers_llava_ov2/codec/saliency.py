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

from dataclasses import dataclass

import numpy as np

from .config import CodecConfig

__all__ = [
    "FrameQuality",
    "block_scores",
    "frame_activity",
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


def motion_saliency(
    flow: np.ndarray,
    *,
    unit_div: float = 4.0,
    pct: float = 95.0,
    compensate: str = "none",
    direction: str = "l0",
    floor: float = 0.0,
) -> np.ndarray:
    """``float32 [h, w]`` normalised motion magnitude in ``[0, 1]``.

    Args:
        flow: ``float32 [4, h, w]`` (L0 x, L0 y, L1 x, L1 y).
        compensate: camera-motion compensation (:func:`global_motion`): ``"none"``, ``"median"``, ``"affine"``.
        direction: ``"l0"`` (official) or ``"both"`` (max of the L0 and L1 magnitudes).
        floor: least normalisation scale (:func:`normalise_motion`; 0 = official).
    """
    mag = motion_magnitude(flow, unit_div=unit_div, compensate=compensate, direction=direction)
    return normalise_motion(mag, pct, floor)


def normalise_motion(mag: np.ndarray, pct: float = 95.0, floor: float = 0.0) -> np.ndarray:
    """``clip(mag / max(P_pct(mag), 1e-6, floor), 0, 1)`` in place (``float32 [h, w]``).

    ``floor = 0`` is the official rule; a positive floor (``CodecConfig.mv_norm_floor``, converted to
    ``mag``'s units) keeps a frame whose motion is all below it (residual shake, encoder noise) from being
    stretched to full saliency.
    """
    scale = max(percentile(mag, pct), 1e-6, floor)
    np.divide(mag, np.float32(scale), out=mag)
    return np.clip(mag, 0.0, 1.0, out=mag)


def motion_magnitude(
    flow: np.ndarray, *, unit_div: float = 4.0, compensate: str = "none", direction: str = "l0"
) -> np.ndarray:
    """``float32 [h, w]`` motion magnitude ``|v - g| / unit_div`` (``g`` = :func:`global_motion`, 0 for
    ``"none"``), the max over L0/L1 for ``direction="both"``."""
    lists = [flow[0:2]] if direction == "l0" else [flow[0:2], flow[2:4]]
    mag = None
    for v in lists:
        v = np.divide(v, unit_div, dtype=np.float32)
        if compensate != "none":
            v = v - global_motion(v, compensate)
        m = v[0] * v[0]
        m += v[1] * v[1]
        np.sqrt(m, out=m)
        if compensate == "affine":  # the fit's float error must not become motion after normalisation
            m[m < AFFINE_DEAD_ZONE] = 0.0
        mag = m if mag is None else np.maximum(mag, m)
    assert mag is not None
    return mag


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


def frame_activity(mag: np.ndarray | None, residual_u8: np.ndarray, config: CodecConfig) -> float:
    """How much changes in a frame, before any per-frame normalisation (content allocation weight):
    ``(w_mv * mean(motion magnitude) + w_res * mean(max(|res - 128| - 8, 0)) / 8) / (w_mv + w_res)``."""
    res = 0.0
    if residual_u8.size:
        excess = np.abs(residual_u8.astype(np.float32) - 128.0) - RESIDUAL_NOISE_FLOOR
        res = float(np.maximum(excess, 0.0).mean()) / 8.0
    mv = float(mag.mean()) if mag is not None and mag.size else 0.0
    w_mv = config.w_mv if mag is not None else 0.0
    return (w_mv * mv + config.w_res * res) / max(w_mv + config.w_res, 1e-9)


_ABS_DEV = np.abs(np.arange(256, dtype=np.float32) - 128.0)  # |v - 128| for every uint8 value


def _u8_abs_dev_percentile(residual_u8: np.ndarray, q: float) -> float:
    """:func:`percentile` of ``|res - 128|`` (float32) from a histogram of the ``uint8`` values.

    The order statistics are read off the cumulative counts of ``|v - 128|`` (0..128), then interpolated
    with the same float32 arithmetic as :func:`percentile`, so the result is identical.
    """
    n = residual_u8.size
    hist = np.bincount(residual_u8.reshape(-1), minlength=256)
    counts = np.zeros(129, dtype=np.int64)
    counts[:128] += hist[128:]  # v = 128 + x
    counts[1:] += hist[127::-1]  # v = 128 - x
    cum = np.cumsum(counts)
    pos = (n - 1) * q / 100.0
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    a, b = np.searchsorted(cum, (lo, hi), side="right")
    va, vb = np.float32(a), np.float32(b)  # the order statistics |v - 128| (exact in float32)
    return float(va + (vb - va) * (pos - lo))


def residual_saliency(residual_u8: np.ndarray, *, pct: float = 95.0, floor: float = 1.0) -> np.ndarray:
    """``float32 [h, w]``: ``clip(|res - 128| / max(P95, floor), 0, 1)`` (``floor = 1``: official;
    ``CodecConfig.res_norm_floor``)."""
    if residual_u8.dtype == np.uint8 and residual_u8.size:
        # 256-entry lookup table: the same float32 operations per value, without per-pixel temporaries
        scale = max(_u8_abs_dev_percentile(residual_u8, pct), floor)
        return np.clip(_ABS_DEV / scale, 0.0, 1.0).take(residual_u8)
    x = np.abs(residual_u8.astype(np.float32) - 128.0)
    scale = max(percentile(x, pct), floor)
    return np.clip(x / scale, 0.0, 1.0)


def fuse_saliency(motion: np.ndarray | None, residual: np.ndarray, w_mv: float, w_res: float) -> np.ndarray:
    """``clip((w_mv m + w_res r) / (w_mv + w_res), 0, 1)``; residual alone when ``motion`` is ``None``."""
    if motion is None or w_mv == 0:
        return residual if w_res > 0 else np.zeros_like(residual)
    fused = w_mv * motion
    fused += w_res * residual
    fused /= w_mv + w_res
    return np.clip(fused, 0.0, 1.0, out=fused)


def saliency_map(
    flow: np.ndarray | None, residual_u8: np.ndarray, config: CodecConfig, *, has_motion: bool
) -> np.ndarray:
    """Fused ``float32 [h, w]`` saliency of one frame.

    Args:
        flow: motion field of the frame, or ``None`` (I frame / no vectors: zero motion).
        has_motion: the stream has motion vectors at all; when ``False`` the motion term is dropped
            (residual-only saliency), otherwise a missing field counts as zero motion.
    """
    return saliency_and_activity(flow, residual_u8, config, has_motion=has_motion)[0]


def saliency_and_activity(
    flow: np.ndarray | None, residual_u8: np.ndarray, config: CodecConfig, *, has_motion: bool
) -> tuple[np.ndarray, float]:
    """:func:`saliency_map` and :func:`frame_activity` of one frame (the motion magnitude computed once)."""
    r = residual_saliency(residual_u8, pct=config.res_percentile, floor=config.res_norm_floor)
    if not has_motion:
        return fuse_saliency(None, r, 0.0, 1.0), frame_activity(None, residual_u8, config)
    if flow is None:
        mag = None
        m = np.zeros_like(r)
    else:
        mag = motion_magnitude(
            flow, unit_div=config.mv_unit_div, compensate=config.mv_compensate, direction=config.mv_direction
        )
        activity = frame_activity(mag, residual_u8, config)
        floor = config.mv_norm_floor / (config.analysis_downsample * config.mv_unit_div)  # canvas px -> mag
        m = normalise_motion(mag, config.mv_percentile, floor)
        return fuse_saliency(m, r, config.w_mv, config.w_res), activity
    return fuse_saliency(m, r, config.w_mv, config.w_res), frame_activity(mag, residual_u8, config)


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
    """Black: luma mean ``< black_y_mean`` and std ``< black_y_std``; corrupt: more than
    ``corrupt_green_fraction`` of the thumbnail pixels have ``G > corrupt_g`` and ``R, B < corrupt_rb``."""
    mean = float(luma.mean())
    std = float(luma.std())
    rgb = thumb_rgb.astype(np.int16)
    green = (
        (rgb[..., 1] > config.corrupt_g)
        & (rgb[..., 0] < config.corrupt_rb)
        & (rgb[..., 2] < config.corrupt_rb)
    )
    frac = float(green.mean()) if green.size else 0.0
    return FrameQuality(
        black=mean < config.black_y_mean and std < config.black_y_std,
        corrupt=frac > config.corrupt_green_fraction,
        luma_mean=mean,
        luma_std=std,
        green_fraction=frac,
    )

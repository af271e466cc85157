"""Compiled per-pixel kernels of the codec signals (optional: numba, the ``fast`` extra).

The loops of the per-candidate work, compiled with numba (``nogil``, so the decode thread and the
signal work run in parallel instead of taking turns on the GIL):

* :func:`motion_cells`, :func:`owner_map`: the motion-vector cell grid and the owner map of the motion
  field (the rules of :func:`~.motion.densify_motion_vectors` and :func:`~.motion.sample_motion`);
* :func:`warp_residual`: the motion-compensated residual (the rule of :func:`~.motion.mc_residual`);
* :func:`saliency_blocks`: residual normalisation, fusion with the motion table, letterbox mask and the
  patch / merge-block sums (the rules of :mod:`.saliency`: ``_residual_map``, ``fuse_saliency``,
  ``block_scores``);
* :func:`block_mean2`: the analysis luma, the rounded mean of each 2 x 2 block of the working copy's Y
  plane (the rule of :func:`~.signals.block_mean_u8` for ``analysis_downsample=2``);
* :func:`pick_blocks`: step 4 of the block selection, each stratum's best free blocks by window (the
  rule of :class:`~.selection.RankedBlocks`; it stops scanning at the last block it needs);
* :func:`magnitude_table` and :func:`weighted_order_stats` (the median-compensated magnitude table and
  its P95), :func:`residual_scale` (the
  residual's value counts and P95), :func:`quality_sums` and :func:`thumbnail` (the bad-frame test).

Each kernel computes exactly what its numpy rule computes: integer arithmetic, or the same float32
operations in the same order (numba emits no fused multiply-add without ``fastmath``), and float64 sums of
float32 values whose sums are exact (saliency values are 0 or at least ~1e-4, 49 to a patch), so the
tokens do not depend on whether numba is installed (``tests/codec/test_kernels.py``).

:func:`use_numba` resolves ``CodecConfig.kernels`` (``"auto"``: numba when it imports). The kernels are
compiled on first use and cached on disk (numba's ``cache=True``: ``__pycache__`` next to this file, or
``NUMBA_CACHE_DIR``); a fresh install pays the compilation once (a few seconds).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any, Literal

import numpy as np

__all__ = [
    "KERNEL_CHOICES",
    "KernelChoice",
    "block_mean2",
    "magnitude_table",
    "motion_cells",
    "numba_available",
    "owner_map",
    "pick_blocks",
    "quality_sums",
    "residual_scale",
    "saliency_blocks",
    "thumbnail",
    "use_numba",
    "warp_residual",
    "weighted_order_stats",
]

KernelChoice = Literal["auto", "numba", "numpy"]
KERNEL_CHOICES: tuple[str, ...] = ("auto", "numba", "numpy")

#: :func:`warp_residual` prediction modes
PRED_PAST, PRED_FUTURE, PRED_BI = 0, 1, 2
#: :func:`saliency_blocks` fusion modes: residual alone, residual with zero motion, residual with the tables
FUSE_RESIDUAL, FUSE_ZERO_MOTION, FUSE_TABLES = 0, 1, 2


@cache
def numba_available() -> bool:
    """numba can be imported (``pip install transformers-llava-ov2[fast]``)."""
    return importlib.util.find_spec("numba") is not None


def use_numba(choice: str) -> bool:
    """Whether ``choice`` (``CodecConfig.kernels``) runs the compiled kernels.

    Raises:
        ValueError: ``choice`` is not one of :data:`KERNEL_CHOICES`.
        ImportError: ``"numba"`` was asked for and numba is not installed.
    """
    if choice not in KERNEL_CHOICES:
        raise ValueError(f"kernels must be one of {KERNEL_CHOICES}, got {choice!r}")
    if choice == "numpy":
        return False
    if numba_available():
        return True
    if choice == "numba":
        raise ImportError(
            "kernels='numba' needs numba: pip install 'transformers-llava-ov2[fast]' (or kernels='auto' / "
            "'numpy' for the numpy implementation, same results)"
        )
    return False


@cache
def _compiled() -> Any:
    """The numba kernels module (compiled on first call of each kernel; on-disk cache)."""
    from . import _kernels_numba

    return _kernels_numba


def motion_cells(
    mvs: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, int], bool]:
    """The vector table and cell owners of :func:`~.motion._cell_vectors` (same rule, same result):
    ``(winner int64 [2, ch * cw], dx int32 [n + 1], dy int32 [n + 1], unit, (ch, cw), has_l1)``.

    Args: ``mvs``: the exported motion vectors (structured array, at least one), ``height`` / ``width``:
    the frame size in pixels.
    """
    gh, gw = -(-height // 4), -(-width // 4)
    winner, dx, dy, unit, ch, cw, has_l1 = _compiled().motion_cells_nb(
        mvs["w"], mvs["h"], mvs["src_x"], mvs["src_y"], mvs["dst_x"], mvs["dst_y"], mvs["source"], gh, gw
    )
    return winner, dx, dy, int(unit), (int(ch), int(cw)), bool(has_l1)


def owner_map(
    winner: np.ndarray, flat: np.ndarray, cell_pixels: np.ndarray, m: int, lists: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(owner int64 [2, p], pixels int64 [2, m])`` of :func:`~.motion.sample_motion`: each output pixel's
    table entry ``winner[l, flat[p]]`` and the pixel count of every entry (``cell_pixels``: output pixels
    per cell); with ``lists == 1`` list 1 is "no vector" (entry ``m - 1``) everywhere."""
    return _compiled().owner_map_nb(winner, flat, cell_pixels, m, lists)


def weighted_order_stats(values: np.ndarray, counts: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """:func:`~.saliency.weighted_order_stats` (unsorted ``values``): the ``ranks`` order statistics of
    the multiset with ``counts[i]`` copies of ``values[i]`` (an argsort and a cumulative count)."""
    return _compiled().weighted_order_stats_nb(values, counts, ranks)


def magnitude_table(
    vx: np.ndarray, vy: np.ndarray, counts: np.ndarray, unit_div: float, median: bool, pct: float
) -> tuple[np.ndarray, float]:
    """``(float32 [m] |v - g| / unit_div per table entry, P_pct of it over the pixels)``: the L0 magnitude
    table of :func:`~.saliency._magnitude` (``g`` the weighted median vector with ``median``, else 0) and
    its :func:`~.saliency.weighted_percentile`, the same float32 operations (``counts``: pixels per entry)."""
    return _compiled().magnitude_table_nb(vx, vy, counts, np.float32(unit_div), median, float(pct))


def residual_scale(residual: np.ndarray, pct: float, floor: float) -> tuple[np.ndarray, np.float32]:
    """``(int64 [256] value counts of the uint8 residual, float32 max(P_pct(|residual - 128|), floor))``:
    :func:`~.saliency._residual_hist` and :func:`~.saliency._residual_scale` in one pass."""
    return _compiled().residual_scale_nb(residual, float(pct), float(floor))


def quality_sums(luma: np.ndarray, thumb: np.ndarray, g_min: int, rb_max: int) -> tuple[int, int, int]:
    """``(sum, sum of squares)`` of the ``uint8`` luma and the count of thumbnail pixels with
    ``G > g_min`` and ``R, B < rb_max``: the integers of :func:`~.saliency.frame_quality`."""
    s1, s2, green = _compiled().quality_sums_nb(luma, thumb, g_min, rb_max)
    return int(s1), int(s2), int(green)


def thumbnail(
    buffers: list[np.ndarray],
    index: list[np.ndarray],
    hw: tuple[int, int],
    full: bool,
    bt601: tuple[float, float, float, float],
    limited: tuple[float, float],
) -> np.ndarray:
    """``uint8 [h, w, 3]`` of :func:`~.motion.thumbnail_rgb` (same float32 operations): the Y, U, V samples
    ``buffers[k][index[k]]``, range expansion unless ``full``, the BT.601 matrix ``bt601``."""
    f32 = np.float32
    return _compiled().thumbnail_nb(
        *buffers, *index, hw[0], hw[1], full, f32(limited[0]), f32(limited[1]), *(f32(c) for c in bt601)
    )


def warp_residual(
    cur: np.ndarray,
    past: np.ndarray | None,
    future: np.ndarray | None,
    offsets: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    owner: np.ndarray,
    none: int,
    mode: int,
) -> np.ndarray:
    """``uint8 [h, w]`` ``clip(rint(cur - pred) + 128, 0, 255)``, ``pred`` the bilinear motion-compensated
    prediction of :func:`~.motion.mc_residual` (``mode``: :data:`PRED_PAST`, :data:`PRED_FUTURE` or
    :data:`PRED_BI`, the mean of both where both lists cover the pixel).

    Args:
        cur / past / future: ``uint8 [h, w]`` lumas (the reference a mode does not read may be ``None``).
        offsets: per table entry ``(ix int64, fx float32, iy int64, fy float32)``, the vector split into
            its floor and its fraction (:meth:`~.motion.MotionField.offsets`).
        owner: ``int64 [2, h * w]`` table entry of each pixel per list; ``none``: the "no vector" entry.
    """
    empty = np.zeros((1, 1), dtype=np.uint8)
    ix, fx, iy, fy = offsets
    return _compiled().warp_residual_nb(
        cur,
        empty if past is None else past,
        empty if future is None else future,
        ix,
        fx,
        iy,
        fy,
        owner,
        none,
        mode,
    )


def saliency_blocks(
    residual: np.ndarray,
    res_scale: np.float32,
    tables: list[tuple[np.ndarray, np.ndarray]],
    weights: tuple[np.float32, np.float32],
    mode: int,
    mask: np.ndarray | None,
    patch: int,
    merge: int,
) -> np.ndarray:
    """``float64 [h / (patch merge), w / (patch merge)]`` merge-block sums of the fused saliency.

    Per pixel ``r = clip(|residual - 128| / res_scale, 0, 1)``; :data:`FUSE_RESIDUAL`: ``s = r``;
    otherwise ``s = clip((w_mv m + w_res r) / (w_mv + w_res), 0, 1)`` with ``m = 0``
    (:data:`FUSE_ZERO_MOTION`) or the max over ``tables`` of ``table[owner[pixel]]``
    (:data:`FUSE_TABLES`; ``tables`` = ``[(float32 [m] normalised magnitudes, int64 [h * w] owner)]``, one
    or two lists); times ``mask`` (``float32 [h, w]``) when given; then ``patch x patch`` sums (float64)
    and ``merge x merge`` sums of those.
    """
    w_mv, w_res = np.float32(weights[0]), np.float32(weights[1])
    w_sum = np.float32(float(weights[0]) + float(weights[1]))
    dummy_tab, dummy_own = np.zeros(1, dtype=np.float32), np.zeros(1, dtype=np.int64)
    tab0, own0 = tables[0] if tables else (dummy_tab, dummy_own)
    tab1, own1 = tables[1] if len(tables) > 1 else (dummy_tab, dummy_own)
    return _compiled().saliency_blocks_nb(
        residual,
        np.float32(res_scale),
        tab0,
        own0,
        tab1,
        own1,
        len(tables),
        w_mv,
        w_res,
        w_sum,
        mode,
        np.zeros((0, 0), dtype=np.float32) if mask is None else mask,
        patch,
        merge,
    )


def block_mean2(rows: np.ndarray, width: int) -> np.ndarray:
    """``uint8 [H/2, width/2]`` ``(sum + 2) // 4`` of each 2 x 2 block of the first ``width`` columns of
    ``rows`` (``uint8 [H, S]``, C-contiguous, ``S >= width``, ``H`` and ``width`` even; the columns past
    ``width`` are row padding, as in ``plane_u8``): :func:`~.signals.block_mean_u8` with ``ds = 2``.

    The rows must be contiguous: numba vectorises the loop only then (9 us instead of 90 us for a
    504 x 280 plane)."""
    if not rows.flags.c_contiguous or rows.ndim != 2 or not 0 <= width <= rows.shape[1]:
        raise ValueError(f"block_mean2: expected C-contiguous uint8 [H, S >= {width}] rows, got {rows.shape}")
    return _compiled().block_mean2_nb(rows, width)


def pick_blocks(order_frame: np.ndarray, windows: np.ndarray, need: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ranks int64 [K], stratum int64 [K])`` of :meth:`~.selection.RankedBlocks.select`: for each stratum
    ``k`` and each of its windows ``windows[k, i] = [a, b)`` in turn, the first free ranks whose frame
    ``order_frame[rank]`` lies in the window until the stratum holds ``need``; a rank is taken once."""
    return _compiled().pick_blocks_nb(order_frame, windows, need)

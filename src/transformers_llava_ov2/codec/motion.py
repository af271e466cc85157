"""Motion and residual math of the codec signals (stage 3), independent of decoding.

* :func:`densify_motion_vectors`: exported motion vectors on the 4x4-cell grid (the rule of
  ``docs/codec.md`` § "3. Signals");
* :func:`motion_field`: that grid sampled at the analysis pixel centres (``float32 [4, h, w]``);
* :func:`warp_bilinear`, :func:`mc_residual`: the exact bilinear warp and the motion-compensated luma
  residual ``clip(128 + Y - pred)``;
* :func:`thumbnail_rgb`: a point-sampled RGB thumbnail read straight from the YUV planes.

Used by :mod:`.signals`; see ``docs/codec.md`` § "3. Signals (one decode pass)". The per-pixel loops have
numba versions in :mod:`.kernels` (``kernels=`` arguments; the same results).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from .kernels import (
    PRED_BI,
    PRED_FUTURE,
    PRED_PAST,
    motion_cells,
    owner_map,
    thumbnail,
    use_numba,
    warp_residual,
)

__all__ = [
    "MotionField",
    "densify_motion_vectors",
    "mc_residual",
    "motion_field",
    "plane_u8",
    "sample_motion",
    "thumbnail_rgb",
    "warp_bilinear",
]


# ---------------------------------------------------------------------------------------------- MVs
def densify_motion_vectors(mvs: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Motion vectors on the 4x4-cell grid of the official patched reader (``docs/codec.md`` § "3. Signals").

    Each exported vector fills cells ``dst/4 + [-w/8, w/8) x [-h/8, h/8)`` with ``src - dst`` (integer
    pixels, i.e. ``trunc(motion / motion_scale)``); ``source < 0`` (past) goes to L0, ``source > 0``
    (future) to L1; later vectors overwrite earlier ones, in the order of that reader's C loop.

    Args:
        mvs: the structured array of ``frame.side_data["MOTION_VECTORS"].to_ndarray()``.
        height / width: frame size in pixels.

    Returns:
        ``(grid int32 [4, ceil(H/4), ceil(W/4)]`` = L0x, L0y, L1x, L1y; ``mask bool [2, gh, gw]`` cells
        covered by an L0 / L1 vector).
    """
    gh, gw = -(-height // 4), -(-width // 4)
    grid, mask, unit = _densify_coarse(mvs, height, width)
    if unit > 1:
        grid = grid.repeat(unit, axis=1).repeat(unit, axis=2)[:, :gh, :gw]
        mask = mask.repeat(unit, axis=1).repeat(unit, axis=2)[:, :gh, :gw]
    return np.ascontiguousarray(grid), np.ascontiguousarray(mask)


@dataclass(slots=True)
class _CellVectors:
    """Which exported vector owns each cell of the coarsest exact grid (cells of ``unit`` x 4 pixels).

    ``winner[l]`` (``int [ch * cw]``) is the index of the last list-``l`` vector covering the cell, or
    ``len(mvs)`` when none does; ``dx``/``dy`` (``int32 [len(mvs) + 1]``) are the vectors' ``src - dst``
    with a trailing 0 for "no vector".
    """

    winner: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    unit: int
    shape: tuple[int, int]
    has_l1: bool


def _cell_vectors(mvs: np.ndarray | None, height: int, width: int) -> _CellVectors:
    """Expand every vector to its cells (C semantics ``dst/4 -/+ w/8``) on the coarsest exact grid.

    When every partition is aligned to 16x16 (``unit=4``) or 8x8 (``unit=2``) pixels, the 4x4-cell grid
    is this grid repeated ``unit`` times along both axes. Vectors are applied in order, so later vectors
    win on overlaps, as in the reader's C loop (:func:`densify_motion_vectors`). The numba version is
    :func:`~.kernels.motion_cells`.
    """
    gh, gw = -(-height // 4), -(-width // 4)
    n = 0 if mvs is None else len(mvs)
    if n == 0:
        zero = np.zeros(1, dtype=np.int32)
        return _CellVectors(np.zeros((2, gh * gw), dtype=np.int64), zero, zero, 1, (gh, gw), False)
    w = mvs["w"].astype(np.int64)
    h = mvs["h"].astype(np.int64)
    dst_x = mvs["dst_x"].astype(np.int64)
    dst_y = mvs["dst_y"].astype(np.int64)
    # cell ranges [x0, x0 + nx) x [y0, y0 + ny) with C semantics dst/4 -/+ w/8 (w, h >= 0)
    nx, ny = 2 * (w // 8), 2 * (h // 8)
    x0 = _c_div(dst_x, 4) - w // 8
    y0 = _c_div(dst_y, 4) - h // 8
    dx = np.zeros(n + 1, dtype=np.int32)
    dy = np.zeros(n + 1, dtype=np.int32)
    dx[:n] = mvs["src_x"].astype(np.int64) - dst_x
    dy[:n] = mvs["src_y"].astype(np.int64) - dst_y
    future = mvs["source"] > 0
    unit = 1
    if nx.min() > 0 and ny.min() > 0:  # no empty partition: try the coarser exact grids
        bits = np.bitwise_or.reduce(x0 | y0 | nx | ny)
        unit = 4 if not bits & 3 else 2 if not bits & 1 else 1
    if unit > 1:
        x0, y0, nx, ny = x0 // unit, y0 // unit, nx // unit, ny // unit
    ch, cw = -(-gh // unit), -(-gw // unit)
    winner = np.full((2, ch * cw), n, dtype=np.int64)
    # each vector's rectangle clipped to the grid; its cells in row-major order, vectors in order (the
    # order of the C loop: later vectors win)
    cx0, cy0 = np.maximum(x0, 0), np.maximum(y0, 0)
    cnx = np.maximum(np.minimum(x0 + nx, cw) - cx0, 0)
    cny = np.maximum(np.minimum(y0 + ny, ch) - cy0, 0)
    k = cnx * cny
    if k.max() <= 0:
        return _CellVectors(winner, dx, dy, unit, (ch, cw), False)
    if k.min() == 1 and k.max() == 1:  # one cell per vector
        vec, flat = np.arange(n), cy0 * cw + cx0
    else:
        vec = np.repeat(np.arange(n), k)
        local = np.arange(len(vec)) - np.repeat(np.cumsum(k) - k, k)
        rx = np.repeat(cnx, k)
        ly = local // rx
        flat = (np.repeat(cy0, k) + ly) * cw + np.repeat(cx0, k) + (local - ly * rx)
    fut = future[vec]
    has_l1 = bool(fut.any())
    if has_l1:
        winner[0, flat[~fut]] = vec[~fut]
        winner[1, flat[fut]] = vec[fut]
    else:
        winner[0, flat] = vec
    return _CellVectors(winner, dx, dy, unit, (ch, cw), has_l1)


def _densify_coarse(mvs: np.ndarray | None, height: int, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`densify_motion_vectors` on the coarsest exact grid: cells of ``unit`` x 4 pixels."""
    cells = _cell_vectors(mvs, height, width)
    ch, cw = cells.shape
    grid = np.empty((4, ch * cw), dtype=np.int32)
    n = len(cells.dx) - 1
    for lst in (0, 1):
        grid[2 * lst] = cells.dx.take(cells.winner[lst])
        grid[2 * lst + 1] = cells.dy.take(cells.winner[lst])
    mask = cells.winner != n
    return grid.reshape(4, ch, cw), mask.reshape(2, ch, cw), cells.unit


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """Integer division truncating toward zero (C semantics)."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


@dataclass(frozen=True, slots=True)
class MotionField:
    """A frame's motion field at the analysis pixel centres, kept as a vector table and an owner map.

    Every output pixel takes the vector of the 4x4 cell its centre falls in, so the field holds at most
    one value per exported vector: ``vx[i], vy[i]`` (``float32 [m]``, output pixels, ``src - dst``; entry
    ``m - 1`` is 0, "no vector") and ``owner[l, p]`` (``int64 [2, h * w]``) the entry of pixel ``p`` in
    list ``l`` (L0, L1). ``pixels[l, i]`` (``int64 [2, m]``) counts the pixels whose list-``l`` entry is
    ``i``, so an order statistic over the pixels is one over the table weighted by it
    (:func:`~.saliency.saliency_and_activity` takes the per-pixel median and P95 from the ~1400 entries
    instead of the ~35,000 pixels).

    ``has_l1``: some cell is covered by an L1 (future) vector; without, :meth:`weights` is ``None`` and a
    frame with both references is predicted from the past everywhere. In a sampled field
    (:func:`sample_motion`) list 1 is then "no vector" everywhere; a dense field without coverage
    (:meth:`from_flow` with ``weights=None``) keeps its L1 vectors, used when only a future reference
    exists and by ``mv_direction="both"``.
    """

    vx: np.ndarray
    vy: np.ndarray
    owner: np.ndarray
    pixels: np.ndarray
    hw: tuple[int, int]
    has_l1: bool

    @property
    def none(self) -> int:
        """The table entry of "no vector" (motion 0)."""
        return len(self.vx) - 1

    def flow(self) -> np.ndarray:
        """``float32 [4, h, w]``: L0 x, L0 y, L1 x, L1 y per pixel."""
        h, w = self.hw
        out = np.empty((4, h * w), dtype=np.float32)
        for lst in (0, 1):
            out[2 * lst] = self.vx.take(self.owner[lst])
            out[2 * lst + 1] = self.vy.take(self.owner[lst])
        return out.reshape(4, h, w)

    def weights(self) -> np.ndarray | None:
        """``float32 [2, h, w]`` L0/L1 coverage per pixel, or ``None`` without L1 vectors."""
        return self.covered().astype(np.float32) if self.has_l1 else None

    def covered(self) -> np.ndarray:
        """``bool [2, h, w]``: the pixel has an L0 / L1 vector."""
        return (self.owner != self.none).reshape(2, *self.hw)

    def offsets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per table entry ``(ix int64, fx float32, iy int64, fy float32)``: each vector component split
        into its floor and its fraction in ``[0, 1)`` (``v = i + f`` exactly), the form the bilinear warp of
        :func:`mc_residual` reads."""
        fl_x, fl_y = np.floor(self.vx), np.floor(self.vy)
        return fl_x.astype(np.int64), self.vx - fl_x, fl_y.astype(np.int64), self.vy - fl_y

    @classmethod
    def from_flow(
        cls, flow: np.ndarray | torch.Tensor, weights: np.ndarray | torch.Tensor | None = None
    ) -> MotionField:
        """A dense field (``[4, h, w]``, one table entry per pixel and list) as a :class:`MotionField`.

        ``weights`` (``[2, h, w]``, 0 or 1): L0/L1 coverage; uncovered pixels get "no vector" and
        ``has_l1`` is set. ``None``: no coverage information (``has_l1`` False, both lists kept).

        Raises:
            ValueError: ``flow`` is not ``[4, h, w]``, or ``weights`` is not a ``[2, h, w]`` 0/1 map.
        """
        f = np.asarray(flow, dtype=np.float32)
        if f.ndim != 3 or f.shape[0] != 4:
            raise ValueError(
                f"a dense motion field must be [4, h, w] (L0 x, L0 y, L1 x, L1 y), got {f.shape}"
            )
        _, h, w = f.shape
        n = h * w
        if weights is not None:
            wt = np.asarray(weights)
            if wt.shape != (2, h, w) or not np.isin(wt, (0, 1)).all():
                raise ValueError(f"weights must be a [2, {h}, {w}] map of 0/1 coverage, got shape {wt.shape}")
        vx = np.concatenate([f[0].reshape(-1), f[2].reshape(-1), np.zeros(1, np.float32)])
        vy = np.concatenate([f[1].reshape(-1), f[3].reshape(-1), np.zeros(1, np.float32)])
        owner = np.stack([np.arange(n), n + np.arange(n)]).astype(np.int64)
        if weights is not None:
            owner[wt.reshape(2, n) == 0] = 2 * n
        pixels = np.stack([np.bincount(o, minlength=2 * n + 1) for o in owner])
        return cls(vx, vy, owner, pixels, (h, w), weights is not None)


_SAMPLE_MAPS: dict[tuple[int, int, int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _sample_map(
    height: int, width: int, out_hw: tuple[int, int], cells: _CellVectors
) -> tuple[np.ndarray, np.ndarray]:
    """``(cell int64 [oh * ow]`` the cell each output pixel centre falls in, ``count int64 [ch * cw]``
    output pixels per cell), cached per size."""
    oh, ow = out_hw
    key = (height, width, oh, ow, cells.unit)
    hit = _SAMPLE_MAPS.get(key)
    if hit is None:
        if len(_SAMPLE_MAPS) > 8:
            _SAMPLE_MAPS.clear()
        cell = 4 * cells.unit
        ch, cw = cells.shape
        ys = np.minimum(((np.arange(oh) + 0.5) * height / oh // cell).astype(np.int64), ch - 1)
        xs = np.minimum(((np.arange(ow) + 0.5) * width / ow // cell).astype(np.int64), cw - 1)
        flat = (ys[:, None] * cw + xs[None, :]).reshape(-1)
        hit = _SAMPLE_MAPS[key] = (flat, np.bincount(flat, minlength=ch * cw))
    return hit


def sample_motion(
    mvs: np.ndarray | None, height: int, width: int, out_hw: tuple[int, int], *, kernels: str = "auto"
) -> MotionField:
    """The densified field (:func:`densify_motion_vectors`) sampled at the pixel centres of ``out_hw``.

    Each output pixel takes the vector of the 4x4 cell its centre falls in (nearest, so block motion stays
    piecewise constant), scaled to output pixels (``x * ow / width``, ``y * oh / height``). ``kernels``:
    ``CodecConfig.kernels`` (the cell fill by numba or numpy; same result).
    """
    oh, ow = out_hw
    if use_numba(kernels) and mvs is not None and len(mvs):
        cells = _CellVectors(*motion_cells(mvs, height, width))
        flat, cell_pixels = _sample_map(height, width, out_hw, cells)
        owner, pixels = owner_map(cells.winner, flat, cell_pixels, len(cells.dx), 2 if cells.has_l1 else 1)
    else:
        cells = _cell_vectors(mvs, height, width)
        flat, cell_pixels = _sample_map(height, width, out_hw, cells)
        m = len(cells.dx)
        lists = 2 if cells.has_l1 else 1
        owner = np.empty((2, oh * ow), dtype=np.int64)
        pixels = np.zeros((2, m), dtype=np.int64)
        for lst in range(lists):
            cells.winner[lst].take(flat, out=owner[lst])
            pixels[lst] = np.bincount(cells.winner[lst], weights=cell_pixels, minlength=m)
        if lists == 1:
            owner[1] = m - 1
            pixels[1, m - 1] = oh * ow
    vx = cells.dx.astype(np.float32)
    vx *= ow / width
    vy = cells.dy.astype(np.float32)
    vy *= oh / height
    return MotionField(vx, vy, owner, pixels, (oh, ow), cells.has_l1)


def motion_field(
    mvs: np.ndarray | None, height: int, width: int, out_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`sample_motion` as dense tensors.

    Returns:
        ``(flow float32 [4, h, w]`` = L0x, L0y, L1x, L1y in output pixels, ``weights float32 [2, h, w]``
        L0/L1 coverage, or ``None`` when the frame has no L1 vector: every cell is predicted from the past).
    """
    field = sample_motion(mvs, height, width, out_hw)
    weights = field.weights()
    return torch.from_numpy(field.flow()), None if weights is None else torch.from_numpy(weights)


_PIXEL_INDEX: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _pixel_index(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x int64 [h * w], y int64 [h * w])`` column and row of every pixel (row-major), cached."""
    hit = _PIXEL_INDEX.get((h, w))
    if hit is None:
        _PIXEL_INDEX.clear()
        ys, xs = np.divmod(np.arange(h * w, dtype=np.int64), w)
        hit = _PIXEL_INDEX[(h, w)] = (xs, ys)
    return hit


def warp_bilinear(
    ref: np.ndarray, field: MotionField, lst: int, offsets: tuple[np.ndarray, ...] | None = None
) -> np.ndarray:
    """``float32 [h, w]``: ``ref`` (``uint8 [h, w]``) sampled at ``pixel + v`` of list ``lst`` of ``field``,
    bilinear with border padding (``grid_sample(align_corners=False, padding_mode="border")`` in pixel
    coordinates, computed exactly).

    With ``v = (ix + fx, iy + fy)`` (:meth:`MotionField.offsets`) the four neighbours are the columns
    ``clamp(x + ix)``, ``clamp(x + ix + 1)`` and the rows ``clamp(y + iy)``, ``clamp(y + iy + 1)``
    (``clamp`` to the frame); in float32, ``top = a + (b - a) fx``, ``bottom = c + (d - c) fx``,
    ``pred = top + (bottom - top) fy``. Clamping each index reproduces border padding: a position left of
    the first column reads that column only.
    """
    h, w = field.hw
    ix, fx, iy, fy = field.offsets() if offsets is None else offsets
    own = field.owner[lst]
    xs, ys = _pixel_index(h, w)
    x0 = ix.take(own)
    x0 += xs
    x1 = x0 + 1
    y0 = iy.take(own)
    y0 += ys
    y1 = y0 + 1
    for a in (x0, x1):
        np.clip(a, 0, w - 1, out=a)
    for a in (y0, y1):
        np.clip(a, 0, h - 1, out=a)
    y0 *= w
    y1 *= w
    flat = ref.reshape(-1)
    a, b = flat.take(y0 + x0).astype(np.float32), flat.take(y0 + x1).astype(np.float32)
    c, d = flat.take(y1 + x0).astype(np.float32), flat.take(y1 + x1).astype(np.float32)
    fxp, fyp = fx.take(own), fy.take(own)
    b -= a
    b *= fxp
    a += b  # top
    d -= c
    d *= fxp
    c += d  # bottom
    c -= a
    c *= fyp
    a += c
    return a.reshape(h, w)


def mc_residual(
    cur: np.ndarray,
    past: np.ndarray | None,
    future: np.ndarray | None,
    flow: MotionField | torch.Tensor | np.ndarray | None = None,
    weights: torch.Tensor | np.ndarray | None = None,
    *,
    kernels: str = "auto",
) -> np.ndarray:
    """``uint8 [h, w]`` ``clip(rint(cur - pred) + 128, 0, 255)`` with ``pred`` the motion-compensated
    prediction (:func:`warp_bilinear`, float32).

    Args:
        cur: ``uint8 [h, w]`` luma of the frame.
        past / future: ``uint8 [h, w]`` luma of the L0 / L1 references (``None`` if absent).
        flow: the motion field (:class:`MotionField`, or dense ``float32 [4, h, w]`` ``src - dst`` with
            ``weights``), ``None``: zero motion from ``past``.
        weights: ``float32 [2, h, w]`` 0/1 L0/L1 coverage of a dense ``flow`` (``None``: all cells from the
            past when there is a past reference).
        kernels: ``CodecConfig.kernels`` (the numba kernel :func:`~.kernels.warp_residual` or numpy; same
            result).

    With both references and L1 vectors, a pixel covered by both lists takes the mean ``(p0 + p1) / 2`` of
    the two predictions, one covered by a single list that list's, and one covered by neither (an intra
    block) the past reference at zero motion. Without, every pixel comes from the past reference (L0
    field), or from the future one (L1 field) when there is no past reference.
    """
    if past is None and future is None:
        return np.full(cur.shape, 128, dtype=np.uint8)
    if flow is None:
        pred = (past if past is not None else future).astype(np.float32)
    else:
        field = flow if isinstance(flow, MotionField) else MotionField.from_flow(flow, weights)
        bi = past is not None and future is not None and field.has_l1
        mode = PRED_BI if bi else PRED_PAST if past is not None else PRED_FUTURE
        offsets = field.offsets()
        if use_numba(kernels):
            return warp_residual(cur, past, future, offsets, field.owner, field.none, mode)
        if mode == PRED_BI:
            p0, p1 = warp_bilinear(past, field, 0, offsets), warp_bilinear(future, field, 1, offsets)
            cov = field.covered()
            pred = np.where(cov[1], np.where(cov[0], (p0 + p1) / 2, p1), p0)
        elif mode == PRED_PAST:
            pred = warp_bilinear(past, field, 0, offsets)
        else:
            pred = warp_bilinear(future, field, 1, offsets)
    res = np.rint(cur.astype(np.float32) - pred)
    res += 128.0
    np.clip(res, 0.0, 255.0, out=res)
    return res.astype(np.uint8)


_PLANAR_YUV = {  # pixel format -> (chroma subsampling h, w, full range)
    "yuv420p": (2, 2, False),
    "yuvj420p": (2, 2, True),
    "yuv422p": (1, 2, False),
    "yuvj422p": (1, 2, True),
    "yuv444p": (1, 1, False),
    "yuvj444p": (1, 1, True),
}


def plane_u8(frame: av.VideoFrame, k: int) -> np.ndarray:
    """``uint8 [plane height, line size]`` view of plane ``k`` of an 8-bit planar frame (no copy; the
    columns past the plane's width are row padding)."""
    pl = frame.planes[k]
    return np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)


_THUMB_INDEX: dict[tuple[int, ...], list[np.ndarray]] = {}


#: BT.601 YCbCr -> RGB: R = Y + a Cr, G = Y - b Cb - c Cr, B = Y + d Cb
_BT601 = (1.402, 0.344136, 0.714136, 1.772)
#: limited-range expansion of luma and chroma
_LIMITED_Y, _LIMITED_C = 255.0 / 219.0, 255.0 / 224.0


def thumbnail_rgb(
    frame: av.VideoFrame, width: int, height: int, fallback: VideoReformatter, *, kernels: str = "auto"
) -> np.ndarray:
    """``uint8 [height, width, 3]`` point-sampled RGB thumbnail (BT.601), read from the planes directly.

    Pixel formats other than 8-bit planar YUV go through ``fallback`` (swscale). Per pixel, in float32:
    ``cb, cr = u - 128, v - 128``; limited range ``y = (y - 16) 255/219``, ``cb, cr *= 255/224``; then
    ``R = y + 1.402 cr``, ``G = y - 0.344136 cb - 0.714136 cr``, ``B = y + 1.772 cb``, each
    ``clip(x + 0.5, 0, 255)`` truncated. ``kernels``: numba (:func:`~.kernels.thumbnail`) or numpy, same
    result.
    """
    fmt = frame.format.name
    if fmt not in _PLANAR_YUV:
        return fallback.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()
    sub_h, sub_w, full = _PLANAR_YUV[fmt]
    full = full or frame.color_range == 2
    planes = frame.planes
    key = (frame.width, frame.height, width, height, sub_h, sub_w, *(pl.line_size for pl in planes[:3]))
    index = _THUMB_INDEX.get(key)
    if index is None:  # flat index of each sampled pixel in each plane's buffer, per frame geometry
        if len(_THUMB_INDEX) > 8:
            _THUMB_INDEX.clear()
        ys = (np.arange(height) * frame.height) // height
        xs = (np.arange(width) * frame.width) // width
        index = _THUMB_INDEX[key] = [
            (
                np.minimum(ys // dy, pl.height - 1)[:, None] * pl.line_size
                + np.minimum(xs // dx, pl.width - 1)
            ).reshape(-1)
            for pl, (dy, dx) in zip(planes[:3], ((1, 1), (sub_h, sub_w), (sub_h, sub_w)))
        ]
    bufs = [np.frombuffer(pl, np.uint8) for pl in planes[:3]]
    if use_numba(kernels):
        return thumbnail(bufs, index, (height, width), full, _BT601, (_LIMITED_Y, _LIMITED_C))
    y, u, v = (buf.take(idx).astype(np.float32).reshape(height, width) for buf, idx in zip(bufs, index))
    cb, cr = u - 128.0, v - 128.0
    if not full:
        y = (y - 16.0) * _LIMITED_Y
        cb, cr = cb * _LIMITED_C, cr * _LIMITED_C
    a, b, c, d = _BT601
    rgb = np.stack([y + a * cr, y - b * cb - c * cr, y + d * cb], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

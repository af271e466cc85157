"""Motion and residual math of the codec signals (stage 3), independent of decoding.

* :func:`densify_motion_vectors`: exported motion vectors on the 4x4-cell grid (the rule of
  ``docs/codec.md`` § "3. Signals");
* :func:`motion_field`: that grid sampled at the analysis pixel centres (``float32 [4, h, w]``);
* :func:`mc_residual`: the motion-compensated luma residual ``clip(128 + Y - pred)``;
* :func:`thumbnail_rgb`: a point-sampled RGB thumbnail read straight from the YUV planes.

Used by :mod:`.signals`; see ``docs/codec.md`` § "3. Signals (one decode pass)".
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter

__all__ = ["densify_motion_vectors", "mc_residual", "motion_field", "plane_u8", "thumbnail_rgb"]


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
    win on overlaps, as in the reader's C loop (:func:`densify_motion_vectors`).
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
    keep = (nx > 0) & (ny > 0)
    dx = np.zeros(n + 1, dtype=np.int32)
    dy = np.zeros(n + 1, dtype=np.int32)
    dx[:n] = mvs["src_x"].astype(np.int64) - dst_x
    dy[:n] = mvs["src_y"].astype(np.int64) - dst_y
    future = mvs["source"] > 0
    unit = 1
    all_kept = bool(np.all(keep))
    if all_kept:
        for u in (4, 2):
            if not np.any((x0 | y0 | nx | ny) & (u - 1)):
                unit = u
                break
    if unit > 1:
        x0, y0, nx, ny = x0 // unit, y0 // unit, nx // unit, ny // unit
    ch, cw = -(-gh // unit), -(-gw // unit)
    winner = np.full((2, ch * cw), n, dtype=np.int64)
    mx, my = int(nx.max()), int(ny.max())
    if mx <= 0 or my <= 0:
        return _CellVectors(winner, dx, dy, unit, (ch, cw), False)
    if all_kept and x0.min() >= 0 and y0.min() >= 0 and (x0 + nx).max() <= cw and (y0 + ny).max() <= ch:
        # every cell inside the grid (the usual case): no bounds filtering needed
        base = y0 * cw + x0
        if mx == 1 and my == 1:  # one cell per vector
            vec, flat = np.arange(n), base
        else:
            ly, lx = np.divmod(np.arange(mx * my), mx)
            cells = base[:, None] + (ly * cw + lx)[None, :]
            if nx.min() == mx and ny.min() == my:  # all vectors of one size
                vec, flat = np.repeat(np.arange(n), mx * my), cells.reshape(-1)
            else:
                valid = (ly[None, :] < ny[:, None]) & (lx[None, :] < nx[:, None])
                vec, flat = np.nonzero(valid)[0], cells[valid]
    else:
        # each vector's cells in row-major order (ly, lx), vectors in order: the order of the C loop
        ly, lx = np.divmod(np.arange(mx * my), mx)
        valid = (ly[None, :] < ny[:, None]) & (lx[None, :] < nx[:, None])
        vec = np.nonzero(valid)[0]
        cy = (y0[:, None] + ly[None, :])[valid]
        cx = (x0[:, None] + lx[None, :])[valid]
        inside = (cx >= 0) & (cx < cw) & (cy >= 0) & (cy < ch)
        vec, flat = vec[inside], (cy * cw + cx)[inside]
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


_SAMPLE_MAPS: dict[tuple[int, int, int, int, int], np.ndarray] = {}


def motion_field(
    mvs: np.ndarray | None, height: int, width: int, out_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The densified field (:func:`densify_motion_vectors`) sampled at the pixel centres of ``out_hw``.

    Each output pixel takes the vector of the 4x4 cell its centre falls in (nearest, so block motion stays
    piecewise constant), scaled to output pixels.

    Returns:
        ``(flow float32 [4, h, w]`` = L0x, L0y, L1x, L1y in output pixels, ``weights float32 [2, h, w]``
        L0/L1 coverage, or ``None`` when the frame has no L1 vector: every cell is predicted from the past).
    """
    oh, ow = out_hw
    cells = _cell_vectors(mvs, height, width)
    key = (height, width, oh, ow, cells.unit)
    flat = _SAMPLE_MAPS.get(key)
    if flat is None:
        if len(_SAMPLE_MAPS) > 8:
            _SAMPLE_MAPS.clear()
        cell = 4 * cells.unit
        ch, cw = cells.shape
        ys = np.minimum(((np.arange(oh) + 0.5) * height / oh // cell).astype(np.int64), ch - 1)
        xs = np.minimum(((np.arange(ow) + 0.5) * width / ow // cell).astype(np.int64), cw - 1)
        flat = _SAMPLE_MAPS[key] = (ys[:, None] * cw + xs[None, :]).reshape(-1)
    lists = 2 if cells.has_l1 else 1
    flow = np.empty((4, oh * ow), dtype=np.float32)
    owner = cells.winner[:lists].take(flat, axis=1)  # [lists, oh * ow] vector index per output pixel
    for lst in range(lists):
        flow[2 * lst] = cells.dx.take(owner[lst])
        flow[2 * lst + 1] = cells.dy.take(owner[lst])
    if lists == 1:
        flow[2:] = 0.0
    flow = flow.reshape(4, oh, ow)
    flow[0::2] *= ow / width
    flow[1::2] *= oh / height
    weights = None
    if cells.has_l1:
        weights = torch.from_numpy((owner != len(cells.dx) - 1).astype(np.float32).reshape(2, oh, ow))
    return torch.from_numpy(flow), weights


_BASE_GRIDS: dict[tuple[int, int], torch.Tensor] = {}


def _base_grid(h: int, w: int) -> torch.Tensor:
    """``float32 [h, w, 2]`` normalised (``align_corners=False``) coordinates of the pixel centres."""
    key = (h, w)
    if key not in _BASE_GRIDS:
        ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
        xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        _BASE_GRIDS.clear()
        _BASE_GRIDS[key] = torch.stack([gx, gy], dim=-1)
    return _BASE_GRIDS[key]


def _warp(refs: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
    """Sample ``refs [B,1,h,w]`` at ``pixel + flow`` (``flows [B,2,h,w]`` pixels), bilinear, border padding."""
    _, _, h, w = refs.shape
    scale = torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float32)
    grid = torch.addcmul(_base_grid(h, w), flows.permute(0, 2, 3, 1), scale)
    return F.grid_sample(refs, grid, mode="bilinear", padding_mode="border", align_corners=False)


def mc_residual(
    cur: np.ndarray,
    past: np.ndarray | None,
    future: np.ndarray | None,
    flow: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> np.ndarray:
    """``uint8 [h, w]`` ``clip(128 + cur - pred)`` with ``pred`` the motion-compensated prediction.

    Args:
        cur: ``uint8 [h, w]`` luma of the frame.
        past / future: ``uint8 [h, w]`` luma of the L0 / L1 references (``None`` if absent).
        flow: ``float32 [4, h, w]`` motion field (``src - dst``) or ``None`` (zero motion from ``past``).
        weights: ``float32 [2, h, w]`` L0/L1 coverage of ``flow``; cells covered by neither list are
            predicted from ``past`` with zero motion (intra blocks). ``None``: all cells from ``past``.
    """
    c = torch.from_numpy(cur).float()
    if past is None and future is None:
        return np.full(cur.shape, 128, dtype=np.uint8)
    if flow is None:
        pred = torch.from_numpy(past if past is not None else future).float()
    elif future is None or weights is None:  # every cell from the past reference (L0 field)
        ref = past if past is not None else future
        pred = _warp(
            torch.from_numpy(ref)[None, None].float(),
            flow[None, 0:2] if past is not None else flow[None, 2:4],
        )[0, 0]
    elif past is None:
        pred = _warp(torch.from_numpy(future)[None, None].float(), flow[None, 2:4])[0, 0]
    else:
        w0 = weights[0] + (1.0 - (weights[0] + weights[1]).clamp(0.0, 1.0))
        refs = torch.stack([torch.from_numpy(past), torch.from_numpy(future)])[:, None].float()
        preds = _warp(refs, torch.stack([flow[0:2], flow[2:4]]))[:, 0]
        pred = (preds[0] * w0 + preds[1] * weights[1]) / (w0 + weights[1]).clamp_min(1e-6)
    res = (c - pred).round_().add_(128.0).clamp_(0.0, 255.0)
    return res.to(torch.uint8).numpy()


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


def thumbnail_rgb(frame: av.VideoFrame, width: int, height: int, fallback: VideoReformatter) -> np.ndarray:
    """``uint8 [height, width, 3]`` point-sampled RGB thumbnail (BT.601), read from the planes directly.

    Pixel formats other than 8-bit planar YUV go through ``fallback`` (swscale).
    """
    fmt = frame.format.name
    if fmt not in _PLANAR_YUV:
        return fallback.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()
    sub_h, sub_w, full = _PLANAR_YUV[fmt]
    full = full or frame.color_range == 2
    ys = (np.arange(height) * frame.height) // height
    xs = (np.arange(width) * frame.width) // width
    planes = []
    for k, (dy, dx) in enumerate(((1, 1), (sub_h, sub_w), (sub_h, sub_w))):
        pl, arr = frame.planes[k], plane_u8(frame, k)
        planes.append(arr[np.minimum(ys // dy, pl.height - 1)][:, np.minimum(xs // dx, pl.width - 1)])
    y, u, v = (p.astype(np.float32) for p in planes)
    if full:
        cb, cr = u - 128.0, v - 128.0
    else:
        y = (y - 16.0) * (255.0 / 219.0)
        cb, cr = (u - 128.0) * (255.0 / 224.0), (v - 128.0) * (255.0 / 224.0)
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

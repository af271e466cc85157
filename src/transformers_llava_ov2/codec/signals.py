"""Stage 3: codec signals of the candidate frames, from ONE sequential decode pass.

Per candidate frame the pass produces (all at the *analysis* resolution ``(h, w)`` = canvas size divided
by ``analysis_downsample``, in the coded orientation):

* the luma plane (``uint8 [h, w]``, area-downscaled by swscale);
* the motion field from ``flags2=+export_mvs`` side data, densified on the 4x4 grid exactly like the
  official patched reader (:func:`densify_motion_vectors`) and resized to ``(h, w)`` with the vector
  components scaled (``float32 [4, h, w]``: L0 x, L0 y, L1 x, L1 y in analysis pixels, ``src - dst``);
* the motion-compensated luma residual ``clip(128 + Y - pred)`` (``uint8 [h, w]``), ``pred`` being the
  MV-warped past (L0) / future (L1) reference, bilinear ``grid_sample``; references are the nearest
  I/P frames (the stream carries no ``ref_idx``). Without motion vectors (HEVC, VP9, AV1, MJPEG, ...)
  the residual is the difference to the previous frame;
* the decoded ``av.VideoFrame`` itself (kept only while the caller needs RGB from it).

Only candidate frames and the references they need are converted; everything else is decoded and
dropped. Frames are yielded in display order; B-frames wait for their future reference.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter

from .bitstream import PICT_B, PICT_I
from .probe import StreamProbe

__all__ = [
    "DecodeReport",
    "FrameSignals",
    "densify_motion_vectors",
    "iter_frame_signals",
    "mc_residual",
    "motion_field",
    "plan_references",
    "thumbnail_rgb",
]

_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, MemoryError)
_MAX_DECODE_ERRORS = 64
_SKIP_NONREF_CODECS = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video"})


@dataclass
class FrameSignals:
    """Signals of one candidate frame (analysis resolution, coded orientation).

    Attributes:
        index: display-order frame index.
        time: seconds since the first frame.
        pict_type: 1 I / 2 P / 3 B.
        bits: exact compressed size of the frame in bits (``8 * packet size``).
        luma: ``uint8 [h, w]``.
        residual: ``uint8 [h, w]`` ``clip(128 + residual)``.
        flow: ``float32 [4, h, w]`` motion field or ``None`` when the frame carries no vectors.
        frame: the decoded frame (for RGB conversion of contributing frames); ``None`` when
            :func:`iter_frame_signals` was given ``convert_rgb`` (then ``rgb`` holds its result).
        thumb_rgb: ``uint8 [th, tw, 3]`` small RGB thumbnail (bad-frame test).
        rgb: ``convert_rgb(frame)`` or ``None``.
    """

    index: int
    time: float
    pict_type: int
    bits: int
    luma: np.ndarray
    residual: np.ndarray
    flow: np.ndarray | None
    frame: Any
    thumb_rgb: np.ndarray
    rgb: np.ndarray | None = None


@dataclass
class DecodeReport:
    """What the decode pass met: frames decoded, errors, whether vectors were seen."""

    frames_decoded: int = 0
    last_index: int = -1
    errors: list[str] = field(default_factory=list)
    stopped_early: bool = False
    frames_with_mvs: int = 0
    frames_skipped: int = 0
    candidates_emitted: int = 0
    convert_seconds: float = 0.0  # consumer: signals of candidates (motion field, thumbnail, residual)
    wait_seconds: float = 0.0  # consumer: waiting for decoded frames
    decode_seconds: float = 0.0  # decode thread: demux, decode, vector extraction (overlapped)
    ledger_wait_seconds: float = 0.0  # decode loop: waiting for the consumer to finish with frames


# ---------------------------------------------------------------------------------------------- MVs
def densify_motion_vectors(mvs: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Motion vectors on the official 4x4-cell grid.

    Each exported vector fills cells ``dst/4 + [-w/8, w/8) x [-h/8, h/8)`` with ``src - dst`` (integer
    pixels, i.e. ``trunc(motion / motion_scale)``); ``source < 0`` (past) goes to L0, ``source > 0``
    (future) to L1; later vectors overwrite earlier ones like the reference C loop.

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
    win on overlaps, like the reference C loop.
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


# ---------------------------------------------------------------------------------------------- planning
def plan_references(probe: StreamProbe, candidates: np.ndarray, use_mvs: bool) -> dict[int, tuple[int, int]]:
    """``{candidate: (past_ref, future_ref)}`` (``-1`` = none).

    With motion vectors: the nearest earlier I/P frame, and for B frames the nearest later I/P frame.
    Without: the previous frame.
    """
    out: dict[int, tuple[int, int]] = {}
    if not use_mvs:
        for c in candidates.tolist():
            out[c] = (c - 1, -1)
        return out
    refs = np.flatnonzero(probe.reference_frames())
    for c in candidates.tolist():
        i = int(np.searchsorted(refs, c))
        past = int(refs[i - 1]) if i > 0 else -1
        future = -1
        if probe.pict_type[c] == PICT_B:
            j = int(np.searchsorted(refs, c, side="right"))
            future = int(refs[j]) if j < len(refs) else -1
        out[c] = (past, future)
    return out


def _motion_vectors(frame: av.VideoFrame) -> Any:
    """The frame's ``MOTION_VECTORS`` side data (or ``None``).

    ``frame.side_data`` caches a container that points back at the frame: a reference cycle that keeps
    every decoded frame alive until a full garbage collection (PyAV 18). A free-standing container
    avoids the cycle.
    """
    try:
        from av.sidedata.sidedata import SideDataContainer

        return SideDataContainer(frame).get("MOTION_VECTORS")
    except (ImportError, TypeError):  # pragma: no cover - other PyAV versions
        return frame.side_data.get("MOTION_VECTORS")


_PLANAR_YUV = {  # pixel format -> (chroma subsampling h, w, full range)
    "yuv420p": (2, 2, False),
    "yuvj420p": (2, 2, True),
    "yuv422p": (1, 2, False),
    "yuvj422p": (1, 2, True),
    "yuv444p": (1, 1, False),
    "yuvj444p": (1, 1, True),
}


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
        pl = frame.planes[k]
        arr = np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)
        planes.append(arr[np.minimum(ys // dy, pl.height - 1)][:, np.minimum(xs // dx, pl.width - 1)])
    y, u, v = (p.astype(np.float32) for p in planes)
    if full:
        cb, cr = u - 128.0, v - 128.0
    else:
        y = (y - 16.0) * (255.0 / 219.0)
        cb, cr = (u - 128.0) * (255.0 / 224.0), (v - 128.0) * (255.0 / 224.0)
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- decode
@dataclass(slots=True)
class _Decoded:
    """One decoded frame as the decode loop hands it over (display order of the decoder output).

    ``frame`` is set only for frames whose luma is needed (candidates and their references), ``mvs``
    (the exported motion vectors) only for candidates; ``luma`` is filled in by the consumer.
    """

    index: int
    last_index: int
    luma: np.ndarray | None = None
    mvs: np.ndarray | None = None
    frame: Any = None


class _Ledger:
    """Hand-over receipts: the consumer acknowledges each handed-over frame once it holds no reference.

    Why: on damaged streams FFmpeg's error concealment can read pixels of recycled frame buffers, so
    the decoded pictures depend on *when* earlier frames were released back to the decoder's pool.
    The decode loop therefore releases every handed-over frame at a fixed point of its own schedule
    (``_RELEASE_LAG`` decode calls after the frame came out), waiting for the receipt if the consumer
    is behind: the release order is the same whether the loop runs in a thread or inline.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._acked = 0
        self._closed = False

    def ack(self) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def acked(self, seq: int) -> bool:
        return self._acked > seq

    def close(self) -> None:
        """The consumer is gone: stop waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait(self, seq: int) -> bool:
        """Block until frame ``seq`` (0-based hand-over order) is acknowledged; False if closed."""
        with self._cond:
            while self._acked <= seq:
                if self._closed:
                    return False
                self._cond.wait(0.1)
            return True


# Decode calls between a frame's hand-over and its release back to the decoder (see _Ledger): bounds
# how far the decode loop runs ahead of the consumer in frames it has handed over.
_RELEASE_LAG = 16
# Batches of decoded frames waiting for the consumer. A batch holds at most one frame with data (it is
# handed over as soon as one arrives), so this bounds the decoded frames in flight.
_QUEUE_BATCHES = 8
_BATCH_FRAMES = 64


def _decode_batches(
    path: str | os.PathLike,
    probe: StreamProbe,
    cand_set: set[int],
    need_luma: set[int],
    last_needed: int,
    *,
    use_mvs: bool,
    report: DecodeReport,
    thread_type: str,
    index_by_order: bool,
    ledger: _Ledger,
) -> Iterator[list[_Decoded]]:
    """Demux and decode ``path`` once; yield the decoded frames in batches (decoder output order).

    Hands over the frames whose luma is needed (candidates and references) with the motion vectors of
    candidates; the rest only advance the frame counter. Handed-over frames are released on a fixed
    schedule once ``ledger`` has their receipt. Decode errors are recorded in ``report``.
    Fills ``report``'s ``frames_decoded``, ``last_index``, ``frames_skipped``, ``errors`` and
    ``stopped_early``; the consumer owns the other fields.
    """
    # non-reference pictures nobody needs are not decoded at all (skip_frame=NONREF for their packet)
    skippable = probe.codec_name in _SKIP_NONREF_CODECS and not index_by_order
    frame_index = probe.frame_index
    # the frames whose packets are not decoded: non-reference pictures nobody needs
    skip_frames = set(np.flatnonzero(~probe.reference).tolist()) - need_luma if skippable else set()
    report.frames_skipped = 0
    try:
        container = av.open(os.fspath(path))
    except _AV_ERRORS as exc:  # the probe opened it; this is a race or a vanished file
        report.errors.append(f"open: {exc}")
        return
    batch: list[_Decoded] = []
    order_counter = -1
    step = 0  # decode calls so far
    handed = 0  # frames handed over so far
    held: deque[tuple[int, int, av.VideoFrame]] = deque()  # (release before step, hand-over seq, frame)

    def release_due() -> bool:
        """Release the handed-over frames due before decode call ``step``; False if the consumer left."""
        while held and held[0][0] <= step:
            if not ledger.acked(held[0][1]):  # the consumer is behind: wait for it
                t0 = time.perf_counter()
                ok = ledger.wait(held[0][1])
                report.ledger_wait_seconds += time.perf_counter() - t0
                if not ok:
                    return False
            held.popleft()
        return True

    def handle(frame: av.VideoFrame) -> bool:
        """Append the frame's event; True when it carries data (flush the batch)."""
        nonlocal order_counter
        order_counter += 1
        idx = None if index_by_order else frame_index(frame.pts)
        if idx is None:
            idx = order_counter if index_by_order else report.last_index + 1
        report.frames_decoded += 1
        report.last_index = max(report.last_index, idx)
        ev = _Decoded(idx, report.last_index)
        batch.append(ev)
        if idx not in need_luma:
            return len(batch) >= _BATCH_FRAMES
        nonlocal handed
        ev.frame = frame
        held.append((step + _RELEASE_LAG, handed, frame))
        handed += 1
        if idx in cand_set and use_mvs:
            sd = _motion_vectors(frame)
            if sd is not None:
                ev.mvs = sd.to_ndarray()
        return True

    with container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        if use_mvs:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        errors = 0
        ctx = stream.codec_context
        skipping = False
        try:
            for packet in container.demux(stream):
                if skippable and packet.size:
                    skip = frame_index(packet.pts) in skip_frames
                    if skip != skipping:
                        ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                        skipping = skip
                    report.frames_skipped += int(skip)
                if not release_due():
                    return
                try:
                    step += 1
                    frames = packet.decode()
                except _AV_ERRORS as exc:
                    errors += 1
                    report.errors.append(f"decode: {exc}")
                    if errors > _MAX_DECODE_ERRORS:
                        report.stopped_early = True
                        break
                    continue
                for frame in frames:
                    if handle(frame):
                        yield batch
                        batch = []
                # every needed frame has been decoded: the consumer can finish all its candidates
                if report.last_index >= last_needed:
                    report.stopped_early = True
                    break
        except _AV_ERRORS as exc:
            report.errors.append(f"demux: {exc}")
        if not report.stopped_early:
            if not release_due():
                return
            try:
                step += 1
                for frame in stream.codec_context.decode(None):
                    if handle(frame):
                        yield batch
                        batch = []
            except _AV_ERRORS as exc:
                report.errors.append(f"flush: {exc}")
    if batch:
        yield batch


class _DecodeThread:
    """Runs a batch iterator in a daemon thread, feeding a bounded queue (decode overlaps the consumer).

    The iterator is created, advanced and closed in the worker thread only. An exception raised there is
    re-raised in the consumer; closing the consumer early (or an exception in it) stops the worker at its
    next batch and joins it, so the thread never outlives the consumer's ``finally``.
    """

    def __init__(
        self, batches: Iterator[list[_Decoded]], report: DecodeReport, maxsize: int = _QUEUE_BATCHES
    ):
        self._batches = batches
        self._report = report
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="codec-decode", daemon=True)

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        busy = 0.0
        try:
            t0 = time.perf_counter()
            for batch in self._batches:
                busy += time.perf_counter() - t0
                if not self._put(("batch", batch)):
                    break
                t0 = time.perf_counter()
            else:
                busy += time.perf_counter() - t0
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(("error", exc))
        finally:
            with contextlib.suppress(Exception):  # closes the container (in this thread)
                self._batches.close()  # type: ignore[attr-defined]
            self._report.decode_seconds = busy - self._report.ledger_wait_seconds
            self._put(("done", None))

    def __iter__(self) -> Iterator[list[_Decoded]]:
        self._thread.start()
        try:
            while True:
                kind, value = self._queue.get()
                if kind == "batch":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            self._stop.set()
            while self._thread.is_alive():
                try:  # drop what is queued so that a blocked put returns at once
                    while True:
                        self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(0.05)


def iter_frame_signals(
    path: str | os.PathLike,
    probe: StreamProbe,
    candidates: np.ndarray,
    analysis_hw: tuple[int, int],
    *,
    use_mvs: bool,
    report: DecodeReport,
    thread_type: str = "SLICE",
    index_by_order: bool = False,
    thumb_width: int = 64,
    decode_thread: bool = True,
    convert_rgb: Callable[[av.VideoFrame], np.ndarray] | None = None,
) -> Iterator[FrameSignals]:
    """Decode ``path`` once and yield :class:`FrameSignals` for every candidate, in display order.

    Args:
        path: the video file (already validated by the probe).
        probe: its packet table (frame indices and picture types).
        candidates: sorted candidate frame indices.
        analysis_hw: ``(h, w)`` analysis size in the **coded** orientation.
        use_mvs: request motion vectors (``flags2=+export_mvs``) and use I/P references.
        report: filled in while decoding (errors, counts).
        thread_type: decoder threading (``"SLICE"``: deterministic motion vectors, see ``CodecConfig``).
        index_by_order: number frames by output order instead of pts (re-encoded streams).
        thumb_width: width of the RGB thumbnail used by the bad-frame test.
        decode_thread: demux and decode in a background thread (bounded look-ahead) while this generator
            and its consumer compute signals; ``False`` runs everything in the calling thread. The
            results are the same.
        convert_rgb: applied to every candidate's decoded frame on arrival (``FrameSignals.rgb``); the
            frame itself is then not kept (``FrameSignals.frame`` is ``None``). Without it the frame is
            handed to the caller; on damaged streams the decoded pixels can then depend on how long the
            caller keeps frames (see ``_Ledger``).

    Decoding errors are recorded in ``report`` and decoding goes on with the next packet; candidates that
    never arrive are skipped.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    if len(cand) == 0:
        return
    refs = plan_references(probe, cand, use_mvs)
    cand_set = set(cand.tolist())
    needed_by: dict[int, int] = {}
    for past, future in refs.values():
        for r in (past, future):
            if r >= 0:
                needed_by[r] = needed_by.get(r, 0) + 1
    need_luma = cand_set | set(needed_by)
    last_needed = max(need_luma)
    ah, aw = analysis_hw
    th = max(2, round(thumb_width * ah / max(aw, 1)))
    thumb_fmt = VideoReformatter()
    luma_fmt = VideoReformatter()
    lumas: dict[int, np.ndarray] = {}
    pending: deque[dict] = deque()  # candidates in display order waiting for data
    cand_set_open = set(cand_set)
    last_index = -1

    def release(r: int) -> None:
        if r < 0:
            return
        left = needed_by.get(r, 0) - 1
        needed_by[r] = left
        if left <= 0 and r not in cand_set_open:
            lumas.pop(r, None)

    def finish(item: dict, future_ok: bool) -> FrameSignals:
        idx = item["index"]
        past, future = refs[idx]
        past_luma = lumas.get(past) if past >= 0 else None
        future_luma = lumas.get(future) if future >= 0 and future_ok else None
        flow, weights = item["flow"], item["weights"]
        residual = mc_residual(item["luma"], past_luma, future_luma, flow, weights)
        release(past)
        release(future)
        cand_set_open.discard(idx)
        if needed_by.get(idx, 0) <= 0:
            lumas.pop(idx, None)
        return FrameSignals(
            index=idx,
            time=float(probe.times[idx]) if idx < probe.total_frames else float(idx / probe.fps),
            pict_type=int(item["pict"]),
            bits=int(8 * probe.sizes[idx]) if idx < probe.total_frames else 0,
            luma=item["luma"],
            residual=residual,
            flow=None if flow is None else flow.numpy(),
            frame=item["frame"],
            thumb_rgb=item["thumb"],
            rgb=item["rgb"],
        )

    def ready(item: dict) -> bool:
        _, future = refs[item["index"]]
        return future < 0 or future in lumas or future <= last_index

    def arrive(ev: _Decoded) -> None:
        idx, frame = ev.index, ev.frame
        luma = luma_fmt.reformat(frame, width=aw, height=ah, format="gray", interpolation="AREA", threads=1)
        ev.luma, ev.frame = luma.to_ndarray(), None
        if idx in needed_by:
            lumas[idx] = ev.luma
        if idx not in cand_set:
            return
        flow = weights = None
        if ev.mvs is not None and len(ev.mvs):
            report.frames_with_mvs += 1
            flow, weights = motion_field(ev.mvs, frame.height, frame.width, (ah, aw))
        thumb = thumbnail_rgb(frame, thumb_width, th, thumb_fmt)
        rgb = None if convert_rgb is None else convert_rgb(frame)
        pict = probe.pict_type[idx] if idx < probe.total_frames else PICT_I
        pending.append(
            {
                "index": idx,
                "luma": ev.luma,
                "flow": flow,
                "weights": weights,
                "frame": frame if convert_rgb is None else None,
                "thumb": thumb,
                "pict": pict,
                "rgb": rgb,
            }
        )

    ledger = _Ledger()
    batches = _decode_batches(
        path,
        probe,
        cand_set,
        need_luma,
        last_needed,
        use_mvs=use_mvs,
        report=report,
        thread_type=thread_type,
        index_by_order=index_by_order,
        ledger=ledger,
    )
    source: Iterator[list[_Decoded]]
    if decode_thread:
        source = iter(_DecodeThread(batches, report))
    else:
        source = batches
    try:
        t_wait = time.perf_counter()
        for batch in source:
            t0 = time.perf_counter()
            report.wait_seconds += t0 - t_wait
            for ev in batch:
                last_index = ev.last_index
                if ev.frame is not None:
                    arrive(ev)  # drops every reference to the frame (unless it goes to the caller)
                    ledger.ack()
                while pending and ready(pending[0]):
                    sig = finish(pending.popleft(), True)
                    report.candidates_emitted += 1
                    report.convert_seconds += time.perf_counter() - t0
                    yield sig
                    t0 = time.perf_counter()
            report.convert_seconds += time.perf_counter() - t0
            t_wait = time.perf_counter()
    finally:
        ledger.close()
        source.close()  # type: ignore[attr-defined]
    # whatever still waits for a future reference that never came: past reference only
    while pending:
        sig = finish(pending.popleft(), False)
        report.candidates_emitted += 1
        yield sig

"""Stage 3: codec signals of the candidate frames, from ONE sequential decode pass.

Every frame whose luma is needed is area-scaled ONCE by swscale to the *working* size (the canvas size in
the coded orientation; :func:`scale_to_work`), full-range planar YUV. From that one scaled frame come the
luma, the thumbnail and the canvas RGB (a no-scale conversion, swscale's fast path), so no frame is
filtered at full resolution twice. Per candidate frame the pass produces (all at the *analysis*
resolution ``(h, w)`` = working size divided by ``analysis_downsample``, in the coded orientation):

* the luma plane (``uint8 [h, w]``): the rounded mean of each ``ds x ds`` block of the scaled Y plane
  (:func:`block_mean_u8`);
* the motion field from ``flags2=+export_mvs`` side data, densified on the 4x4-cell grid
  (:func:`densify_motion_vectors`) and resized to ``(h, w)`` with the vector components scaled
  (``float32 [4, h, w]``: L0 x, L0 y, L1 x, L1 y in analysis pixels, ``src - dst``);
* the motion-compensated luma residual ``clip(128 + Y - pred)`` (``uint8 [h, w]``), ``pred`` being the
  MV-warped past (L0) / future (L1) reference (exact bilinear, :func:`~.motion.warp_bilinear`); references are the nearest
  I/P frames (the stream carries no ``ref_idx``). Without motion vectors (HEVC, VP9, AV1, MJPEG, ...)
  the residual is the difference to the previous frame;
* the scaled ``av.VideoFrame`` (kept only when the caller converts nothing itself).

Only candidate frames and the references they need are converted; everything else is decoded and
dropped. Frames are yielded in display order; B-frames wait for their future reference.

This module is the orchestration (:func:`iter_frame_signals`, :func:`plan_references`); the motion and
residual math is in :mod:`.motion`, the decode pass (thread, bounded queue, release ledger, report) in
:mod:`.decode`. See ``docs/codec.md`` § "3. Signals (one decode pass)".
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, VideoReformatter

from .bitstream import PICT_B, PICT_I
from .chunks import DecodeChunk, plan_chunks
from .decode import (
    Backlog,
    DecodedFrame,
    DecodeReport,
    DecodeThread,
    ReleaseLedger,
    decode_batches,
    motion_vectors,
)
from .decode_pool import ChunkPool, decode_chunks
from .kernels import block_mean2, use_numba
from .motion import (
    MotionField,
    densify_motion_vectors,
    mc_residual,
    motion_field,
    plane_u8,
    sample_motion,
    thumbnail_rgb,
    warp_bilinear,
)
from .probe import StreamProbe

__all__ = [
    "DecodeReport",
    "FrameSignals",
    "MotionField",
    "block_mean_u8",
    "densify_motion_vectors",
    "iter_frame_signals",
    "mc_residual",
    "motion_field",
    "plan_references",
    "plane_u8",
    "sample_motion",
    "scale_to_work",
    "thumbnail_rgb",
    "warp_bilinear",
]


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
        motion: the motion field (:class:`~.motion.MotionField`, vector table and owner map) or ``None``
            when the frame carries no vectors; :attr:`flow` is its dense form.
        frame: the frame scaled to the working size (:func:`scale_to_work`); ``None`` when
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
    motion: MotionField | None
    frame: Any
    thumb_rgb: np.ndarray
    rgb: np.ndarray | None = None

    @property
    def flow(self) -> np.ndarray | None:
        """``float32 [4, h, w]`` dense motion field (L0 x, L0 y, L1 x, L1 y) or ``None`` (built on each
        access from :attr:`motion`)."""
        return None if self.motion is None else self.motion.flow()


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


@dataclass(slots=True)
class _Converted:
    """What :class:`_FrameConverter` makes of a candidate frame (besides its luma)."""

    motion: MotionField | None
    thumb: np.ndarray
    rgb: np.ndarray | None
    frame: Any  # the decoded frame, kept only without ``convert_rgb`` (for the caller)
    has_mvs: bool


@dataclass(slots=True)
class _Arrived:
    """A candidate whose frame has arrived, waiting (display order) for its future reference."""

    index: int
    luma: np.ndarray
    data: _Converted
    pict: int


def _work_format(frame: av.VideoFrame) -> str:
    """``"yuv420p"`` for 4:2:0 sources of any bit depth (the usual case; swscale's fast RGB path),
    ``"yuv444p"`` for every other source (4:2:2, 4:4:4, RGB, grey, palettes), which keeps its chroma."""
    fmt = frame.format
    comps = fmt.components
    subsampled = len(comps) >= 3 and comps[1].width < frame.width and comps[1].height < frame.height
    return "yuv420p" if subsampled and not fmt.is_rgb else "yuv444p"


def scale_to_work(scaler: VideoReformatter, frame: av.VideoFrame, work_hw: tuple[int, int]) -> av.VideoFrame:
    """``frame`` area-scaled to ``work_hw = (h, w)``, full-range 8-bit planar YUV (``yuv420p`` for 4:2:0
    sources, else ``yuv444p``; :func:`_work_format`).

    The frame's own range is honoured (limited-range black becomes 0); the result is full range, so its
    Y plane has the meaning of swscale's ``gray`` conversion (the bad-frame thresholds). One swscale
    thread: the output does not depend on it and the other core decodes.
    """
    h, w = work_hw
    src_range = frame.color_range if frame.color_range in (ColorRange.MPEG, ColorRange.JPEG) else None
    return scaler.reformat(
        frame,
        width=w,
        height=h,
        format=_work_format(frame),
        interpolation="AREA",
        src_color_range=src_range,
        dst_color_range=ColorRange.JPEG,
        threads=1,
    )


def block_mean_u8(
    plane: np.ndarray, ds: int, kernels: str = "auto", *, width: int | None = None
) -> np.ndarray:
    """``uint8 [H/ds, W/ds]`` rounded mean ``(sum + ds^2 // 2) // ds^2`` of each ``ds x ds`` block of
    ``plane[:, :W]`` (``uint8 [H, S]``; ``W = width``, all columns when ``None``; ``H`` and ``W``
    multiples of ``ds``); ``ds = 1`` returns a copy. ``ds = 2`` (the default analysis size) runs the
    numba kernel :func:`~.kernels.block_mean2` when ``kernels`` allows it (same result); it is fastest on
    the padded plane itself (``plane_u8(frame, 0)`` with ``width=frame.width``: contiguous rows)."""
    w = plane.shape[1] if width is None else width
    if ds == 2 and use_numba(kernels):
        return block_mean2(plane if plane.flags.c_contiguous else np.ascontiguousarray(plane[:, :w]), w)
    plane = plane[:, :w]
    if ds == 1:
        return np.array(plane, dtype=np.uint8, copy=True)
    # ds <= 16: 256 * 255 + 128 < 2 ** 16; rows first (contiguous), then the columns of the row sums
    rows = plane[0::ds].astype(np.uint16 if ds <= 16 else np.uint32)
    for dy in range(1, ds):
        rows += plane[dy::ds]
    acc = rows[:, 0::ds].copy()
    for dx in range(1, ds):
        acc += rows[:, dx::ds]
    acc += (ds * ds) // 2
    acc //= ds * ds
    return acc.astype(np.uint8)


class _FrameConverter:
    """Frame -> working-size copy (:func:`scale_to_work`) -> luma (every handed-over frame) and motion
    field, thumbnail, RGB (candidates).

    Pure per frame: it reads only immutable sizes and per-thread swscale contexts, so it runs in the
    decode thread (``decode_batches(convert=...)``, while the consumer is behind) or in the consumer; the
    results are the same. ``convert_rgb`` must be safe to call from both threads.
    """

    def __init__(
        self,
        cand_set: set[int],
        analysis_hw: tuple[int, int],
        work_hw: tuple[int, int],
        thumb_width: int,
        convert_rgb: Callable[[av.VideoFrame], np.ndarray] | None,
        kernels: str,
        *,
        use_mvs: bool,
    ):
        self.cand_set = cand_set
        self.use_mvs = use_mvs
        self.kernels = kernels
        self.ah, self.aw = analysis_hw
        self.work_hw = work_hw
        self.ds = work_hw[0] // self.ah
        self.thumb_width = thumb_width
        self.th = max(2, round(thumb_width * self.ah / max(self.aw, 1)))
        self.convert_rgb = convert_rgb
        self._local = threading.local()  # swscale contexts are per thread (not safe to share)

    def _formatters(self) -> tuple[VideoReformatter, VideoReformatter]:
        local = self._local
        if not hasattr(local, "scale"):
            local.scale, local.thumb = VideoReformatter(), VideoReformatter()
        return local.scale, local.thumb

    def __call__(self, ev: DecodedFrame, frame: av.VideoFrame) -> None:
        scaler, thumb_fmt = self._formatters()
        small = scale_to_work(scaler, frame, self.work_hw)
        ev.luma = block_mean_u8(plane_u8(small, 0), self.ds, self.kernels, width=small.width)
        if ev.index not in self.cand_set:
            return
        motion = None
        sd = motion_vectors(frame) if self.use_mvs else None
        mvs = sd.to_ndarray() if sd is not None else None
        has_mvs = mvs is not None and len(mvs) > 0
        if has_mvs:
            motion = sample_motion(mvs, frame.height, frame.width, (self.ah, self.aw), kernels=self.kernels)
        thumb = thumbnail_rgb(small, self.thumb_width, self.th, thumb_fmt, kernels=self.kernels)
        rgb = None if self.convert_rgb is None else self.convert_rgb(small)
        kept = small if self.convert_rgb is None else None
        ev.data = _Converted(motion, thumb, rgb, kept, has_mvs)


class _SignalAssembler:
    """The consumer side of the decode pass: lumas of references, candidates waiting, their signals.

    ``needed_by[r]`` counts the candidates that still need reference ``r``; a luma is dropped as soon as
    nobody needs it any more.
    """

    def __init__(
        self,
        probe: StreamProbe,
        cand: np.ndarray,
        analysis_hw: tuple[int, int],
        work_hw: tuple[int, int],
        *,
        use_mvs: bool,
        report: DecodeReport,
        thumb_width: int,
        convert_rgb: Callable[[av.VideoFrame], np.ndarray] | None,
        kernels: str = "auto",
    ):
        self.probe = probe
        self.kernels = kernels
        self.report = report
        self.refs = plan_references(probe, cand, use_mvs)
        self.cand_set = set(cand.tolist())
        self.needed_by: dict[int, int] = {}
        for past, future in self.refs.values():
            for r in (past, future):
                if r >= 0:
                    self.needed_by[r] = self.needed_by.get(r, 0) + 1
        self.need_luma = self.cand_set | set(self.needed_by)
        self.last_needed = max(self.need_luma)
        self.converter = _FrameConverter(
            self.cand_set, analysis_hw, work_hw, thumb_width, convert_rgb, kernels, use_mvs=use_mvs
        )
        self.lumas: dict[int, np.ndarray] = {}
        self.pending: deque[_Arrived] = deque()  # candidates in display order waiting for data
        self.cand_set_open = set(self.cand_set)
        self.last_index = -1

    def release(self, r: int) -> None:
        """One candidate less needs reference ``r``."""
        if r < 0:
            return
        left = self.needed_by.get(r, 0) - 1
        self.needed_by[r] = left
        if left <= 0 and r not in self.cand_set_open:
            self.lumas.pop(r, None)

    def ready(self, item: _Arrived) -> bool:
        """The candidate's future reference has arrived (or never will)."""
        _, future = self.refs[item.index]
        return future < 0 or future in self.lumas or future <= self.last_index

    def arrive(self, ev: DecodedFrame) -> None:
        """Take the luma (and, for candidates, the converted data) of a handed-over frame."""
        idx = ev.index
        if ev.luma is None:  # not converted by the decode loop: convert here, then drop the frame
            self.converter(ev, ev.frame)
        ev.frame = None
        assert ev.luma is not None
        if idx in self.needed_by:
            self.lumas[idx] = ev.luma
        if idx not in self.cand_set:
            return
        data: _Converted = ev.data
        if data.has_mvs:
            self.report.frames_with_mvs += 1
        probe = self.probe
        pict = probe.pict_type[idx] if idx < probe.total_frames else PICT_I
        self.pending.append(_Arrived(idx, ev.luma, data, pict))

    def finish(self, item: _Arrived, future_ok: bool) -> FrameSignals:
        """The candidate's signals (residual against its references); releases what it held."""
        idx, probe, lumas = item.index, self.probe, self.lumas
        past, future = self.refs[idx]
        past_luma = lumas.get(past) if past >= 0 else None
        future_luma = lumas.get(future) if future >= 0 and future_ok else None
        data = item.data
        residual = mc_residual(item.luma, past_luma, future_luma, data.motion, kernels=self.kernels)
        self.release(past)
        self.release(future)
        self.cand_set_open.discard(idx)
        if self.needed_by.get(idx, 0) <= 0:
            lumas.pop(idx, None)
        self.report.candidates_emitted += 1
        return FrameSignals(
            index=idx,
            time=float(probe.times[idx]) if idx < probe.total_frames else float(idx / probe.fps),
            pict_type=int(item.pict),
            bits=int(8 * probe.sizes[idx]) if idx < probe.total_frames else 0,
            luma=item.luma,
            residual=residual,
            motion=data.motion,
            frame=data.frame,
            thumb_rgb=data.thumb,
            rgb=data.rgb,
        )


def _work_size(analysis_hw: tuple[int, int], work_hw: tuple[int, int] | None) -> tuple[int, int]:
    """``work_hw`` (default ``analysis_hw``), checked to be ``analysis_hw`` times one integer >= 1."""
    ah, aw = (int(x) for x in analysis_hw)
    wh, ww = (ah, aw) if work_hw is None else (int(work_hw[0]), int(work_hw[1]))
    ds = wh // max(ah, 1)
    if min(ah, aw) < 1 or ds < 1 or (wh, ww) != (ds * ah, ds * aw):
        raise ValueError(
            f"work_hw={(wh, ww)} must be the analysis size {(ah, aw)} times one integer on both axes"
        )
    return wh, ww


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
    work_hw: tuple[int, int] | None = None,
    kernels: str = "auto",
    decode_workers: int = 1,
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
        convert_rgb: applied to every candidate's working-size frame (:func:`scale_to_work`) on arrival
            (``FrameSignals.rgb``; ``FrameSignals.frame`` is then ``None``). With ``decode_thread`` it may
            run in either thread, so it must be thread-safe (e.g. one swscale context per thread). Without
            it the frame is handed to the caller; on damaged streams the decoded pixels can then depend on
            how long the caller keeps frames (see ``ReleaseLedger``).
        work_hw: ``(h, w)`` every needed frame is area-scaled to once (coded orientation, ``analysis_hw``
            times one integer on both axes; the canvas size for the tokenizer); ``None``: ``analysis_hw``.
        kernels: ``CodecConfig.kernels`` (numba or numpy motion field and residual; same results).
        decode_workers: decoders running at once on the stream's decode chunks (:mod:`.chunks`; used
            with ``decode_thread`` and ``convert_rgb``); the results do not depend on it.

    Decoding errors are recorded in ``report`` and decoding goes on with the next packet; candidates that
    never arrive are skipped.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    work = _work_size(analysis_hw, work_hw)
    if len(cand) == 0:
        return
    asm = _SignalAssembler(
        probe,
        cand,
        analysis_hw,
        work,
        use_mvs=use_mvs,
        report=report,
        thumb_width=thumb_width,
        convert_rgb=convert_rgb,
        kernels=kernels,
    )
    ledger = ReleaseLedger()
    source = _decoded_batches(
        path,
        asm,
        ledger,
        report,
        use_mvs=use_mvs,
        thread_type=thread_type,
        index_by_order=index_by_order,
        decode_thread=decode_thread,
        decode_workers=decode_workers if convert_rgb is not None else 1,
    )
    yield from _signals(source, asm, ledger, report)


def _decoded_batches(
    path: str | os.PathLike,
    asm: _SignalAssembler,
    ledger: ReleaseLedger,
    report: DecodeReport,
    *,
    use_mvs: bool,
    thread_type: str,
    index_by_order: bool,
    decode_thread: bool,
    decode_workers: int,
) -> Iterator[list[DecodedFrame]]:
    """The decoded batches of the stream's chunks (:func:`~.chunks.plan_chunks`): in this thread, in one
    decode thread, or in a :class:`~.decode_pool.ChunkPool` of ``decode_workers`` decoders (which convert
    every frame themselves, so that the consumer never holds a decoded frame)."""
    probe = asm.probe
    chunks = plan_chunks(probe, asm.last_needed, index_by_order=index_by_order)
    pooled = decode_thread and decode_workers > 1 and len(chunks) > 1
    backlog = Backlog() if decode_thread and not pooled else None
    # with a decode thread, frames are converted there while this consumer is behind (always when pooled)
    convert = asm.converter if asm.converter.convert_rgb is not None and decode_thread else None

    def decode(chunk: DecodeChunk, part: DecodeReport) -> Iterator[list[DecodedFrame]]:
        return decode_batches(
            path,
            probe,
            asm.need_luma,
            asm.last_needed,
            use_mvs=use_mvs,
            report=part,
            thread_type=thread_type,
            index_by_order=index_by_order,
            ledger=ReleaseLedger() if pooled else ledger,
            convert=convert,
            backlog=backlog,
            chunk=chunk,
        )

    if pooled:
        return iter(ChunkPool(chunks, decode, report, decode_workers))
    if decode_thread:
        return iter(DecodeThread(decode_chunks(chunks, decode, report), report, backlog=backlog))
    return decode_chunks(chunks, decode, report)


def _signals(
    source: Iterator[list[DecodedFrame]], asm: _SignalAssembler, ledger: ReleaseLedger, report: DecodeReport
) -> Iterator[FrameSignals]:
    """Consume the decoded batches: luma on arrival (receipt to ``ledger``), signals once references are in.

    Closing it closes ``source`` (and so stops the decode thread).
    """
    pending = asm.pending
    try:
        t_wait = time.perf_counter()
        for batch in source:
            t0 = time.perf_counter()
            report.wait_seconds += t0 - t_wait
            for ev in batch:
                asm.last_index = ev.last_index
                if ev.seq >= 0:  # a handed-over frame (converted by the decode loop or still to convert)
                    raw = ev.frame is not None
                    asm.arrive(ev)  # drops every reference to the frame (unless it goes to the caller)
                    if raw:  # the decode loop gave the receipt of the frames it converted itself
                        ledger.ack(ev.seq)
                while pending and asm.ready(pending[0]):
                    sig = asm.finish(pending.popleft(), True)
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
        yield asm.finish(pending.popleft(), False)

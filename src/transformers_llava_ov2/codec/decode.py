"""The decode machinery of the codec signals (stage 3): ONE demux + decode pass over the file.

* :func:`decode_batches` (with :class:`_DecodeLoop`): demuxes and decodes once, hands over the frames
  whose luma is needed (candidates and their references; the converter reads candidates' motion vectors
  from them, :func:`motion_vectors`), skips non-reference packets nobody needs, and records damaged
  packets under :data:`~transformers_llava_ov2.video.container.ONE_PASS_ERROR_POLICY`;
* :class:`ReleaseLedger` and the release schedule: every handed-over frame goes back to the decoder a fixed
  number of decode calls after it came out, once the consumer has acknowledged it;
* :class:`DecodeThread`: runs that loop in a background thread feeding a bounded queue;
* :class:`DecodeReport`: what the pass met (counts, errors, times).

The consumer is :func:`~.signals.iter_frame_signals`. See ``docs/codec.md`` § "3. Signals (one decode pass)".
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import av.container
import av.video.stream
import numpy as np

from ..video.container import AV_ERRORS, ONE_PASS_ERROR_POLICY
from .chunks import DecodeChunk
from .probe import StreamProbe

__all__ = [
    "Backlog",
    "DecodeReport",
    "DecodeThread",
    "DecodedFrame",
    "FrameConverter",
    "ReleaseLedger",
    "decode_batches",
    "motion_vectors",
    "open_chunk",
    "pump_batches",
    "put_until_stopped",
]

_SKIP_NONREF_CODECS = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video"})


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
    decode_seconds: float = 0.0  # decode thread: demux, decode, conversions done there (overlapped)
    ledger_wait_seconds: float = 0.0  # decode loop: waiting for the consumer to finish with frames


def motion_vectors(frame: av.VideoFrame) -> Any:
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


@dataclass(slots=True)
class DecodedFrame:
    """One decoded frame as the decode loop hands it over (display order of the decoder output).

    ``frame`` is set only for frames whose luma is needed (candidates and their references). With a
    :data:`FrameConverter` the decode loop fills ``luma`` (and, for candidates, ``data``: the motion
    field from the frame's exported vectors, :func:`motion_vectors`) itself and hands over no frame
    (``frame is None``); otherwise the consumer converts ``frame``.
    """

    index: int
    last_index: int
    luma: np.ndarray | None = None
    frame: Any = None
    data: Any = None
    seq: int = -1  # hand-over number (ReleaseLedger receipt) of a frame with data


class Backlog:
    """Batches the decode thread has queued that the consumer has not taken yet (0 when run inline).

    The decode loop converts a frame itself (:data:`FrameConverter`) only while the consumer is behind,
    i.e. while the decode thread would otherwise run ahead: the conversion work goes to whichever thread
    has time for it. Which thread converts a frame does not change any result.
    """

    #: queued batches (of at most ``_QUEUE_BATCHES = 8``) from which the consumer counts as behind: half
    #: the queue. Measured (docs/codec.md, § Performance): 2 made the decode thread convert on short jitter
    #: although it is the busier thread on decode-bound clips (1-3 % slower there); 8 (a full queue) left a
    #: consumer-bound run (every frame a candidate) 7 % slower
    BEHIND = 4

    def __init__(self) -> None:
        self.queued = 0  # updated by DecodeThread (single int updates, read without a lock)

    def consumer_behind(self) -> bool:
        return self.queued >= self.BEHIND


#: ``convert(event, frame)``: fills ``event.luma`` (and ``event.data`` for candidates) from the decoded
#: frame, in the decode loop's thread, before the frame is held for release; must not touch consumer state
FrameConverter = Callable[[DecodedFrame, av.VideoFrame], None]


class ReleaseLedger:
    """Hand-over receipts: the consumer acknowledges each handed-over frame once it holds no reference.

    Why: on damaged streams FFmpeg's error concealment can read pixels of recycled frame buffers, so
    the decoded pictures depend on *when* earlier frames were released back to the decoder's pool.
    The decode loop therefore releases every handed-over frame at a fixed point of its own schedule
    (``_RELEASE_LAG`` decode calls after the frame came out), waiting for the receipt if the consumer
    is behind: the release order is the same whether the loop runs in a thread or inline.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._low = 0  # every frame before this hand-over number is acknowledged
        self._done: set[int] = set()  # acknowledged frames at or after ``_low`` (out of order)
        self._closed = False
        self._issued = 0

    def issue(self) -> int:
        """The next hand-over number (0, 1, 2, ... over every decode loop that shares this ledger)."""
        seq, self._issued = self._issued, self._issued + 1
        return seq

    def ack(self, seq: int) -> None:
        """Frame ``seq`` (0-based hand-over order) is no longer referenced by the consumer."""
        with self._cond:
            self._done.add(seq)
            while self._low in self._done:
                self._done.remove(self._low)
                self._low += 1
            self._cond.notify_all()

    def acked(self, seq: int) -> bool:
        return seq < self._low or seq in self._done

    def close(self) -> None:
        """The consumer is gone: stop waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait(self, seq: int) -> bool:
        """Block until frame ``seq`` (0-based hand-over order) is acknowledged; False if closed."""
        with self._cond:
            while not self.acked(seq):
                if self._closed:
                    return False
                self._cond.wait(0.1)
            return True


# Decode calls between a frame's hand-over and its release back to the decoder (see ReleaseLedger): bounds
# how far the decode loop runs ahead of the consumer in frames it has handed over.
_RELEASE_LAG = 16
# Batches of decoded frames waiting for the consumer. A batch holds at most one frame with data (it is
# handed over as soon as one arrives), so this bounds the decoded frames in flight.
_QUEUE_BATCHES = 8
_BATCH_FRAMES = 64


class _DecodeLoop:
    """State of one decode pass: the batch being filled and the frames held until their release.

    The frames whose luma is needed (``need_luma``: candidates and references) are handed over in
    :class:`DecodedFrame` events; the others only advance the frame counter. Fills ``report``'s
    ``frames_decoded`` and ``last_index``.
    """

    def __init__(
        self,
        probe: StreamProbe,
        need_luma: set[int],
        *,
        report: DecodeReport,
        index_by_order: bool,
        ledger: ReleaseLedger,
        convert: FrameConverter | None = None,
        backlog: Backlog | None = None,
    ):
        self.frame_index = probe.frame_index
        self.convert = convert
        self.backlog = backlog
        self.need_luma = need_luma
        self.report = report
        self.index_by_order = index_by_order
        self.ledger = ledger
        self.batch: list[DecodedFrame] = []
        self.flushed = False  # the end-of-stream packet went to the decoder
        self.order_counter = -1
        self.step = 0  # decode calls so far
        self.held: deque[tuple[int, int, av.VideoFrame]] = deque()  # (release before step, seq, frame)

    def release_due(self) -> bool:
        """Release the handed-over frames due before decode call ``step``; False if the consumer left."""
        held, ledger = self.held, self.ledger
        while held and held[0][0] <= self.step:
            if not ledger.acked(held[0][1]):  # the consumer is behind: wait for it
                t0 = time.perf_counter()
                ok = ledger.wait(held[0][1])
                self.report.ledger_wait_seconds += time.perf_counter() - t0
                if not ok:
                    return False
            held.popleft()
        return True

    def handle(self, frame: av.VideoFrame) -> bool:
        """Append the frame's event; True when it carries data (flush the batch)."""
        report = self.report
        self.order_counter += 1
        idx = None if self.index_by_order else self.frame_index(frame.pts)
        if idx is None:
            idx = self.order_counter if self.index_by_order else report.last_index + 1
        report.frames_decoded += 1
        report.last_index = max(report.last_index, idx)
        ev = DecodedFrame(idx, report.last_index)
        self.batch.append(ev)
        if idx not in self.need_luma:
            return len(self.batch) >= _BATCH_FRAMES
        ev.seq = self.ledger.issue()
        self.held.append((self.step + _RELEASE_LAG, ev.seq, frame))
        if self.convert is not None and (self.backlog is None or self.backlog.consumer_behind()):
            self.convert(ev, frame)  # converted here: the consumer never holds the frame
            self.ledger.ack(ev.seq)
        else:
            ev.frame = frame
        return True

    def take(self) -> list[DecodedFrame]:
        """The filled batch (a new one is started)."""
        batch, self.batch = self.batch, []
        return batch


def decode_batches(
    path: str | os.PathLike,
    probe: StreamProbe,
    need_luma: set[int],
    last_needed: int,
    *,
    use_mvs: bool,
    report: DecodeReport,
    thread_type: str,
    index_by_order: bool,
    ledger: ReleaseLedger,
    convert: FrameConverter | None = None,
    backlog: Backlog | None = None,
    chunk: DecodeChunk | None = None,
) -> Iterator[list[DecodedFrame]]:
    """Demux and decode ``path`` (or one :class:`~.chunks.DecodeChunk` of it, in a fresh decoder) once;
    yield the decoded frames in batches (decoder output order).

    Hands over the frames whose luma is needed (candidates and references; with ``use_mvs`` they carry
    their exported motion vectors, :func:`motion_vectors`), converted by ``convert`` in this loop when
    given (only while ``backlog`` says the consumer is behind, if given); the rest only advance the frame
    counter. Handed-over frames are
    released on a fixed schedule once ``ledger`` has their receipt (the same schedule with or without
    ``convert``). Decode errors are recorded in ``report``.
    Fills ``report``'s ``frames_decoded``, ``last_index``, ``frames_skipped``, ``errors`` and
    ``stopped_early``; the consumer owns the other fields.
    """
    # non-reference pictures nobody needs are not decoded at all (skip_frame=NONREF for their packet)
    skippable = probe.codec_name in _SKIP_NONREF_CODECS and not index_by_order
    # the frames whose packets are not decoded: non-reference pictures nobody needs
    skip_frames = set(np.flatnonzero(~probe.reference).tolist()) - need_luma if skippable else set()
    report.frames_skipped = 0
    if chunk is not None:
        report.last_index = max(report.last_index, chunk.first_frame - 1)
    try:
        container, packets = open_chunk(path, probe, chunk)
    except AV_ERRORS as exc:  # the probe opened it; this is a race or a vanished file
        report.errors.append(f"open: {exc}")
        return
    loop = _DecodeLoop(
        probe,
        need_luma,
        report=report,
        index_by_order=index_by_order,
        ledger=ledger,
        convert=convert,
        backlog=backlog,
    )
    with container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        if use_mvs:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        if not (yield from _decode_packets(packets, stream, loop, skip_frames, last_needed)):
            return
        if not report.stopped_early and not loop.flushed:
            if not loop.release_due():
                return
            try:
                loop.step += 1
                for frame in stream.codec_context.decode(None):
                    if loop.handle(frame):
                        yield loop.take()
            except AV_ERRORS as exc:
                report.errors.append(f"flush: {exc}")
    if loop.batch:
        yield loop.batch


def open_chunk(
    path: str | os.PathLike, probe: StreamProbe, chunk: DecodeChunk | None
) -> tuple[av.container.InputContainer, Iterator[av.Packet]]:
    """The opened container and its video packets from ``chunk.start`` to ``chunk.stop`` (the whole
    stream, end-of-stream packet included, without a chunk or for the last one).

    Seeks to the chunk's keyframe and checks where it landed (the first packet's pts gives its decode
    position); when the seek cannot be checked or overshoots, demuxes from the start instead, counting
    packets. Either way the packets handed out are exactly positions ``[start, stop)``.
    """
    container = av.open(os.fspath(path))
    stream = container.streams.video[0]
    if chunk is None or (chunk.start == 0 and chunk.last):
        return container, container.demux(stream)
    demux: Iterator[av.Packet] | None = None
    position, first = -1, None
    try:
        if chunk.start:
            with contextlib.suppress(*AV_ERRORS):
                container.seek(chunk.start_pts, stream=stream, backward=True, any_frame=False)
                demux = container.demux(stream)
                first = next((p for p in demux if p.size), None)
                index = probe.frame_index(None if first is None else first.pts)
                if index is not None:
                    position = int(probe.decode_order[index])
            if 0 <= position <= chunk.start and first is not None:
                demux = itertools.chain([first], demux)
            else:  # unverifiable or past the start: count from the top
                container.close()
                container = av.open(os.fspath(path))
        if demux is None:
            demux, position = container.demux(container.streams.video[0]), 0
    except BaseException:
        container.close()
        raise
    return container, _packet_range(demux, position, chunk)


def _packet_range(demux: Iterator[av.Packet], position: int, chunk: DecodeChunk) -> Iterator[av.Packet]:
    """The packets of ``demux`` (the first one at decode position ``position``) in ``[start, stop)``;
    for the last chunk also everything after (the end-of-stream packet)."""
    for packet in demux:
        if not packet.size:  # end of stream (the flush packet): only the last chunk's decoder sees it
            if chunk.last and position >= chunk.start:
                yield packet
            continue
        if position >= chunk.start:
            if position >= chunk.stop and not chunk.last:
                return
            yield packet
        position += 1


def _decode_packets(
    packets: Iterator[av.Packet],
    stream: av.video.stream.VideoStream,
    loop: _DecodeLoop,
    skip_frames: set[int],
    last_needed: int,
) -> Generator[list[DecodedFrame], None, bool]:
    """The packet loop of :func:`decode_batches` (all but the flush); False if the consumer left.

    Packets of ``skip_frames`` are not decoded (``skip_frame="NONREF"``). Stops early
    (``report.stopped_early``) once every needed frame has been decoded or when the damaged packets exceed
    :data:`~transformers_llava_ov2.video.container.ONE_PASS_ERROR_POLICY`. An empty packet (end of
    stream) flushes the decoder (``loop.flushed``).
    """
    report = loop.report
    errors = ONE_PASS_ERROR_POLICY.count()
    ctx = stream.codec_context
    skipping = False
    try:
        for packet in packets:
            if skip_frames and packet.size:
                skip = loop.frame_index(packet.pts) in skip_frames
                if skip != skipping:
                    ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
                report.frames_skipped += int(skip)
            if not loop.release_due():
                return False
            try:
                loop.step += 1
                loop.flushed = not packet.size
                frames = packet.decode()
            except AV_ERRORS as exc:
                report.errors.append(f"decode: {exc}")
                if errors.failed():
                    report.stopped_early = True
                    break
                continue
            errors.succeeded()
            for frame in frames:
                if loop.handle(frame):
                    yield loop.take()
            # every needed frame has been decoded: the consumer can finish all its candidates
            if report.last_index >= last_needed:
                report.stopped_early = True
                break
    except AV_ERRORS as exc:
        report.errors.append(f"demux: {exc}")
    return True


def put_until_stopped(q: queue.Queue, item: tuple[str, Any], stop: threading.Event) -> bool:
    """Put ``item`` into the bounded queue ``q``, waiting while it is full; False once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def pump_batches(
    make: Callable[[], Iterator[list[DecodedFrame]]],
    put: Callable[[tuple[str, Any]], bool],
    report: DecodeReport,
    on_put: Callable[[], None] | None = None,
) -> bool:
    """A decode worker's loop: ``put(("batch", b))`` every batch of ``make()`` (``on_put`` after each),
    ``put(("error", exc))`` on an exception; closes the batches (their container, in this thread) and
    sets ``report.decode_seconds`` to the time spent producing them. True when every batch went out."""
    busy, batches = 0.0, None
    try:
        t0 = time.perf_counter()
        batches = make()
        for batch in batches:
            busy += time.perf_counter() - t0
            if not put(("batch", batch)):
                return False
            if on_put is not None:
                on_put()
            t0 = time.perf_counter()
        busy += time.perf_counter() - t0
        return True
    except BaseException as exc:  # handed to the consumer, which re-raises it
        put(("error", exc))
        return False
    finally:
        if batches is not None:
            with contextlib.suppress(Exception):
                batches.close()  # type: ignore[attr-defined]
        report.decode_seconds = busy - report.ledger_wait_seconds


class DecodeThread:
    """Runs a batch iterator in a daemon thread, feeding a bounded queue (decode overlaps the consumer).

    The iterator is created, advanced and closed in the worker thread only. An exception raised there is
    re-raised in the consumer; closing the consumer early (or an exception in it) stops the worker at its
    next batch and joins it, so the thread never outlives the consumer's ``finally``.
    """

    def __init__(
        self,
        batches: Iterator[list[DecodedFrame]],
        report: DecodeReport,
        maxsize: int = _QUEUE_BATCHES,
        backlog: Backlog | None = None,
    ):
        self._batches = batches
        self._report = report
        self._backlog = backlog
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="codec-decode", daemon=True)

    def _put(self, item: tuple[str, Any]) -> bool:
        return put_until_stopped(self._queue, item, self._stop)

    def _queued(self) -> None:
        if self._backlog is not None:
            self._backlog.queued += 1

    def _work(self) -> None:
        try:
            pump_batches(lambda: self._batches, self._put, self._report, on_put=self._queued)
        finally:
            self._put(("done", None))

    def __iter__(self) -> Iterator[list[DecodedFrame]]:
        self._thread.start()
        try:
            while True:
                kind, value = self._queue.get()
                if kind == "batch":
                    if self._backlog is not None:
                        self._backlog.queued -= 1
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

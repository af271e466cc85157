"""Decoding a stream chunk by chunk (:mod:`.chunks`): one after the other, or several decoders at once.

* :func:`decode_chunks`: the chunks in order in the calling thread (or inside a :class:`~.decode.DecodeThread`);
* :class:`ChunkPool`: ``workers`` threads decode the chunks (each in a fresh decoder, converting their own
  frames), the consumer reads their batches in chunk order.

Both hand out the same batches, so the signals do not depend on how many decoders ran. See
``docs/codec.md`` § "3. Signals (one decode pass)".
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..video.container import ONE_PASS_ERROR_POLICY
from .chunks import DecodeChunk
from .decode import DecodedFrame, DecodeReport, pump_batches, put_until_stopped

__all__ = ["ChunkDecoder", "ChunkPool", "decode_chunks"]

# Batches one chunk of a ChunkPool may queue: a chunk decoded ahead waits in its queue until the consumer
# reaches it, so this must hold most of a chunk's needed frames for the workers to run in parallel.
_POOL_QUEUE_BATCHES = 96


def _merge_report(into: DecodeReport, part: DecodeReport) -> None:
    """Add one chunk's decode-side counts (:func:`decode_batches` fields and times) to ``into``."""
    into.frames_decoded += part.frames_decoded
    into.frames_skipped += part.frames_skipped
    into.errors.extend(part.errors)
    into.last_index = max(into.last_index, part.last_index)
    into.decode_seconds += part.decode_seconds
    into.ledger_wait_seconds += part.ledger_wait_seconds


def _finish_chunk(into: DecodeReport, part: DecodeReport) -> bool:
    """Merge a consumed chunk's report; True when the pass ends after it: the chunk stopped early (every
    needed frame decoded, or its damaged packets over the cap), or the damaged packets of all chunks so
    far exceed :data:`~transformers_llava_ov2.video.container.ONE_PASS_ERROR_POLICY`'s cap."""
    _merge_report(into, part)
    cap = ONE_PASS_ERROR_POLICY.max_total
    if part.stopped_early or (cap is not None and len(into.errors) > cap):
        into.stopped_early = True
        return True
    return False


#: how :func:`decode_chunks` and :class:`ChunkPool` decode one chunk: ``(chunk, its report) -> batches``
ChunkDecoder = Callable[[DecodeChunk, DecodeReport], Iterator[list[DecodedFrame]]]


def decode_chunks(
    chunks: tuple[DecodeChunk, ...], decode: ChunkDecoder, report: DecodeReport
) -> Iterator[list[DecodedFrame]]:
    """The chunks one after the other in this thread (each in a fresh decoder, see :mod:`.chunks`).

    Stops after a chunk that stopped early (every needed frame decoded, or too many damaged packets),
    like a single pass would, or once the damaged packets of all chunks so far exceed the one-pass cap;
    ``report`` gets the merged counts.
    """
    for chunk in chunks:
        part = DecodeReport()
        try:
            yield from decode(chunk, part)
        except BaseException:  # closed early or failed: count what this chunk did
            _merge_report(report, part)
            raise
        if _finish_chunk(report, part):
            return


class ChunkPool:
    """Decodes the chunks in ``workers`` threads (each chunk in a fresh decoder) and yields their batches
    in chunk order: the same batches as :func:`decode_chunks`, with the decode spread over cores.

    A worker takes the next chunk only while fewer than ``workers + 1`` chunks are not yet consumed, and
    each chunk queues at most ``max_queued`` batches (each holds at most one frame with data): this
    bounds the decoded frames in flight. An exception in a worker is re-raised in the consumer; closing
    the consumer early stops and joins the workers.
    """

    def __init__(
        self,
        chunks: tuple[DecodeChunk, ...],
        decode: ChunkDecoder,
        report: DecodeReport,
        workers: int,
        max_queued: int = _POOL_QUEUE_BATCHES,
    ):
        if workers < 1 or not chunks:
            raise ValueError(f"ChunkPool needs workers >= 1 and chunks, got {workers} and {len(chunks)}")
        self._chunks = chunks
        self._decode = decode
        self._report = report
        self._parts = [DecodeReport() for _ in chunks]
        self._queues: list[queue.Queue] = [queue.Queue(max_queued) for _ in chunks]
        self._workers = min(workers, len(chunks))
        self._next = 0  # next chunk to hand to a worker
        self._consumed = 0  # chunks the consumer has finished
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"codec-decode-{i}", daemon=True)
            for i in range(self._workers)
        ]

    def _claim(self) -> int | None:
        with self._cond:
            while not self._stop.is_set() and self._next < len(self._chunks):
                if self._next <= self._consumed + self._workers:
                    j, self._next = self._next, self._next + 1
                    return j
                self._cond.wait(0.05)
            return None

    def _work(self) -> None:
        while (j := self._claim()) is not None:
            q, part = self._queues[j], self._parts[j]

            def put(item: tuple[str, Any], q: queue.Queue = q) -> bool:
                return put_until_stopped(q, item, self._stop)

            if not pump_batches(lambda j=j, part=part: self._decode(self._chunks[j], part), put, part):
                return
            if not put(("done", None)):
                return

    def __iter__(self) -> Iterator[list[DecodedFrame]]:
        for thread in self._threads:
            thread.start()
        current: int | None = None  # the chunk being consumed
        try:
            for j in range(len(self._chunks)):
                current = j
                while True:
                    kind, value = self._queues[j].get()
                    if kind == "batch":
                        yield value
                    elif kind == "error":
                        raise value
                    else:
                        break
                current = None
                stop = _finish_chunk(self._report, self._parts[j])
                with self._cond:
                    self._consumed = j + 1
                    self._cond.notify_all()
                if stop:  # as a single pass: nothing after this chunk
                    return
        finally:
            self.close()  # joins the workers: the reports are final
            if current is not None:  # closed early or failed: count what this chunk did
                _merge_report(self._report, self._parts[current])

    def close(self) -> None:
        """Stop the workers (they finish their current batch) and join them."""
        self._stop.set()
        for thread in self._threads:
            while thread.is_alive():
                for q in self._queues:  # drop what is queued so that a blocked put returns at once
                    with contextlib.suppress(queue.Empty):
                        while True:
                            q.get_nowait()
                thread.join(0.05)

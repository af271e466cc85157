"""Stage 3 plan: decode chunks, the closed stretches of a stream that independent decoders can decode.

Rule (from the probe alone, so the same file always gives the same chunks): the packet at decode position
``d`` (non-empty packets counted) may start a chunk when

* it is a clean start: an IDR picture (H.264, HEVC: ``StreamProbe.idr``), or any I picture of an
  MPEG-1/2 stream without B pictures (its P pictures only reference the previous I/P). MPEG-4 part 2 is
  never split: "packed B-frames" (DivX/Xvid AVI) hide B-VOPs behind the first VOP of a packet, so the
  probe cannot tell that a stream has none;
* the decode order and the display order split at the same place: every packet before ``d`` is displayed
  before it and every packet from ``d`` on at or after it;

and the stream has unique pts of its own (``StreamProbe.pts_filled`` False: a chunk's decoder finds its
first packet by pts after a seek, else it would demux from the start for every chunk) and is numbered by
pts (not ``index_by_order``). Consecutive stretches are
merged until each chunk holds at least :data:`MIN_CHUNK_PACKETS` packets (a short last stretch joins the
chunk before it); chunks that start after the last needed frame are dropped.

Each chunk is decoded by a fresh decoder (:func:`~.decode.decode_batches` with ``chunk=``), so its frames
do not depend on which thread decodes it or on what that thread decoded before: on an intact stream they
are bit-identical to one pass over the file (after an IDR no picture references an earlier one). On a
damaged stream a fresh decoder conceals errors with what it has, which can differ from a single pass.
See ``docs/codec.md`` § "3. Signals (one decode pass)".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bitstream import PICT_B, PICT_I
from .probe import StreamProbe

__all__ = ["MIN_CHUNK_PACKETS", "DecodeChunk", "plan_chunks"]

#: fewest packets in a chunk: a chunk costs a container open, a seek and a decoder start (≈ 3 ms)
MIN_CHUNK_PACKETS = 48

_I_ONLY_START = frozenset({"mpeg1video", "mpeg2video"})


@dataclass(frozen=True)
class DecodeChunk:
    """Packets ``[start, stop)`` in decode order (non-empty packets counted); the first is a clean start.

    Attributes:
        start: decode position of the first packet.
        stop: decode position after the last packet (the stream's packet count for the last chunk).
        first_frame: display index of the first packet's frame (every frame of the chunk is at or after
            it, every frame of an earlier chunk before it).
        start_pts: pts of the first packet (where a decoder seeks to).
        last: the chunk runs to the end of the stream (its decoder sees the end-of-stream packet).
    """

    start: int
    stop: int
    first_frame: int
    start_pts: int
    last: bool

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop or self.first_frame < 0:
            raise ValueError(f"invalid decode chunk {self}")


def _clean_starts(probe: StreamProbe) -> np.ndarray:
    """``bool [T]`` (display order): the frame's packet may start a decoder afresh."""
    if probe.codec_name in _I_ONLY_START and not probe.has_b_frames:
        return probe.pict_type == PICT_I
    if probe.codec_name in ("h264", "hevc"):
        return probe.idr & (probe.pict_type != PICT_B)
    return np.zeros(probe.total_frames, dtype=bool)


def _display_of(probe: StreamProbe) -> np.ndarray:
    """``int64 [T]``: the display index of the packet at each decode position (``decode_order`` inverted)."""
    display_of = np.empty(probe.total_frames, dtype=np.int64)
    display_of[probe.decode_order] = np.arange(probe.total_frames, dtype=np.int64)
    return display_of


def split_positions(probe: StreamProbe, *, index_by_order: bool = False) -> np.ndarray:
    """``int64 [K]`` decode positions (ascending, without 0) where a chunk may start (the rule above)."""
    T = probe.total_frames
    if index_by_order or probe.pts_filled or T < 2 or len(np.unique(probe.pts)) != T:
        return np.zeros(0, dtype=np.int64)
    display_of = _display_of(probe)
    before_max = np.maximum.accumulate(display_of)[:-1]  # max display index of positions < d (d >= 1)
    from_min = np.minimum.accumulate(display_of[::-1])[::-1][1:]  # min display index of positions >= d
    d = np.arange(1, T)
    here = display_of[1:]
    ok = _clean_starts(probe)[here] & (before_max < here) & (from_min == here)
    return d[ok].astype(np.int64)


def plan_chunks(
    probe: StreamProbe,
    last_needed: int,
    *,
    index_by_order: bool = False,
    min_packets: int = MIN_CHUNK_PACKETS,
) -> tuple[DecodeChunk, ...]:
    """The decode chunks of ``probe`` up to the one holding frame ``last_needed`` (display index).

    One chunk (the whole stream) when there is no clean split (see the module rule).
    """
    T = probe.total_frames
    display_of = _display_of(probe)
    starts = [0]
    for d in split_positions(probe, index_by_order=index_by_order).tolist():
        if d - starts[-1] >= min_packets:
            starts.append(d)
    if len(starts) > 1 and T - starts[-1] < min_packets:
        starts.pop()
    chunks: list[DecodeChunk] = []
    for i, s in enumerate(starts):
        first = int(display_of[s]) if i else 0
        if i and first > last_needed:
            break
        stop = starts[i + 1] if i + 1 < len(starts) else T
        chunks.append(DecodeChunk(int(s), int(stop), first, int(probe.pts[display_of[s]]), stop == T))
    return tuple(chunks)

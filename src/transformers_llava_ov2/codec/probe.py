"""Stage 1: the packet table of a video stream, by demuxing only (no decoding).

:func:`probe_video` returns a :class:`StreamProbe`: per frame (display order) the presentation time,
compressed size, keyframe flag and picture type (parsed from the bitstream, see :mod:`.bitstream`), plus
the stream facts (codec, size, rotation, fps, duration).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from ..errors import VideoDecodeError
from ..video.container import AV_ERRORS, frame_rotation, metadata_rotation, open_video, stream_info
from .bitstream import PICT_B, PICT_I, PICT_P, PictureTypeParser

__all__ = ["MV_CODECS", "StreamProbe", "probe_video"]

MV_CODECS = frozenset(
    {"h264", "mpeg4", "h263", "h263p", "msmpeg4v2", "msmpeg4v3", "mpeg1video", "mpeg2video"}
)
"""Decoders of the bundled FFmpeg that export motion vectors with ``flags2=+export_mvs``."""


@dataclass(frozen=True)
class StreamProbe:
    """Packet table and stream facts of one video stream (frame = one non-empty packet).

    Per-frame arrays are in **display order** (sorted by pts); the position in them is the frame index
    used everywhere (``CodecTokens.source_positions[:, 0]``).

    Attributes:
        source: the input path as given.
        codec_name: FFmpeg decoder name.
        width / height: coded frame size in pixels (before rotation).
        rotation: counter-clockwise display rotation in degrees (0/90/180/270).
        fps: average frame rate.
        duration: seconds covered by the frames (last time + one frame duration).
        time_base: pts unit in seconds.
        pts: ``int64 [T]`` presentation timestamps.
        times: ``float64 [T]`` seconds since the first frame (``(pts - pts[0]) * time_base``).
        sizes: ``int64 [T]`` compressed packet sizes in bytes (exact frame-level bit cost / 8).
        keyframe: ``bool [T]`` container keyframe flags.
        pict_type: ``int8 [T]`` 1 I, 2 P, 3 B (``bitstream.PICT_*``).
        reference: ``bool [T]`` the picture may be used as a reference (``False`` only when the bitstream
            says so: H.264 ``nal_ref_idc == 0``, MPEG-4/MPEG-2 B pictures).
        decode_order: ``int64 [T]`` demux position of each frame's packet (non-empty packets counted).
        idr: ``bool [T]`` the packet is an instantaneous decoder refresh (H.264/HEVC IDR; see
            :class:`~.bitstream.PictureTypeParser`): decoding can start at it.
        has_b_frames: whether any B picture was found.
        notes: problems met while demuxing (e.g. a truncated file), empty when none.
        pts_filled: some packets had no pts and got one from their dts or their order (raw elementary
            streams): the pts cannot locate packets in the file.
        probe_seconds: wall time of the probe.
    """

    source: str
    codec_name: str
    width: int
    height: int
    rotation: int
    fps: float
    duration: float
    time_base: Fraction
    pts: np.ndarray
    times: np.ndarray
    sizes: np.ndarray
    keyframe: np.ndarray
    pict_type: np.ndarray
    reference: np.ndarray
    decode_order: np.ndarray
    idr: np.ndarray
    has_b_frames: bool
    notes: tuple[str, ...] = ()
    pts_filled: bool = False
    probe_seconds: float = 0.0
    _pts_index: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def total_frames(self) -> int:
        return len(self.pts)

    @property
    def has_motion_vectors(self) -> bool:
        """Whether the bundled decoder can export motion vectors for this codec (and it is not intra-only)."""
        return self.codec_name in MV_CODECS and bool(np.any(self.pict_type != PICT_I))

    def frame_index(self, pts: int | None) -> int | None:
        """Display index of the frame with presentation timestamp ``pts`` (``None`` if unknown)."""
        if pts is None:
            return None
        if not self._pts_index:
            self._pts_index.update({int(p): i for i, p in enumerate(self.pts)})
        return self._pts_index.get(int(pts))

    def reference_frames(self) -> np.ndarray:
        """``bool [T]``: frames that can serve as motion-compensation references (I and P pictures)."""
        return (self.pict_type == PICT_I) | (self.pict_type == PICT_P)


class _RotationReader:
    """The display rotation: the stream's tag, else the first frame the probe's own packets decode to.

    Reading it here instead of through a second handle (:func:`~..video.container.stream_info`) saves an
    open and a decoder with its threads (~5 ms of the ~17 ms probe of the phone clip). The decoder runs
    without threads and only until its first frame; a decode error gives 0, as the second handle does.
    """

    def __init__(self, stream: av.video.stream.VideoStream):
        self.value = metadata_rotation(stream)
        if self.value is None:
            stream.thread_type = "NONE"

    def feed(self, packet: av.Packet) -> None:
        """Decode ``packet`` (the end-of-stream packet flushes) while the rotation is still unknown."""
        if self.value is not None:
            return
        try:
            for frame in packet.decode():
                self.value = frame_rotation(frame)
                return
        except AV_ERRORS:
            self.value = 0


@dataclass
class _PacketTable:
    """The per-packet columns of the probe, in decode order (non-empty packets only)."""

    pts: list[int | None] = field(default_factory=list)
    dts: list[int | None] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    keys: list[bool] = field(default_factory=list)
    picts: list[int] = field(default_factory=list)
    refs: list[bool] = field(default_factory=list)
    idrs: list[bool] = field(default_factory=list)

    def add(self, packet: av.Packet, parser: PictureTypeParser) -> None:
        self.pts.append(packet.pts)
        self.dts.append(packet.dts)
        self.sizes.append(packet.size)
        self.keys.append(key := bool(packet.is_keyframe))
        pict, is_ref = parser.parse(memoryview(packet), key)
        self.picts.append(pict)
        self.refs.append(is_ref)
        self.idrs.append(parser.idr)


def probe_video(path: str | os.PathLike) -> StreamProbe:
    """Demux the first video stream of ``path`` and build its :class:`StreamProbe`.

    Raises:
        VideoDecodeError: missing/empty/unreadable file, no video stream, or no video packets at all.
    """
    start = time.perf_counter()
    source = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    notes: list[str] = []
    with open_video(path) as container:
        info = stream_info(container, probe_rotation=False)
        stream = container.streams.video[0]
        rotation = _RotationReader(stream)
        ctx = stream.codec_context
        parser = PictureTypeParser(info.codec_name, bytes(ctx.extradata) if ctx.extradata else None)
        table = _PacketTable()
        try:
            for packet in container.demux(stream):
                rotation.feed(packet)
                if packet.size:
                    table.add(packet, parser)
        except AV_ERRORS as exc:
            notes.append(f"demux stopped after {len(table.sizes)} packets: {exc}")
    if not table.sizes:
        raise VideoDecodeError(source, "the video stream has no packets")
    n = len(table.sizes)
    time_base = Fraction(info.time_base) if info.time_base else Fraction(1, 1)
    fps = float(info.fps) if info.fps and info.fps > 0 else 0.0
    pts = _fill_timestamps(table.pts, table.dts, fps, time_base)
    order = np.argsort(pts, kind="stable")
    pts_sorted = pts[order]
    times = (pts_sorted - pts_sorted[0]).astype(np.float64) * float(time_base)
    if fps <= 0:
        diffs = np.diff(times)
        diffs = diffs[diffs > 0]
        fps = float(1.0 / np.median(diffs)) if len(diffs) else 30.0
        notes.append(f"frame rate unknown; estimated {fps:.3f} fps from timestamps")
    frame_duration = 1.0 / fps
    if n > 1:
        diffs = np.diff(times)
        diffs = diffs[diffs > 0]
        if len(diffs):
            frame_duration = float(np.median(diffs))
    duration = float(times[-1] + frame_duration)
    pict = np.asarray(table.picts, dtype=np.int8)[order]
    return StreamProbe(
        source=source,
        codec_name=info.codec_name,
        width=int(info.width),
        height=int(info.height),
        rotation=rotation.value or 0,
        fps=float(fps),
        duration=duration,
        time_base=time_base,
        pts=pts_sorted,
        times=times,
        sizes=np.asarray(table.sizes, dtype=np.int64)[order],
        keyframe=np.asarray(table.keys, dtype=bool)[order],
        pict_type=pict,
        reference=np.asarray(table.refs, dtype=bool)[order],
        decode_order=order.astype(np.int64),
        idr=np.asarray(table.idrs, dtype=bool)[order],
        has_b_frames=bool(np.any(pict == PICT_B)),
        notes=tuple(notes),
        pts_filled=any(p is None for p in table.pts),
        probe_seconds=time.perf_counter() - start,
    )


def _fill_timestamps(
    pts_list: list[int | None], dts_list: list[int | None], fps: float, time_base: Fraction
) -> np.ndarray:
    """``int64 [T]`` pts with gaps filled from dts, else from the packet order and the frame rate."""
    n = len(pts_list)
    if all(p is not None for p in pts_list):
        return np.asarray(pts_list, dtype=np.int64)
    step = 1
    if fps > 0 and time_base > 0:
        step = max(1, round(1.0 / (fps * float(time_base))))
    out = np.empty(n, dtype=np.int64)
    last = None
    for i, (p, d) in enumerate(zip(pts_list, dts_list)):
        value = p if p is not None else d
        if value is None or (last is not None and value <= last and p is None):
            value = (last + step) if last is not None else 0
        out[i] = value
        last = int(value)
    return out

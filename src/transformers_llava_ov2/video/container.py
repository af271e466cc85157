"""Safe opening and probing of video files with PyAV.

Every failure a user can cause (missing file, directory, empty file, not a video, audio-only file,
codec without a decoder) is reported as :class:`~transformers_llava_ov2.errors.VideoDecodeError`
naming the file and the reason; raw ``av`` exceptions never escape :func:`open_video`.

Typical use::

    with open_video("clip.mp4") as container:
        info = stream_info(container)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream

from ..errors import VideoDecodeError, local_media_path

__all__ = [
    "AV_ERRORS",
    "MAX_CONSECUTIVE_DECODE_ERRORS",
    "ONE_PASS_ERROR_POLICY",
    "READER_ERROR_POLICY",
    "DecodeErrorCount",
    "DecodeErrorPolicy",
    "StreamInfo",
    "count_packets",
    "first_video_stream",
    "frame_rotation",
    "metadata_rotation",
    "open_video",
    "resolve_video_path",
    "stream_info",
]

AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, EOFError)
"""The one decode-error policy: exceptions PyAV / FFmpeg raise for unreadable or damaged input.

``av.FFmpegError`` subclasses OSError/ValueError depending on the error code (``av.error.MemoryError``, an
FFmpeg ENOMEM on damaged data, is one of them); ``av.error.*`` is the public namespace in av>=14. Every
reader and the codec decode thread catch exactly these and nothing broader."""

MAX_CONSECUTIVE_DECODE_ERRORS = 16
"""Damaged packets in a row after which a frame reader stops and treats the rest of the stream as gone."""


@dataclass(frozen=True)
class DecodeErrorPolicy:
    """How many packets that fail to decode (with one of :data:`AV_ERRORS`) a decode loop skips.

    A loop stops when a failure makes the count of failures in a row exceed ``max_consecutive``, or the
    count of all failures exceed ``max_total`` (``None``: no such limit). See ``docs/video_sampling.md``
    § "3.4 Truncated and corrupt streams" and ``docs/codec.md`` § "3. Signals (one decode pass)".
    """

    max_consecutive: int | None = None
    max_total: int | None = None

    def count(self) -> DecodeErrorCount:
        """A fresh counter for one decode loop."""
        return DecodeErrorCount(self)


@dataclass
class DecodeErrorCount:
    """Failures of one decode loop under a :class:`DecodeErrorPolicy`."""

    policy: DecodeErrorPolicy
    total: int = 0
    consecutive: int = 0

    def failed(self) -> bool:
        """Count one failed packet; True when the loop must stop."""
        self.total += 1
        self.consecutive += 1
        limit_run, limit_all = self.policy.max_consecutive, self.policy.max_total
        return (limit_run is not None and self.consecutive > limit_run) or (
            limit_all is not None and self.total > limit_all
        )

    def succeeded(self) -> None:
        """A packet decoded: the run of failures is over."""
        self.consecutive = 0


READER_ERROR_POLICY = DecodeErrorPolicy(max_consecutive=MAX_CONSECUTIVE_DECODE_ERRORS)
"""Frame readers (:mod:`.readers`): a damaged packet is skipped; a long run of them ends the stream."""

ONE_PASS_ERROR_POLICY = DecodeErrorPolicy(max_total=64)
"""One analysis pass over a whole file (the codec tokenizer's decode): damaged packets are skipped and
recorded; more than 64 in all stop the pass, bounding its time and its error log on a badly damaged file."""


def resolve_video_path(source: str | os.PathLike, *, must_exist: bool = True) -> Path:
    """A path, ``PathLike`` or ``file://`` URL as a local :class:`~pathlib.Path` (of an existing file).

    Raises:
        VideoDecodeError: empty path, another URL scheme (only local files are read), and with
            ``must_exist`` a missing file or a folder.
    """
    return local_media_path(source, VideoDecodeError, must_exist=must_exist)


def open_video(source: str | os.PathLike) -> av.container.InputContainer:
    """Open a local video file for reading, validating it before returning.

    The returned container is a context manager (``with open_video(p) as c: ...``); the caller owns it
    and must close it. Its first video stream is guaranteed to exist and to have a decoder.

    Args:
        source: path, ``PathLike`` or ``file://`` URL of a local file.

    Raises:
        VideoDecodeError: missing file, directory, zero bytes, unknown/invalid format, no video stream,
            or a video codec this FFmpeg build cannot decode.
    """
    path = resolve_video_path(source)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VideoDecodeError(source, f"cannot stat file: {exc}") from exc
    if size == 0:
        raise VideoDecodeError(source, "file is empty (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except av.error.InvalidDataError as exc:
        raise VideoDecodeError(source, f"not a recognised video/container format ({exc})") from exc
    except av.error.PermissionError as exc:
        raise VideoDecodeError(source, f"permission denied ({exc})") from exc
    except AV_ERRORS as exc:
        raise VideoDecodeError(source, f"cannot open container: {exc}") from exc
    try:
        first_video_stream(container, source=source)
    except BaseException:
        container.close()
        raise
    return container


def first_video_stream(
    container: av.container.InputContainer, *, source: object | None = None
) -> av.video.stream.VideoStream:
    """The container's first video stream, checked to be decodable.

    Raises:
        VideoDecodeError: no video stream (e.g. an audio-only file) or no decoder for its codec.
    """
    src = source if source is not None else container.name
    streams = container.streams.video
    if len(streams) == 0:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoDecodeError(src, f"no video stream (streams present: {', '.join(kinds)})")
    stream = streams[0]
    _check_decodable(stream, src)
    return stream


def _check_decodable(stream: av.video.stream.VideoStream, source: object) -> None:
    """Raise :class:`VideoDecodeError` when ``stream`` has no usable decoder or frame geometry."""
    ctx = stream.codec_context
    if ctx is None:
        raise VideoDecodeError(source, "video codec has no decoder in this FFmpeg build (unknown codec)")
    try:
        is_decoder = bool(ctx.is_decoder)
        name = ctx.name
    except AV_ERRORS as exc:  # pragma: no cover - defensive
        raise VideoDecodeError(source, f"cannot inspect the video codec: {exc}") from exc
    if not is_decoder:
        raise VideoDecodeError(source, f"no decoder for video codec {name!r} in this FFmpeg build")
    if (ctx.width or 0) <= 0 or (ctx.height or 0) <= 0:
        raise VideoDecodeError(source, f"video stream ({name}) has no frame size; the file is likely corrupt")
    if ctx.format is None:
        raise VideoDecodeError(
            source,
            f"video stream ({name}) has an unknown or unsupported pixel format (corrupt or exotic stream header)",
        )


@dataclass(frozen=True)
class StreamInfo:
    """Static facts about a video stream, probed without decoding (except one frame for rotation).

    Attributes:
        codec_name: FFmpeg decoder name (``"h264"``, ``"hevc"``, ...).
        width: coded frame width in pixels (before any rotation).
        height: coded frame height in pixels.
        fps: average frame rate (``stream.average_rate``, else ``guessed_rate``/``base_rate``), float.
        total_frames: ``stream.frames`` when the container records it, else ``round(duration*fps)``,
            else the number of demuxed packets.
        total_frames_source: where ``total_frames`` came from: ``"header"``, ``"duration"`` or ``"demux"``.
        duration: stream duration in seconds (stream, else container, else ``total_frames/fps``).
        time_base: the stream time base (pts units are ``time_base`` seconds).
        start_time: the stream's first pts in seconds (0.0 when unknown).
        rotation: counter-clockwise display rotation in degrees from the display matrix (0 if none).
        pix_fmt: decoder pixel format (``"yuv420p"``, ...).
        has_b_frames: whether the stream has frame reordering (B-frames), ``None`` if unknown.
    """

    codec_name: str
    width: int
    height: int
    fps: float
    total_frames: int
    duration: float
    time_base: Fraction
    start_time: float
    rotation: int
    pix_fmt: str | None
    has_b_frames: bool | None
    total_frames_source: str = "header"


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0 and math.isfinite(float(rate)):
            return float(rate)
    return 0.0


def metadata_rotation(stream: av.video.stream.VideoStream) -> int | None:
    """The stream's ``rotate`` tag (degrees, counter-clockwise, ``0..359``), or ``None`` without one.

    Older muxers wrote the display rotation as this tag; FFmpeg now puts it in the display matrix, which
    PyAV 18 exposes only on decoded frames (:func:`frame_rotation`).
    """
    rotate = stream.metadata.get("rotate")
    if rotate is not None:
        try:
            return round(float(rotate)) % 360
        except ValueError:
            pass
    return None


def frame_rotation(frame: av.VideoFrame) -> int:
    """Display rotation of a decoded frame (its display matrix; degrees, counter-clockwise, ``0..359``)."""
    return round(frame.rotation or 0) % 360


def _probe_rotation(container: av.container.InputContainer, stream_index: int) -> int:
    """Display rotation (degrees, counter-clockwise) of the first frame, read through a second handle.

    :func:`metadata_rotation` when the stream has the tag; otherwise one frame is decoded from a fresh
    handle on the same file (:func:`frame_rotation`), so the caller's container is left untouched. Returns
    0 when the rotation cannot be read (in-memory input, undecodable first frame).
    """
    tagged = metadata_rotation(container.streams[stream_index])
    if tagged is not None:
        return tagged
    name = container.name
    if not isinstance(name, str) or not os.path.isfile(name):
        return 0
    try:
        with av.open(name) as probe:
            vs = probe.streams[stream_index]
            for packet in probe.demux(vs):
                for frame in packet.decode():
                    return frame_rotation(frame)
    except AV_ERRORS:
        return 0
    return 0


def count_packets(container: av.container.InputContainer, stream_index: int) -> int:
    """Number of non-empty packets of one stream, counted by demuxing a fresh handle (0 if unknown).

    A fresh handle leaves ``container`` where it was: raw elementary streams (``.h264``) and some other
    containers cannot seek back after a demux pass."""
    name = container.name
    if not isinstance(name, str) or not os.path.isfile(name):
        return 0
    count = 0
    try:
        with av.open(name) as probe:
            for packet in probe.demux(probe.streams[stream_index]):
                if packet.size:
                    count += 1
    except AV_ERRORS:
        pass
    return count


def stream_info(container: av.container.InputContainer, *, probe_rotation: bool = True) -> StreamInfo:
    """Probe the first video stream of an open container.

    Args:
        container: a container from :func:`open_video`.
        probe_rotation: decode one frame (through a second handle) to read the display matrix;
            ``False`` reports rotation 0 without decoding.

    Raises:
        VideoDecodeError: no decodable video stream.
    """
    stream = first_video_stream(container)
    ctx = stream.codec_context
    fps = _stream_fps(stream)
    time_base = stream.time_base if stream.time_base is not None else Fraction(1, 1)

    duration = 0.0
    if stream.duration is not None and stream.duration > 0:
        duration = float(stream.duration * time_base)
    elif container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base

    total_source = "header"
    total = int(stream.frames or 0)
    if total <= 0 and duration > 0 and fps > 0:
        total, total_source = round(duration * fps), "duration"
    if total <= 0:
        total, total_source = count_packets(container, stream.index), "demux"
    if duration <= 0 and total > 0 and fps > 0:
        duration = total / fps

    start_time = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    has_b: bool | None
    try:
        has_b = bool(ctx.has_b_frames)
    except AV_ERRORS:  # pragma: no cover - defensive
        has_b = None
    pix_fmt = ctx.format.name if ctx.format is not None else None
    rotation = _probe_rotation(container, stream.index) if probe_rotation else 0
    return StreamInfo(
        codec_name=ctx.name,
        width=int(ctx.width),
        height=int(ctx.height),
        fps=fps,
        total_frames=int(total),
        duration=float(duration),
        time_base=Fraction(time_base),
        start_time=start_time,
        rotation=rotation,
        pix_fmt=pix_fmt,
        has_b_frames=has_b,
        total_frames_source=total_source,
    )

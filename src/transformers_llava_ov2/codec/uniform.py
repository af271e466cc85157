"""Uniform frame sampling: the ``frames`` video backend.

``sample_uniform_frames`` picks a frame count with the qwen-vl-utils ``smart_nframes`` rule
(:func:`compute_num_frames`), picks ``linspace`` indices (:func:`sample_indices`) and decodes exactly
those frames to RGB with PyAV (default) or decord (optional extra). See ``docs/video_sampling.md``.

PyAV decoding (:func:`read_frames`):

* one sequential decode (``thread_type="AUTO"``) in display order, stopping after the last sampled frame;
  only sampled frames are converted to RGB;
* a keyframe-seek path for sparse samples, used only when the container has a complete CFR sample index
  (MP4/MOV) and the cost model says the jump saves decoding; every seek is verified (first frame after the
  seek must be a keyframe on the CFR grid at or before the target) and any surprise falls back to the
  sequential path, so both paths return identical frames;
* frame index = position in display order; timestamp = ``(pts - pts_of_frame_0) * time_base``.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import av.container
import numpy as np

from ..errors import VideoDecodeError
from ..video_types import SampledFrames
from .container import StreamInfo, open_video, resolve_video_path, stream_info

__all__ = [
    "SEEK_COST_FRAMES",
    "DecodeStats",
    "TruncatedVideoError",
    "VideoTruncatedWarning",
    "compute_num_frames",
    "plan_uniform_frames",
    "read_frames",
    "sample_indices",
    "sample_uniform_frames",
]

SEEK_COST_FRAMES = 12
"""Cost of one seek (container seek + decoder flush + keyframe decode) in decoded-frame equivalents.

``benchmarks/bench_uniform_sampling.py`` measured about 6 frames (0.8 ms vs 0.125 ms/frame, 320x180
H.264, 2 shared cores); 12 is deliberately conservative: a wrong "seek" costs more than a wrong
"decode on" because seeking restarts frame threading."""

_AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, EOFError)
_MAX_CONSECUTIVE_DECODE_ERRORS = 16

_FrameHook = Callable[[int, np.ndarray], None]


class VideoTruncatedWarning(UserWarning):
    """The stream holds fewer decodable frames than its header says; sampling was redone on what decodes."""


class TruncatedVideoError(VideoDecodeError):
    """Requested frame indices lie past the last decodable frame.

    Attributes:
        decodable_frames: number of frames that could be decoded (display order, from frame 0).
        expected_frames: the frame count the container announced.
    """

    def __init__(self, source: object, decodable_frames: int, expected_frames: int, reason: str = ""):
        self.decodable_frames = int(decodable_frames)
        self.expected_frames = int(expected_frames)
        super().__init__(
            source,
            reason
            or f"stream is truncated or corrupt: only {decodable_frames} of {expected_frames} frames decode",
        )


# ----------------------------------------------------------------------------------------------------
# frame-count rule


def _round_by(x: float, f: int) -> int:
    return round(x / f) * f


def _ceil_by(x: float, f: int) -> int:
    return math.ceil(x / f) * f


def _floor_by(x: float, f: int) -> int:
    return math.floor(x / f) * f


def compute_num_frames(
    total_frames: int,
    video_fps: float,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = 4,
    max_frames: int = 768,
    frame_factor: int = 2,
    strict: bool = False,
) -> int:
    """Number of frames to sample, qwen-vl-utils ``smart_nframes`` compatible.

    * ``num_frames`` given: ``round_by_factor(num_frames)``.
    * else (``fps`` given, default 2.0 as in qwen-vl-utils):
      ``n = total_frames / video_fps * fps`` clamped to ``[ceil_by_factor(min_frames),
      floor_by_factor(max_frames)]`` and to ``total_frames``, then ``floor_by_factor``.

    qwen-vl-utils raises ``ValueError`` when the result is outside ``[frame_factor, total_frames]``;
    ``strict=True`` does the same. With ``strict=False`` (default) such inputs are handled gracefully:
    the result is clamped to ``[frame_factor, ceil_by_factor(total_frames)]``, and the sampler pads
    the missing frames by repeating the last frame (what the official evaluation does to reach an even
    count). Whenever qwen-vl-utils returns a value, this function returns the same value.

    Args:
        total_frames: frames in the video (>= 1).
        video_fps: the video's average frame rate (> 0).
        fps: sampling rate in frames per second (mutually exclusive with ``num_frames``).
        num_frames: fixed frame count.
        min_frames / max_frames: bounds of the fps rule (ignored with ``num_frames``, as upstream).
        frame_factor: the result is a multiple of it (the temporal patch size, 2).
        strict: raise ``ValueError`` exactly where qwen-vl-utils does.

    Returns:
        the frame count, a positive multiple of ``frame_factor``.
    """
    if fps is not None and num_frames is not None:
        raise ValueError("pass either fps or num_frames, not both")
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    if frame_factor < 1:
        raise ValueError(f"frame_factor must be >= 1, got {frame_factor}")
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        n = _round_by(num_frames, frame_factor)
    else:
        rate = 2.0 if fps is None else float(fps)
        if rate <= 0 or video_fps <= 0:
            raise ValueError(f"fps and video_fps must be > 0, got fps={rate}, video_fps={video_fps}")
        lo = _ceil_by(min_frames, frame_factor)
        hi = _floor_by(max_frames, frame_factor)
        n_float = total_frames / video_fps * rate
        n = _floor_by(min(min(max(n_float, lo), hi), total_frames), frame_factor)
    if frame_factor <= n <= total_frames:
        return int(n)
    if strict:
        raise ValueError(f"nframes should be in interval [{frame_factor}, {total_frames}], but got {n}.")
    return int(min(max(n, frame_factor), _ceil_by(total_frames, frame_factor)))


def sample_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """``int64 [num_frames]`` uniform display-order indices: ``linspace(0, total-1, n).round()``.

    ``np.round`` rounds half to even, like ``torch.round`` in qwen-vl-utils (checked identical to
    ``torch.linspace(...).round()`` for all ``total < 1200``, even ``n <= 200``). When
    ``num_frames > total_frames`` the result is every frame once, then the last frame repeated
    (padding), instead of linspace's repeated interior frames.
    """
    if total_frames < 1 or num_frames < 1:
        raise ValueError(f"total_frames and num_frames must be >= 1, got {total_frames}, {num_frames}")
    if num_frames > total_frames:
        idx = np.arange(num_frames, dtype=np.int64)
        return np.minimum(idx, total_frames - 1)
    return np.linspace(0, total_frames - 1, num_frames).round().astype(np.int64)


# ----------------------------------------------------------------------------------------------------
# PyAV decoding


@dataclass(frozen=True)
class DecodeStats:
    """How :func:`read_frames` obtained its frames.

    Attributes:
        path: ``"sequential"`` or ``"seek"``.
        seeks: number of container seeks performed.
        decoded_frames: frames that went through the decoder (all paths together).
        fell_back: the seek path was abandoned and the sequential path redone.
        decodable_frames: frames decodable from the start when the stream ended early, else ``None``.
        reason: why the path was chosen.
    """

    path: str
    seeks: int
    decoded_frames: int
    fell_back: bool = False
    decodable_frames: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class _CfrIndex:
    """Complete CFR sample index of an MP4-like container (what the seek path needs)."""

    frame_pts: int  # duration of one frame in time_base units
    keyframes: np.ndarray  # int64 display indices of keyframes (closed-GOP assumption, verified at runtime)


class _SeekAbort(Exception):
    """Internal: the seek path met something it cannot prove equal to sequential decode."""


class _FrameHookError(Exception):
    """Internal: ``on_frame`` raised; carries the caller's exception past the seek-path fallback."""


def _cfr_index(stream: av.video.stream.VideoStream, total_frames: int) -> _CfrIndex | None:
    """Keyframe positions from the demuxer's sample index, if it is complete and constant-rate."""
    try:
        entries = stream.index_entries
        n = len(entries) if entries is not None else 0
        if n < 2 or n != total_frames:
            return None
        ts = np.empty(n, dtype=np.int64)
        key = np.zeros(n, dtype=bool)
        for i, e in enumerate(entries):
            if e.is_discard:
                return None
            ts[i] = e.timestamp
            key[i] = e.is_keyframe
    except (*_AV_ERRORS, AttributeError, TypeError):
        return None
    d = np.diff(ts)
    if d[0] <= 0 or not np.all(d == d[0]):
        return None
    return _CfrIndex(frame_pts=int(d[0]), keyframes=np.flatnonzero(key).astype(np.int64))


def _frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream):
    """Yield decoded frames in display order; stops quietly at the end of what is decodable.

    Packets that fail to decode are skipped (up to a limit of consecutive failures); a demuxer error ends
    the stream.
    """
    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                out = packet.decode()
            except _AV_ERRORS:
                errors += 1
                if errors > _MAX_CONSECUTIVE_DECODE_ERRORS:
                    return
                continue
            errors = 0
            yield from out
    except _AV_ERRORS:
        return


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int], rotation: int) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB of ``frame``, resized to ``size=(w, h)`` if the stream changed geometry."""
    if (frame.width, frame.height) != size:
        rgb = frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
    else:
        rgb = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


def _decode_sequential(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    wanted: np.ndarray,
    size: tuple[int, int],
    rotation: int,
    on_frame: _FrameHook | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, int | None], int, bool]:
    """Decode from the start; convert frames in ``wanted`` (sorted unique). Returns frames, pts, count, ended."""
    out: dict[int, np.ndarray] = {}
    pts: dict[int, int | None] = {}
    want = set(wanted.tolist())
    last = int(wanted[-1])
    count = 0
    for frame in _frames(container, stream):
        idx = count
        count += 1
        if idx == 0:
            pts[0] = frame.pts
        if idx in want:
            out[idx] = _to_rgb(frame, size, rotation)
            pts[idx] = frame.pts
            if on_frame is not None:
                on_frame(idx, out[idx])
        if idx >= last:
            return out, pts, count, False
    return out, pts, count, True


def _plan_seeks(wanted: np.ndarray, keyframes: np.ndarray, seek_cost: int) -> int:
    """Number of seeks the cost model would do for ``wanted`` (sorted unique), starting after frame 0.

    Rule: before decoding target ``t`` with the decoder at display index ``pos``, jump to the last
    keyframe ``k <= t`` when ``k > pos + 1`` (the gap spans a keyframe) and
    ``(t - k) + seek_cost < t - pos`` (decoding from the keyframe plus the seek is cheaper than decoding
    on).
    """
    pos = 0
    seeks = 0
    for t in wanted.tolist():
        if t <= pos:
            continue
        k = int(keyframes[np.searchsorted(keyframes, t, side="right") - 1]) if len(keyframes) else 0
        if k > pos + 1 and (t - k) + seek_cost < (t - pos):
            seeks += 1
        pos = t
    return seeks


def _decode_seeking(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    wanted: np.ndarray,
    cfr: _CfrIndex,
    size: tuple[int, int],
    rotation: int,
    seek_cost: int,
    on_frame: _FrameHook | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, int | None], int, int]:
    """Decode ``wanted`` frames (sorted unique), jumping to keyframes as :func:`_plan_seeks` decides.

    Every frame's pts must lie on the CFR grid and follow its predecessor by one frame; after a seek the
    first frame must be a keyframe at or before the target. Returns frames, pts, decoded count, seeks.

    Raises:
        _SeekAbort: anything unexpected; the caller redoes the sequential path.
    """
    out: dict[int, np.ndarray] = {}
    pts_of: dict[int, int | None] = {}
    keyframes = cfr.keyframes
    dur = cfr.frame_pts
    it = _frames(container, stream)
    first = next(it, None)
    if first is None or first.pts is None:
        raise _SeekAbort("no first frame or frame without pts")
    pts0 = int(first.pts)
    pts_of[0] = pts0
    if int(wanted[0]) == 0:
        out[0] = _to_rgb(first, size, rotation)
        if on_frame is not None:
            on_frame(0, out[0])
    pos, decoded, seeks = 0, 1, 0
    just_seeked = False
    for target in wanted.tolist():
        if target <= pos:
            continue
        k = int(keyframes[np.searchsorted(keyframes, target, side="right") - 1]) if len(keyframes) else 0
        if k > pos + 1 and (target - k) + seek_cost < (target - pos):
            container.seek(pts0 + k * dur, backward=True, any_frame=False, stream=stream)
            seeks += 1
            it = _frames(container, stream)
            just_seeked = True
        while pos < target:
            frame = next(it, None)
            if frame is None or frame.pts is None:
                raise _SeekAbort("stream ended early or frame without pts")
            decoded += 1
            q, r = divmod(int(frame.pts) - pts0, dur)
            if r != 0:
                raise _SeekAbort(f"pts {frame.pts} is off the CFR grid")
            if just_seeked:
                if not frame.key_frame or q > target or q <= pos:
                    raise _SeekAbort("seek did not land on a keyframe between the decoder and the target")
                just_seeked = False
            elif q != pos + 1:
                raise _SeekAbort(f"display index jumped from {pos} to {q}")
            pos = int(q)
            if pos == target:
                out[pos] = _to_rgb(frame, size, rotation)
                pts_of[pos] = int(frame.pts)
                if on_frame is not None:
                    on_frame(pos, out[pos])
    return out, pts_of, decoded, seeks


def _configure_decoder(stream: av.video.stream.VideoStream) -> None:
    try:
        stream.codec_context.thread_type = "AUTO"
    except (*_AV_ERRORS, AttributeError):  # pragma: no cover - defensive
        pass


def _count_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Exact number of non-empty video packets (one per frame for video), by demuxing; rewinds after."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
    except _AV_ERRORS:
        pass
    with contextlib.suppress(_AV_ERRORS):
        container.seek(0, backward=True, any_frame=False, stream=stream)
    return count


def _timestamps(
    idx: np.ndarray, pts_by_idx: dict[int, int | None], time_base: Fraction, fps: float
) -> np.ndarray:
    """``float64 [T]`` seconds since frame 0 from pts; ``index / fps`` where a pts is missing."""
    pts0 = pts_by_idx.get(0)
    ts = np.empty(len(idx), dtype=np.float64)
    for j, i in enumerate(idx.tolist()):
        p = pts_by_idx.get(i)
        if p is not None and pts0 is not None:
            ts[j] = float((p - pts0) * time_base)
        else:
            ts[j] = i / fps if fps > 0 else 0.0
    return ts


def read_frames(
    video: str | os.PathLike,
    indices: np.ndarray | list[int],
    *,
    seek: bool | Literal["auto"] = "auto",
    apply_rotation: bool = False,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[SampledFrames, DecodeStats]:
    """Decode the frames at the given display-order ``indices`` to RGB with PyAV.

    Args:
        video: path, ``PathLike`` or ``file://`` URL.
        indices: ``int [T]`` display-order frame indices (any order, repeats allowed).
        seek: ``"auto"`` (cost model with :data:`SEEK_COST_FRAMES`), ``True`` (seek whenever a keyframe
            lies between the decoder position and the next sample), ``False`` (sequential only). Seeking
            needs a complete CFR sample index (MP4/MOV); other containers decode sequentially.
        apply_rotation: rotate frames by the stream's display-matrix rotation (multiples of 90 degrees,
            ``np.rot90``, counter-clockwise as ``VideoFrame.rotation``); off by default, like decord and
            qwen-vl-utils.
        on_frame: called as ``on_frame(display_index, rgb)`` once per distinct index, as soon as that frame
            is converted (decode order), so that callers can start work on it while decoding goes on. The
            array is the one that ends up in ``frames``; do not modify it. When decoding then fails (e.g.
            :class:`TruncatedVideoError`), frames delivered so far are not withdrawn.

    Returns:
        ``(SampledFrames, DecodeStats)``; ``frames`` follow the order of ``indices``.

    Raises:
        TruncatedVideoError: an index lies past the last decodable frame (``decodable_frames`` set).
        VideoDecodeError: unreadable input.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("indices must not be empty")
    if int(idx.min()) < 0:
        raise ValueError(f"indices must be >= 0, got {int(idx.min())}")
    source = str(video)
    wanted = np.unique(idx)
    seek_cost = 0 if seek is True else SEEK_COST_FRAMES
    hook: _FrameHook | None = None
    if on_frame is not None:  # a seek fallback decodes again from the start: deliver each index once
        delivered: set[int] = set()

        def hook(i: int, rgb: np.ndarray) -> None:
            if i not in delivered:
                delivered.add(i)
                try:
                    on_frame(i, rgb)
                except Exception as exc:  # not a decode error: must not trigger the seek fallback
                    raise _FrameHookError() from exc

    try:
        return _read_frames(video, source, idx, wanted, seek, seek_cost, apply_rotation, hook)
    except _FrameHookError as exc:
        error = exc.__cause__
    assert error is not None
    raise error  # the caller's own exception, unwrapped


def _read_frames(
    video: str | os.PathLike,
    source: str,
    idx: np.ndarray,
    wanted: np.ndarray,
    seek: bool | Literal["auto"],
    seek_cost: int,
    apply_rotation: bool,
    hook: _FrameHook | None,
) -> tuple[SampledFrames, DecodeStats]:
    with open_video(video) as container:
        info = stream_info(container, probe_rotation=apply_rotation)
        stream = container.streams.video[0]
        _configure_decoder(stream)
        rotation = info.rotation if apply_rotation and info.rotation % 90 == 0 else 0
        size = (info.width, info.height)
        total = info.total_frames
        if info.total_frames_source != "header":
            total = _count_packets(container, stream) or total

        frames_by_idx: dict[int, np.ndarray] = {}
        pts_by_idx: dict[int, int | None] = {}
        stats: DecodeStats | None = None
        fell_back = False
        cfr = _cfr_index(stream, total) if seek is not False else None
        if seek is False:
            reason = "seek disabled"
        elif cfr is None:
            reason = "no complete constant-frame-rate sample index (seeking is MP4/MOV-only)"
        elif _plan_seeks(wanted, cfr.keyframes, seek_cost) == 0:
            reason = "no keyframe gap worth a seek between samples"
        else:
            try:
                frames_by_idx, pts_by_idx, decoded, seeks = _decode_seeking(
                    container, stream, wanted, cfr, size, rotation, seek_cost, hook
                )
                stats = DecodeStats("seek", seeks, decoded, reason="keyframes between sparse samples")
            except (_SeekAbort, *_AV_ERRORS) as exc:
                reason, fell_back = f"seek path abandoned ({exc}); decoded sequentially", True
                frames_by_idx, pts_by_idx = {}, {}
                with contextlib.suppress(*_AV_ERRORS):
                    container.seek(0, backward=True, any_frame=False, stream=stream)
        if stats is None:
            frames_by_idx, pts_by_idx, count, ended = _decode_sequential(
                container, stream, wanted, size, rotation, hook
            )
            stats = DecodeStats(
                "sequential",
                0,
                count,
                fell_back=fell_back,
                decodable_frames=count if ended else None,
                reason=reason,
            )
            if ended and int(wanted[-1]) >= count:
                if count == 0:
                    raise VideoDecodeError(source, "no decodable video frames")
                raise TruncatedVideoError(source, count, total)

    frames = np.stack([frames_by_idx[int(i)] for i in idx])
    ts = _timestamps(idx, pts_by_idx, info.time_base, info.fps)
    duration = info.duration if info.duration > 0 else (total / info.fps if info.fps > 0 else 0.0)
    return (
        SampledFrames(
            frames=frames,
            frame_indices=idx.copy(),
            timestamps=ts,
            fps=float(info.fps),
            total_frames=int(total),
            duration=float(duration),
            source=source,
        ),
        stats,
    )


# ----------------------------------------------------------------------------------------------------
# decord backend


def _import_decord():
    try:
        import decord  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(
            "backend='decord' needs the optional decord package: "
            "pip install 'transformers-llava-ov2[decord]' (or pip install decord==0.6.0)"
        ) from exc
    return decord


def _decord_total_and_fps(video: str | os.PathLike) -> tuple[object, int, float]:
    decord = _import_decord()
    path = str(resolve_video_path(video))
    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        return vr, len(vr), float(vr.get_avg_fps())
    except Exception as exc:  # decord raises its own DECORDError (a RuntimeError) and others
        raise VideoDecodeError(video, f"decord cannot open the video: {exc}") from exc


def _read_frames_decord(
    vr: object, video: str | os.PathLike, idx: np.ndarray, total: int, fps: float, rotation: int
) -> SampledFrames:
    try:
        batch = vr.get_batch(idx.tolist()).asnumpy()  # type: ignore[attr-defined]
        stamps = np.asarray(vr.get_frame_timestamp(idx.tolist()), dtype=np.float64)  # type: ignore[attr-defined]
        first = np.asarray(vr.get_frame_timestamp([0]), dtype=np.float64)  # type: ignore[attr-defined]
    except Exception as exc:
        raise VideoDecodeError(video, f"decord failed to decode frames: {exc}") from exc
    frames = np.ascontiguousarray(batch, dtype=np.uint8)
    if rotation:
        frames = np.ascontiguousarray(np.rot90(frames, k=rotation // 90, axes=(1, 2)))
    ts = stamps.reshape(len(idx), -1)[:, 0] - first.reshape(-1)[0]
    return SampledFrames(
        frames=frames,
        frame_indices=idx.astype(np.int64),
        timestamps=ts,
        fps=fps,
        total_frames=total,
        duration=total / fps if fps > 0 else 0.0,
        source=str(video),
    )


# ----------------------------------------------------------------------------------------------------
# public entry point


def plan_uniform_frames(
    video: str | os.PathLike,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = 4,
    max_frames: int = 768,
    frame_factor: int = 2,
    strict: bool = False,
) -> tuple[np.ndarray, StreamInfo]:
    """The PyAV path's ``(indices, stream info)`` of :func:`sample_uniform_frames`, without decoding.

    ``read_frames(video, indices)`` then decodes exactly what ``sample_uniform_frames`` returns unless the
    stream turns out to be truncated (:class:`TruncatedVideoError`; ``sample_uniform_frames`` resamples).
    Frames come out ``info.height x info.width`` (before any rotation).

    Raises:
        VideoDecodeError: unreadable, empty or non-video input.
    """
    with open_video(video) as container:
        info = stream_info(container, probe_rotation=False)
        total = info.total_frames
        if info.total_frames_source != "header":
            total = _count_packets(container, container.streams.video[0]) or total
    if total < 1:
        raise VideoDecodeError(video, "stream reports no frames")
    rule = dict(
        fps=fps,
        num_frames=num_frames,
        min_frames=min_frames,
        max_frames=max_frames,
        frame_factor=frame_factor,
        strict=strict,
    )
    n = compute_num_frames(total, info.fps, **rule)
    return sample_indices(total, n), info


def sample_uniform_frames(
    video: str | os.PathLike,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = 4,
    max_frames: int = 768,
    frame_factor: int = 2,
    backend: Literal["pyav", "decord"] = "pyav",
    seek: bool | Literal["auto"] = "auto",
    apply_rotation: bool = False,
    on_truncated: Literal["resample", "error"] = "resample",
    strict: bool = False,
) -> SampledFrames:
    """Uniformly sample RGB frames from a local video (the ``frames`` backend).

    The frame count follows :func:`compute_num_frames` (qwen-vl-utils ``smart_nframes``; with neither
    ``fps`` nor ``num_frames`` the upstream default ``fps=2.0`` applies), the indices follow
    :func:`sample_indices`; short clips are padded by repeating the last frame.

    Args:
        video: path, ``PathLike`` or ``file://`` URL of a local file.
        fps / num_frames / min_frames / max_frames / frame_factor / strict: see :func:`compute_num_frames`.
        backend: ``"pyav"`` (default) or ``"decord"`` (optional extra; same indices).
        seek: PyAV keyframe seeking policy, see :func:`read_frames`.
        apply_rotation: apply the display-matrix rotation (multiples of 90 degrees), off by default.
        on_truncated: when the stream decodes fewer frames than its header announces (PyAV backend):
            ``"resample"`` (default) redoes the sampling over the decodable frames, sets
            ``total_frames``/``duration`` to the decodable range and emits :class:`VideoTruncatedWarning`;
            ``"error"`` raises :class:`TruncatedVideoError`.

    Returns:
        :class:`~transformers_llava_ov2.video_types.SampledFrames` with ``frames uint8 [T, H, W, 3]``.

    Raises:
        VideoDecodeError: unreadable, empty or non-video input, or no decodable frame.
        ImportError: ``backend="decord"`` without decord installed.
    """
    if backend not in ("pyav", "decord"):
        raise ValueError(f"backend must be 'pyav' or 'decord', got {backend!r}")
    if on_truncated not in ("resample", "error"):
        raise ValueError(f"on_truncated must be 'resample' or 'error', got {on_truncated!r}")
    rule = dict(
        fps=fps,
        num_frames=num_frames,
        min_frames=min_frames,
        max_frames=max_frames,
        frame_factor=frame_factor,
        strict=strict,
    )
    if backend == "decord":
        _import_decord()
        with open_video(video) as container:  # same validation and error messages as the PyAV path
            info = stream_info(container, probe_rotation=apply_rotation)
        vr, total, video_fps = _decord_total_and_fps(video)
        if total < 1:
            raise VideoDecodeError(video, "decord reports no frames")
        n = compute_num_frames(total, video_fps if video_fps > 0 else info.fps, **rule)
        rotation = info.rotation if apply_rotation and info.rotation % 90 == 0 else 0
        return _read_frames_decord(vr, video, sample_indices(total, n), total, video_fps, rotation)

    indices, info = plan_uniform_frames(video, **rule)
    try:
        frames, _ = read_frames(video, indices, seek=seek, apply_rotation=apply_rotation)
        return frames
    except TruncatedVideoError as exc:
        if on_truncated == "error":
            raise
        decodable, total = exc.decodable_frames, exc.expected_frames
    warnings.warn(
        f"{video}: only {decodable} of {total} frames decode (truncated or corrupt stream); "
        f"sampled within the decodable frames",
        VideoTruncatedWarning,
        stacklevel=2,
    )
    n = compute_num_frames(decodable, info.fps, **rule)
    frames, _ = read_frames(video, sample_indices(decodable, n), seek=False, apply_rotation=apply_rotation)
    return SampledFrames(
        frames=frames.frames,
        frame_indices=frames.frame_indices,
        timestamps=frames.timestamps,
        fps=frames.fps,
        total_frames=decodable,
        duration=decodable / info.fps if info.fps > 0 else frames.duration,
        source=frames.source,
    )

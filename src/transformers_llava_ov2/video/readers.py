"""Frame readers: exact frames by index from a local video, with PyAV (default) or decord (optional extra).

PyAV decoding (:func:`read_frames`):

* one sequential decode (``thread_type="AUTO"``) in display order, stopping after the last sampled frame;
  only sampled frames are converted to RGB;
* a keyframe-seek path for sparse samples, used only when the container has a complete CFR sample index
  (MP4/MOV) and the cost model says the jump saves decoding; every seek is verified (first frame after the
  seek must be a keyframe on the CFR grid at or before the target) and any surprise falls back to the
  sequential path, so both paths return identical frames;
* frame index = position in display order; timestamp = ``(pts - pts_of_frame_0) * time_base``.

Damaged input follows the one policy of :mod:`.container` (``AV_ERRORS``, ``READER_ERROR_POLICY``).
See ``docs/video_sampling.md``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import av.container
import numpy as np

from ..errors import VideoDecodeError
from ..video_types import SampledFrames
from .container import (
    AV_ERRORS,
    READER_ERROR_POLICY,
    count_packets,
    open_video,
    resolve_video_path,
    stream_info,
)

__all__ = [
    "SEEK_COST_FRAMES",
    "DecodeStats",
    "TruncatedVideoError",
    "VideoTruncatedWarning",
    "read_frames",
    "read_frames_decord",
]

SEEK_COST_FRAMES = 12
"""Cost of one seek (container seek + decoder flush + keyframe decode) in decoded-frame equivalents.

``docs/video_sampling.md`` gives the measurement (about 6 frames); 12 is deliberately conservative: a wrong "seek" costs more than a wrong
"decode on" because seeking restarts frame threading."""


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
    except (*AV_ERRORS, AttributeError, TypeError):
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
    errors = READER_ERROR_POLICY.count()
    try:
        for packet in container.demux(stream):
            try:
                out = packet.decode()
            except AV_ERRORS:
                if errors.failed():
                    return
                continue
            errors.succeeded()
            yield from out
    except AV_ERRORS:
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
    except (*AV_ERRORS, AttributeError):  # pragma: no cover - defensive
        pass


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
            total = count_packets(container, stream.index) or total

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
            except (_SeekAbort, *AV_ERRORS) as exc:
                reason, fell_back = f"seek path abandoned ({exc}); decoded sequentially", True
                frames_by_idx, pts_by_idx = {}, {}
                with contextlib.suppress(*AV_ERRORS):
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


def import_decord():
    try:
        import decord  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(
            "backend='decord' needs the optional decord package: "
            "pip install 'transformers-llava-ov2[decord]' (or pip install decord==0.6.0)"
        ) from exc
    return decord


def decord_total_and_fps(video: str | os.PathLike) -> tuple[object, int, float]:
    decord = import_decord()
    path = str(resolve_video_path(video))
    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        return vr, len(vr), float(vr.get_avg_fps())
    except Exception as exc:  # decord raises its own DECORDError (a RuntimeError) and others
        raise VideoDecodeError(video, f"decord cannot open the video: {exc}") from exc


def read_frames_decord(
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

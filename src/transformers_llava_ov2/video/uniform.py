"""Uniform frame sampling, the ``frames`` back end's decode step: frame count, indices, then the readers.

``sample_uniform_frames`` picks a frame count with the qwen-vl-utils ``smart_nframes`` rule
(:func:`~.frame_count.compute_num_frames`), picks ``linspace`` indices (:func:`~.frame_count.sample_indices`)
and decodes exactly those frames to RGB (:mod:`.readers`). See ``docs/video_sampling.md``.
"""

from __future__ import annotations

import os
import warnings
from typing import Literal

import numpy as np

from ..errors import VideoDecodeError
from ..video_types import SampledFrames
from .container import StreamInfo, count_packets, open_video, stream_info
from .frame_count import count_frames, sample_indices
from .readers import (
    TruncatedVideoError,
    VideoTruncatedWarning,
    decord_total_and_fps,
    import_decord,
    read_frames,
    read_frames_decord,
)

__all__ = ["plan_uniform_frames", "sample_uniform_frames"]


def _rule_kwargs(
    rule: str,
    fps: float | None,
    num_frames: int | None,
    min_frames: int,
    max_frames: int,
    frame_factor: int,
    strict: bool,
    pad: bool = True,
) -> dict[str, object]:
    """``count_frames`` keyword arguments of ``rule`` (the ``"processor"`` rule has no minimum or factor)."""
    if rule == "processor":
        return {"rule": rule, "fps": fps, "num_frames": num_frames, "max_frames": max_frames}
    counting = {"fps": fps, "num_frames": num_frames, "min_frames": min_frames, "max_frames": max_frames}
    return {"rule": rule, **counting, "frame_factor": frame_factor, "strict": strict, "pad": pad}


def plan_uniform_frames(
    video: str | os.PathLike,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = 4,
    max_frames: int = 768,
    frame_factor: int = 2,
    strict: bool = False,
    rule: str = "qwen",
    pad: bool = True,
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
            total = count_packets(container, container.streams.video[0].index) or total
    if total < 1:
        raise VideoDecodeError(video, "stream reports no frames")
    counting = _rule_kwargs(rule, fps, num_frames, min_frames, max_frames, frame_factor, strict, pad)
    n = count_frames(total, info.fps, **counting)
    return sample_indices(total, n), info


def sample_uniform_frames(
    video: str | os.PathLike,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = 4,
    max_frames: int = 768,
    frame_factor: int = 2,
    rule: str = "qwen",
    backend: Literal["pyav", "decord"] = "pyav",
    seek: bool | Literal["auto"] = "auto",
    apply_rotation: bool = False,
    on_truncated: Literal["resample", "error"] = "resample",
    strict: bool = False,
    pad: bool = True,
) -> SampledFrames:
    """Uniformly sample RGB frames from a local video (the ``frames`` backend).

    The frame count follows :func:`compute_num_frames` (qwen-vl-utils ``smart_nframes``; with neither
    ``fps`` nor ``num_frames`` the upstream default ``fps=2.0`` applies), the indices follow
    :func:`sample_indices`; short clips are padded by repeating the last frame.

    Args:
        video: path, ``PathLike`` or ``file://`` URL of a local file.
        fps / num_frames / min_frames / max_frames / frame_factor / strict: see :func:`compute_num_frames`.
        rule: ``"qwen"`` (default, :func:`compute_num_frames`) or ``"processor"`` (the official HF video
            processor's :func:`processor_num_frames`; ``min_frames``, ``frame_factor``, ``strict`` unused).
        pad: see :func:`compute_num_frames` (``False``: never more frames than the clip has).
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
    counting = _rule_kwargs(rule, fps, num_frames, min_frames, max_frames, frame_factor, strict, pad)
    if backend == "decord":
        import_decord()
        with open_video(video) as container:  # same validation and error messages as the PyAV path
            info = stream_info(container, probe_rotation=apply_rotation)
        vr, total, video_fps = decord_total_and_fps(video)
        if total < 1:
            raise VideoDecodeError(video, "decord reports no frames")
        n = count_frames(total, video_fps if video_fps > 0 else info.fps, **counting)
        rotation = info.rotation if apply_rotation and info.rotation % 90 == 0 else 0
        return read_frames_decord(vr, video, sample_indices(total, n), total, video_fps, rotation)

    indices, info = plan_uniform_frames(video, **counting)
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
    n = count_frames(decodable, info.fps, **counting)
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

"""How many frames to sample and which ones: the qwen-vl-utils ``smart_nframes`` rule and ``linspace`` indices.

Pure functions of the stream's frame count and rate; no decoding. See ``docs/video_sampling.md``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["compute_num_frames", "sample_indices"]


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

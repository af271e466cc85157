"""How many frames to sample and which ones, without decoding.

Two count rules: :func:`compute_num_frames` (qwen-vl-utils ``smart_nframes``, what the official evaluation
and the ``"release"``/``"training"`` layouts use) and :func:`processor_num_frames` (the official HF video
processor's own duration rule, the ``"processor"`` layout). Indices are :func:`linspace_indices`: exactly
``torch.linspace(0, total - 1, n).round()`` in float32, as both official paths compute them. Pure
functions of the stream's frame count and rate. See ``docs/video_sampling.md``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "FRAME_RULES",
    "compute_num_frames",
    "count_frames",
    "linspace_indices",
    "processor_num_frames",
    "sample_indices",
]


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
    pad: bool = True,
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
        pad: allow a count above ``total_frames`` (filled by repeating the last frame); ``False`` caps the
            count at ``total_frames`` (the ``"training"`` layout: no padding, so a 1-frame clip gives 1).

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
    n = int(min(max(n, frame_factor), _ceil_by(total_frames, frame_factor)))
    return n if pad else min(n, total_frames)


def linspace_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """``int64 [num_frames]``: ``torch.linspace(0, total - 1, n).round()`` reproduced exactly, without torch.

    torch's CPU kernel computes float32 ``start + step * i`` for the first half and ``end - step * (n - 1 - i)``
    for the second (``step = (end - start) / (n - 1)`` in float32), each with one rounding (a fused
    multiply-add on x86 builds); ``round`` is half to even. The float64 products here are exact for any
    count below 2**29, so one cast to float32 is that single rounding. float64 ``np.linspace`` differs from it
    from 24,515 frames on for 384 samples (tested against torch up to 10**6 frames).
    """
    if num_frames == 1:
        return np.zeros(1, dtype=np.int64)
    start, end = np.float32(0), np.float32(total_frames - 1)
    step = np.float64((end - start) / np.float32(num_frames - 1))
    i = np.arange(num_frames, dtype=np.float64)
    first = i < num_frames // 2
    values = np.where(first, start + step * i, end - step * (num_frames - 1 - i)).astype(np.float32)
    return np.rint(values).astype(np.int64)


def sample_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """``int64 [num_frames]`` uniform display-order indices (:func:`linspace_indices`).

    When ``num_frames > total_frames`` the result is every frame once, then the last frame repeated
    (padding, the qwen-vl-utils rule's even count), instead of linspace's repeated interior frames.
    """
    if total_frames < 1 or num_frames < 1:
        raise ValueError(f"total_frames and num_frames must be >= 1, got {total_frames}, {num_frames}")
    if num_frames > total_frames:
        idx = np.arange(num_frames, dtype=np.int64)
        return np.minimum(idx, total_frames - 1)
    return linspace_indices(total_frames, num_frames)


PROCESSOR_MAX_FRAMES = 384
"""The official HF video processor's ``max_frames`` default."""


def processor_num_frames(
    total_frames: int,
    video_fps: float,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int = PROCESSOR_MAX_FRAMES,
) -> int:
    """Frame count of the official HF video processor (``"processor"`` layout), never above ``total_frames``.

    * ``fps`` (its ``target_fps``): ``min(max(1, int(duration * fps)), max_frames)``;
    * else ``num_frames`` (its ``fixed_num_frames``);
    * else by duration: under 10 s 8 frames, under 30 s 16, else ``max_frames``.

    ``duration = total_frames / video_fps``. A clip with fewer frames than the count gives all its frames
    (the official sampler takes every frame when ``total <= n``), so there is no padding.
    """
    if fps is not None and num_frames is not None:
        raise ValueError("pass either fps or num_frames, not both")
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    if video_fps <= 0:
        raise ValueError(f"video_fps must be > 0, got {video_fps}")
    duration = total_frames / video_fps
    if fps is not None:
        n = min(max(1, int(duration * fps)), max_frames)
    elif num_frames is not None:
        n = int(num_frames)
    else:
        n = 8 if duration < 10 else 16 if duration < 30 else max_frames
    return max(1, min(n, total_frames))


FRAME_RULES = ("qwen", "processor")
"""Names of the count rules: ``"qwen"`` (:func:`compute_num_frames`), ``"processor"`` (:func:`processor_num_frames`)."""


def count_frames(total_frames: int, video_fps: float, *, rule: str = "qwen", **kwargs: object) -> int:
    """The frame count of ``rule`` (one of :data:`FRAME_RULES`) with that rule's keyword arguments."""
    if rule == "qwen":
        return compute_num_frames(total_frames, video_fps, **kwargs)  # type: ignore[arg-type]
    if rule == "processor":
        return processor_num_frames(total_frames, video_fps, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"rule must be one of {list(FRAME_RULES)}, got {rule!r}")

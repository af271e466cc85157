"""Codec-stream tokenization in pure Python (PyAV + numpy + torch), built on :mod:`transformers_llava_ov2.video`.

Stages (each a small module with a typed result): ``probe`` (demux-only packet table) → ``gop`` (adaptive
groups from the P/B bit-cost timeline) → ``candidates`` / ``signals`` (one decode pass, ``decode``: motion
vectors, motion-compensated residual, ``motion``) → ``saliency`` → ``selection`` (rank-attenuated,
stratified 2×2 blocks) → ``groups`` / ``canvas`` (I/P canvases). :func:`tokenize_video` (``pipeline``) runs
them and returns :class:`~transformers_llava_ov2.video_types.CodecTokens`. See ``docs/codec.md``.

Uniform frame sampling, container I/O and synthetic clips live in :mod:`transformers_llava_ov2.video`; their
old names here still resolve for one release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._deprecated import warn_moved
from .config import CodecConfig
from .gop import GopPlan, plan_gops
from .pipeline import tokenize_video
from .probe import StreamProbe, probe_video

__all__ = ["CodecConfig", "GopPlan", "StreamProbe", "plan_gops", "probe_video", "tokenize_video"]

_MOVED = {
    "StreamInfo": "container",
    "open_video": "container",
    "stream_info": "container",
    "SyntheticClip": "synthetic",
    "write_demo_clip": "synthetic",
    "write_synthetic_clip": "synthetic",
    "TruncatedVideoError": "readers",
    "VideoTruncatedWarning": "readers",
    "read_frames": "readers",
    "compute_num_frames": "frame_count",
    "sample_indices": "frame_count",
    "sample_uniform_frames": "uniform",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warn_moved(f"transformers_llava_ov2.codec.{name}", f"transformers_llava_ov2.video.{module}.{name}")
    return getattr(importlib.import_module(f"..video.{module}", __name__), name)

"""Codec-stream tokenization and uniform frame sampling, in pure Python (PyAV + numpy + torch).

Codec stages (each a small module with a typed result): ``probe`` (demux-only packet table) →
``gop`` (adaptive groups from the P/B bit-cost timeline) → ``candidates`` / ``signals`` (one decode pass:
motion vectors, motion-compensated residual) → ``saliency`` → ``selection`` (rank-attenuated, stratified
2×2 blocks) → ``canvas`` (I/P canvases). :func:`tokenize_video` runs them and returns
:class:`~transformers_llava_ov2.video_types.CodecTokens`.

The frames backend is :func:`sample_uniform_frames` (qwen-vl-utils-compatible counts), returning
:class:`~transformers_llava_ov2.video_types.SampledFrames`.
"""

from .config import CodecConfig
from .container import StreamInfo, open_video, stream_info
from .gop import GopPlan, plan_gops
from .pipeline import tokenize_video
from .probe import StreamProbe, probe_video
from .synthetic import SyntheticClip, write_demo_clip, write_synthetic_clip
from .uniform import (
    TruncatedVideoError,
    VideoTruncatedWarning,
    compute_num_frames,
    read_frames,
    sample_indices,
    sample_uniform_frames,
)

__all__ = [
    "CodecConfig",
    "GopPlan",
    "StreamInfo",
    "StreamProbe",
    "SyntheticClip",
    "TruncatedVideoError",
    "VideoTruncatedWarning",
    "compute_num_frames",
    "open_video",
    "plan_gops",
    "probe_video",
    "read_frames",
    "sample_indices",
    "sample_uniform_frames",
    "stream_info",
    "tokenize_video",
    "write_demo_clip",
    "write_synthetic_clip",
]

"""Video I/O and the ``frames`` back end; knows nothing about codecs.

* :mod:`.container` — opening a file safely, stream facts, the one decode-error policy;
* :mod:`.frame_count` — the qwen-vl-utils frame-count rule and ``linspace`` indices;
* :mod:`.readers` — exact frames by index (PyAV sequential / keyframe seek, decord);
* :mod:`.uniform` — :func:`sample_uniform_frames`, returning
  :class:`~transformers_llava_ov2.video_types.SampledFrames`;
* :mod:`.synthetic` and :mod:`.demo` — generated clips with known content, the embedded demo clip.

The codec-stream tokenizer (:mod:`transformers_llava_ov2.codec`) builds on this package, never the other way.
"""

from .container import AV_ERRORS, StreamInfo, open_video, stream_info
from .frame_count import compute_num_frames, sample_indices
from .readers import DecodeStats, TruncatedVideoError, VideoTruncatedWarning, read_frames
from .synthetic import SyntheticClip, write_synthetic_clip
from .uniform import plan_uniform_frames, sample_uniform_frames

__all__ = [
    "AV_ERRORS",
    "DecodeStats",
    "StreamInfo",
    "SyntheticClip",
    "TruncatedVideoError",
    "VideoTruncatedWarning",
    "compute_num_frames",
    "open_video",
    "plan_uniform_frames",
    "read_frames",
    "sample_indices",
    "sample_uniform_frames",
    "stream_info",
    "write_synthetic_clip",
]

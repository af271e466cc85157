"""Video I/O and the ``frames`` back end; knows nothing about codecs.

* :mod:`.container` — opening a file safely, stream facts, the one decode-error policy;
* :mod:`.frame_count` — the qwen-vl-utils frame-count rule and ``linspace`` indices;
* :mod:`.readers` — exact frames by index (PyAV sequential / keyframe seek, decord);
* :mod:`.uniform` — :func:`sample_uniform_frames`, returning
  :class:`~transformers_llava_ov2.video_types.SampledFrames`;
* :mod:`.options` — :class:`VideoOptions`, the typed options of both back ends;
* :mod:`.kernels` / :mod:`.frames` — the frames back end's CPU kernels and orchestration;
* :mod:`.synthetic` and :mod:`.demo` — generated clips with known content, the embedded demo clip.

The names below load on first use, so importing one module (e.g. the import-light :mod:`.options`) does not
import PyAV or torch. The codec-stream tokenizer (:mod:`transformers_llava_ov2.codec`) builds on this
package, never the other way.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AV_ERRORS": "container",
    "StreamInfo": "container",
    "open_video": "container",
    "stream_info": "container",
    "compute_num_frames": "frame_count",
    "sample_indices": "frame_count",
    "VideoOptions": "options",
    "DecodeStats": "readers",
    "TruncatedVideoError": "readers",
    "VideoTruncatedWarning": "readers",
    "read_frames": "readers",
    "SyntheticClip": "synthetic",
    "write_synthetic_clip": "synthetic",
    "plan_uniform_frames": "uniform",
    "sample_uniform_frames": "uniform",
}

__all__ = [
    "AV_ERRORS",
    "DecodeStats",
    "StreamInfo",
    "SyntheticClip",
    "TruncatedVideoError",
    "VideoOptions",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)

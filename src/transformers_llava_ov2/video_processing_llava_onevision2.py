"""Video processor of LLaVA-OneVision-2 (frames and codec back ends), without torchvision.

Every video is rewritten onto the model's *image* path: the output rows go into ``pixel_values``,
``image_grid_thw`` and ``patch_positions`` like images, and the prompt gets one text block per frame (frames
back end) or per run of equal source frame (codec back end)::

    <{t:.1f} seconds><|vision_start|><|image_pad|>*n<|vision_end|>

Two layouts (``video_layout``; ``docs/processor.md``, "Video layouts"):

* ``"release"`` (default, what the official evaluation feeds the released checkpoint): frames are separate
  image rows ``[1, h, w]`` with ``t = 0`` positions, an even frame count (the last frame is repeated) and no
  newline between frame blocks. Codec canvases form ONE ``[N_canvas, h, w]`` row per video with source-frame
  positions and a newline after each run.
* ``"training"``: frames form one ``[T, h, w]`` row with ``t`` = source frame index and a newline after every
  frame block. Codec output is the same as in ``"release"``.

This module holds the processor class and the prompt contract only. The call's options are resolved once
into a frozen :class:`~.video.options.VideoOptions`; :data:`BACKENDS` maps ``video_backend`` to the back end
(:func:`~.video.frames.frames_item`, :func:`~.codec.items.codec_backend_item`), each one call returning a
:class:`~.video_types.VisualItem`. The class derives from ``VideoProcessorMixin`` through its module path
(``transformers.VideoProcessorMixin`` is not exported without torchvision) and overrides ``preprocess``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from .video.container import open_video, stream_info
from .video.frame_count import count_frames
from .video.frames import frame_pixel_budget, frames_item, frames_num_tokens, sample_from_file
from .video.kernels import normalize_and_patchify, resize_frames
from .video.options import DEFAULT_FRAME_MAX_PIXELS, DEFAULT_TOTAL_PIXELS, VideoOptions
from .video_types import CodecTokens, LlavaOnevision2VideoInfo, SampledFrames, VisualItem

__all__ = [
    "BACKENDS",
    "DEFAULT_FRAME_MAX_PIXELS",
    "DEFAULT_TOTAL_PIXELS",
    "LlavaOnevision2VideoInfo",
    "LlavaOnevision2VideoProcessor",
    "LlavaOnevision2VideosKwargs",
    "flatten_video_inputs",
    "frame_pixel_budget",
    "normalize_and_patchify",
    "render_video_prompt",
    "resize_frames",
]


class LlavaOnevision2VideosKwargs(VideosKwargs, total=False):
    """Per-call video options (all also settable at construction and saved with ``save_pretrained``).

    Each is a field of :class:`~.video.options.VideoOptions`, which documents and validates them.
    """

    video_backend: Literal["frames", "codec"] | None
    video_layout: Literal["release", "training", "processor"] | None
    min_frames: int | None
    max_frames: int | None
    min_pixels: int | None
    max_pixels: int | None
    frame_max_pixels: int | None
    total_pixels: int | None
    max_visual_tokens: int | None
    timestamp_decimals: int | None
    timestamp_source: Literal["index", "pts"] | None
    frame_resize: Literal["torch", "pil"] | None
    codec_grid: Literal["video", "canvas"] | None
    codec_config: Any
    decode_backend: str | None
    video_store: Any
    patch_size: int | None
    merge_size: int | None
    temporal_patch_size: int | None


_DEFAULTS = VideoOptions()


def _codec_backend(video: Any, metadata: Any, index: int, opts: VideoOptions) -> VisualItem:
    from .codec.items import codec_backend_item  # the codec tokenizer loads on first use

    return codec_backend_item(video, metadata, index, opts)


BACKENDS: dict[str, Callable[[Any, Any, int, VideoOptions], VisualItem]] = {
    "frames": frames_item,
    "codec": _codec_backend,
}
"""``video_backend`` → the back end: ``(video, metadata, index, options) -> VisualItem``."""


def _run_backend(video: Any, metadata: Any, index: int, opts: VideoOptions) -> VisualItem:
    """Precomputed ``CodecTokens`` always take the codec path; anything else the selected back end."""
    backend = "codec" if isinstance(video, CodecTokens) else opts.video_backend
    return BACKENDS[backend](video, metadata, index, opts)


def render_video_prompt(
    info: LlavaOnevision2VideoInfo,
    *,
    image_token: str = "<|image_pad|>",
    vision_start: str = "<|vision_start|>",
    vision_end: str = "<|vision_end|>",
    decimals: int | None = None,
) -> str:
    """The text that replaces a video's ``<|vision_start|><|video_pad|><|vision_end|>`` span."""
    d = info.decimals if decimals is None else decimals
    sep = "\n" if info.newline else ""
    return "".join(
        f"<{t:.{d}f} seconds>{vision_start}{image_token * n}{vision_end}{sep}"
        for t, n in zip(info.timestamps, info.block_tokens)
    )


def _same(a: Any, b: Any) -> bool:
    """``a == b`` for option values (scalars, sequences, arrays), never raising."""
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return a is b


def _is_frame(x: Any) -> bool:
    from PIL import Image

    return isinstance(x, Image.Image) or (isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim == 3)


def flatten_video_inputs(videos: Any) -> list[Any]:
    """Flatten (possibly nested, e.g. per-conversation) video inputs into a list of single videos.

    A single video is a path / ``file://`` URL / ``PathLike``, a ``SampledFrames``, a ``CodecTokens``, a 4-D
    array or tensor of frames, or a list of frames (PIL images or 3-D arrays).
    """
    if videos is None:
        return []
    if isinstance(videos, (str, os.PathLike, SampledFrames, CodecTokens)):
        return [videos]
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim == 4:
            return [videos]
        if videos.ndim == 5:
            return list(videos)
        raise ValueError(f"a video array must be 4-D [T,H,W,C] or [T,C,H,W], got shape {tuple(videos.shape)}")
    if isinstance(videos, (list, tuple)):
        if len(videos) > 0 and all(_is_frame(v) for v in videos):
            return [list(videos)]
        out: list[Any] = []
        for v in videos:
            out.extend(flatten_video_inputs(v))
        return out
    raise ValueError(
        f"unsupported video input of type {type(videos).__name__}: expected a path, file:// URL, "
        "SampledFrames, CodecTokens, a [T,H,W,3] array or a list of frames"
    )


class LlavaOnevision2VideoProcessor(VideoProcessorMixin):
    r"""Turns videos into image-path rows, positions and prompt blocks for LLaVA-OneVision-2.

    Defaults (frames back end) follow the official evaluation of the released checkpoint: ``fps=1.0``,
    ``min_frames=4``, ``max_frames=32``, even frame count, per-frame pixels ``min_pixels=200704`` and
    ``max_pixels=1605632`` capped like ``qwen_vl_utils`` (``frame_max_pixels=602112``), bicubic+antialias
    resize, 1-decimal timestamps ``frame_index / fps``.

    Output (``BatchFeature``): ``pixel_values_videos [N, 3*p*p]`` float32, ``video_grid_thw [R, 3]`` int64 (the
    rows exactly as they go into ``image_grid_thw``), ``video_patch_positions [N, 3]`` int64 (block order) and
    ``video_metadata``: one :class:`LlavaOnevision2VideoInfo` per video (the prompt blocks).
    """

    valid_kwargs = LlavaOnevision2VideosKwargs
    model_input_names = ["pixel_values_videos", "video_grid_thw", "video_patch_positions"]

    # preprocessing (identical to the image processor)
    do_convert_rgb = True
    do_resize = True
    resample = PILImageResampling.BICUBIC
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    patch_size = _DEFAULTS.patch_size
    merge_size = _DEFAULTS.merge_size
    temporal_patch_size = _DEFAULTS.temporal_patch_size
    # sampling / layout: VideoOptions documents each and holds the defaults (one home)
    do_sample_frames = _DEFAULTS.do_sample_frames
    video_backend = _DEFAULTS.video_backend
    video_layout = _DEFAULTS.video_layout
    fps = _DEFAULTS.fps
    num_frames = _DEFAULTS.num_frames
    min_frames = _DEFAULTS.min_frames
    max_frames = _DEFAULTS.max_frames
    min_pixels = _DEFAULTS.min_pixels
    max_pixels = _DEFAULTS.max_pixels
    frame_max_pixels = _DEFAULTS.frame_max_pixels
    total_pixels = _DEFAULTS.total_pixels
    max_visual_tokens = _DEFAULTS.max_visual_tokens
    timestamp_decimals = _DEFAULTS.timestamp_decimals
    timestamp_source = _DEFAULTS.timestamp_source
    frame_resize = _DEFAULTS.frame_resize
    codec_grid = _DEFAULTS.codec_grid
    codec_config = _DEFAULTS.codec_config
    decode_backend = _DEFAULTS.decode_backend
    video_store = _DEFAULTS.video_store
    return_metadata = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_attributes(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The saved configuration; a ``video_store`` (a live object, per call) is never saved."""
        out = super().to_dict()
        out.pop("video_store", None)
        return out

    def options(self, **kwargs: Any) -> VideoOptions:
        """The validated options of a call: ``kwargs`` (not ``None``) over this processor's attributes.

        ``ProcessorMixin`` fills every ``valid_kwargs`` key with this processor's own value; those, and
        ``None``, count as not given (so a per-call ``num_frames`` is not taken as clashing with the default
        ``fps``). Any other key that is not a :class:`VideoOptions` field raises ``TypeError``.
        """
        given = {k: v for k, v in kwargs.items() if v is not None and not _same(v, getattr(self, k, None))}
        return VideoOptions.resolve(self, given, owner=type(self).__name__)

    def process_video(self, video: Any, metadata: Any = None, index: int = 0, **kwargs: Any) -> VisualItem:
        """Process a single video with the back end the options select."""
        opts = self.options(**kwargs)
        return _run_backend(video, metadata, index, opts)

    def process_one(
        self, video: Any, metadata: Any = None, index: int = 0, **kwargs: Any
    ) -> tuple[dict[str, np.ndarray], LlavaOnevision2VideoInfo]:
        """:meth:`process_video` as ``({"pixel_values", "grid", "positions"}, info)`` numpy arrays."""
        item = self.process_video(video, metadata, index, **kwargs)
        return item.as_arrays(), item.info

    def fetch_videos(self, video_url_or_urls: Any, sample_indices_fn: Any = None) -> Any:
        """Decode paths / ``file://`` URLs into ``SampledFrames`` with the frames back end (PyAV)."""
        if isinstance(video_url_or_urls, (list, tuple)):
            return [self.fetch_videos(v) for v in video_url_or_urls]
        return sample_from_file(video_url_or_urls, self.options())

    def num_visual_tokens(
        self,
        video: str | os.PathLike | None = None,
        *,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        duration: float | None = None,
        video_fps: float | None = None,
        **kwargs: Any,
    ) -> int:
        """LLM tokens a frames-back-end video will take, without decoding a single frame.

        Give a file (its stream header is read), or the frame size with ``num_frames`` sampled frames, or
        the frame size with the stream's ``duration`` and ``video_fps`` (then the frame-count rule applies).
        Serving stacks (vLLM, lmms-eval) use this to reserve placeholder tokens. The codec back end's count
        depends on the video's content: tokenize it (``CodecTokens.num_tokens``).

        Raises:
            ValueError: the codec back end, or not enough facts to count.
        """
        opts = self.options(**kwargs)
        if opts.video_backend != "frames":
            raise ValueError("num_visual_tokens counts frames videos; codec counts depend on the content")
        if video is not None:
            with open_video(video) as container:
                info = stream_info(container, probe_rotation=False)
            height, width, total, video_fps = info.height, info.width, info.total_frames, info.fps
        elif duration is not None and video_fps is not None:
            total = round(duration * video_fps)
        else:
            total = None
        if height is None or width is None:
            raise ValueError("num_visual_tokens needs a video file or height= and width=")
        if num_frames is None:
            if total is None or not video_fps:
                raise ValueError(
                    "num_visual_tokens needs num_frames=, or duration= and video_fps=, or a file"
                )
            num_frames = count_frames(int(total), float(video_fps), **opts.frame_rule)
        return frames_num_tokens(int(num_frames), int(height), int(width), opts)

    def preprocess(self, videos: Any, **kwargs: Any) -> BatchFeature:
        """Process one or several videos (see the class docstring for inputs and outputs)."""
        video_metadata = kwargs.pop("video_metadata", None)
        return_tensors = kwargs.pop("return_tensors", None)
        return_metadata = kwargs.pop("return_metadata", None)
        opts = self.options(**kwargs)
        items = flatten_video_inputs(videos)
        metas: Sequence[Any]
        if video_metadata is None:
            metas = [None] * len(items)
        elif isinstance(video_metadata, (list, tuple)):
            metas = list(video_metadata)
            if len(metas) != len(items):
                raise ValueError(f"got {len(metas)} video_metadata entries for {len(items)} videos")
        else:
            metas = [video_metadata] * len(items)
        done = [_run_backend(v, m, i, opts) for i, (v, m) in enumerate(zip(items, metas))]
        width = 3 * opts.patch_size**2
        data: dict[str, Any] = {
            "pixel_values_videos": np.concatenate([d.pixel_values for d in done])
            if done
            else np.zeros((0, width), np.float32),
            "video_grid_thw": np.concatenate([d.grid_thw for d in done])
            if done
            else np.zeros((0, 3), np.int64),
            "video_patch_positions": np.concatenate([d.patch_positions for d in done])
            if done
            else np.zeros((0, 3), np.int64),
        }
        if self.return_metadata if return_metadata is None else return_metadata:
            data["video_metadata"] = [d.info for d in done]
        return BatchFeature(data=data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])

"""Video processor of LLaVA-OneVision-2 (frames and codec back ends), without torchvision.

Every video is rewritten onto the model's *image* path: the output rows go into ``pixel_values``,
``image_grid_thw`` and ``patch_positions`` like images, and the prompt gets one text block per frame (frames
back end) or per run of equal source frame (codec back end)::

    <{t:.1f} seconds><|vision_start|><|image_pad|>*n<|vision_end|>

Two layouts (``video_layout``; spec README §2, architecture.md A5/A6):

* ``"release"`` (default, what the official evaluation feeds the released checkpoint): frames are separate
  image rows ``[1, h, w]`` with ``t = 0`` positions, an even frame count (the last frame is repeated) and no
  newline between frame blocks. Codec canvases form ONE ``[N_canvas, h, w]`` row per video with source-frame
  positions and a newline after each run.
* ``"training"``: frames form one ``[T, h, w]`` row with ``t`` = source frame index and a newline after every
  frame block. Codec output is the same as in ``"release"``.

The class derives from ``VideoProcessorMixin`` through its module path (``transformers.VideoProcessorMixin``
is not exported without torchvision) and overrides ``preprocess`` entirely: decoding uses PyAV (via
``codec.uniform``) and frame resizing uses ``torch.nn.functional.interpolate`` (bicubic, antialias) or PIL.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.utils import logging
from transformers.video_processing_utils import VideoProcessorMixin

from .errors import VideoDecodeError
from .image_processing_llava_onevision2 import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    LlavaOnevision2ImageProcessor,
    build_patch_positions,
    smart_resize,
)
from .video_types import CodecTokens, SampledFrames

__all__ = [
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

logger = logging.get_logger(__name__)

DEFAULT_FRAME_MAX_PIXELS = 768 * 28 * 28
"""602112: ``qwen_vl_utils``' per-frame cap (VIDEO_MAX_TOKEN_NUM * 28²) that the official evaluation applies."""
DEFAULT_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)
"""90316800: ``qwen_vl_utils``' whole-video pixel budget (MODEL_SEQ_LEN * 28² * 0.9)."""


class LlavaOnevision2VideosKwargs(VideosKwargs, total=False):
    """Per-call video options (all also settable at construction and saved with ``save_pretrained``).

    Attributes:
        video_backend: ``"frames"`` (uniform sampling) or ``"codec"`` (codec-stream canvases).
        video_layout: ``"release"`` or ``"training"`` (see the module docstring).
        min_frames / max_frames: frame-count bounds of the frames back end.
        min_pixels / max_pixels: per-frame pixel budget of the frames back end.
        frame_max_pixels / total_pixels: ``qwen_vl_utils``' per-frame cap and whole-video budget; the
            effective per-frame maximum is ``min(max_pixels, max(min(frame_max_pixels, total_pixels / T * 2),
            1.05 * min_pixels))`` as in the official evaluation.
        max_visual_tokens: LLM-token budget per video (frames: caps the per-frame pixels; codec: forwarded to
            the codec tokenizer).
        timestamp_decimals: decimals of the ``<t seconds>`` tags (1; JumpScore uses 2).
        timestamp_source: ``"index"`` (``frame_index / fps``, the release convention) or ``"pts"``.
        frame_resize: ``"torch"`` (bicubic+antialias, = torchvision/qwen_vl_utils) or ``"pil"`` (= image path).
        codec_grid: ``"video"`` (one ``[N, h, w]`` row per video) or ``"canvas"`` (``[1, h, w]`` per canvas).
        codec_config: a ``CodecConfig`` or a dict of its fields, for the codec back end.
        decode_backend: frame decoder of the frames back end (``"pyav"``; ``"decord"`` if installed).
        video_store: a ``transformers_llava_ov2.store.VideoStore``: video paths are looked up there (and
            tokenized + stored on a miss) instead of always being tokenized; pass it per call.
    """

    video_backend: Literal["frames", "codec"] | None
    video_layout: Literal["release", "training"] | None
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


@dataclass
class LlavaOnevision2VideoInfo:
    """How one processed video is laid out (returned under ``video_metadata``).

    Attributes:
        source: path or description of the input.
        backend: ``"frames"`` or ``"codec"``.
        layout: ``"release"`` or ``"training"``.
        timestamps: seconds of each text block (one per frame, or per codec run).
        block_tokens: merged LLM tokens of each text block.
        newline: whether a ``\\n`` follows each block.
        grid_thw: the video's grid rows, as they go into ``image_grid_thw``.
        num_patches: pixel rows of the video.
        frame_indices: source frame index of each frame (frames) or of each run (codec).
        fps: the stream's frame rate.
        decimals: timestamp decimals used for the prompt.
        extra: back-end details (e.g. ``{"padded_frames": 1}``).
    """

    source: str
    backend: str
    layout: str
    timestamps: list[float]
    block_tokens: list[int]
    newline: bool
    grid_thw: list[list[int]]
    num_patches: int
    frame_indices: list[int]
    fps: float
    decimals: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(sum(self.block_tokens))


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


def frame_pixel_budget(
    num_frames: int,
    *,
    min_pixels: int,
    max_pixels: int,
    frame_max_pixels: int | None = DEFAULT_FRAME_MAX_PIXELS,
    total_pixels: int | None = DEFAULT_TOTAL_PIXELS,
    max_visual_tokens: int | None = None,
    factor: int = 28,
) -> tuple[int, int]:
    """Per-frame ``(min_pixels, max_pixels)`` for ``smart_resize``, as ``qwen_vl_utils.fetch_video`` computes it.

    ``frame_max_pixels`` / ``total_pixels`` set to ``0`` (or ``None``) disable the ``qwen_vl_utils`` caps (then only
    ``max_pixels`` applies). ``max_visual_tokens`` further caps each frame at ``budget // T`` merged tokens.
    """
    cap = max_pixels
    if frame_max_pixels or total_pixels:
        qcap = frame_max_pixels if frame_max_pixels else math.inf
        if total_pixels:
            qcap = min(qcap, total_pixels / max(num_frames, 1) * 2)
        cap = min(max_pixels, max(qcap, int(min_pixels * 1.05)))
    if max_visual_tokens is not None:
        per_frame = max(1, max_visual_tokens // max(num_frames, 1))
        cap = min(cap, per_frame * factor * factor)
    cap = max(int(cap), factor * factor)
    return min(min_pixels, cap), cap


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``uint8 [T, H, W, 3]`` frames like torchvision's ``resize(BICUBIC, antialias=True)`` on uint8.

    Float32 ``interpolate(mode="bicubic", align_corners=False, antialias=True)``, clamp to [0, 255], round,
    back to uint8 (torchvision's uint8 bicubic path; what ``qwen_vl_utils`` uses). Same size: returned as is.
    Frames go through ``interpolate`` one at a time (identical values, each output element is computed
    the same way; a 720p frame's float32 buffers stay cache-sized, about 2x faster than one batched call).
    """
    if frames.shape[1:3] == (height, width):
        return frames
    resizer = _FrameResizer(frames.shape[1], frames.shape[2], height, width)
    out = np.empty((frames.shape[0], height, width, frames.shape[3]), dtype=np.uint8)
    for i in range(frames.shape[0]):
        out[i] = resizer(frames[i]).transpose(1, 2, 0)
    return out


class _FrameResizer:
    """Resizes single ``uint8 [H, W, C]`` frames to ``int32 [C, h, w]`` (values 0..255) like :func:`resize_frames`.

    The input buffers are allocated once and reused: a numpy transpose-copy into ``uint8 [C, H, W]`` then a
    same-layout uint8 -> float32 copy (together cheaper than one permuting converting copy); the result is
    converted to int32, which ``np.take`` (the lookup-table normalisation) indexes faster than uint8.
    """

    def __init__(self, in_height: int, in_width: int, height: int, width: int, channels: int = 3) -> None:
        self.size = (height, width)
        self.u8 = np.empty((channels, in_height, in_width), dtype=np.uint8)
        self.x = torch.empty((1, channels, in_height, in_width), dtype=torch.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        np.copyto(self.u8, frame.transpose(2, 0, 1))
        with torch.no_grad():
            self.x[0].copy_(torch.from_numpy(self.u8))
            y = torch.nn.functional.interpolate(
                self.x, size=self.size, mode="bicubic", align_corners=False, antialias=True
            )
            y = y.clamp_(0, 255).round_().to(torch.int32)
        return y[0].numpy()


class _FramePool:
    """Runs per-frame jobs ``worker(*args)`` on ``torch.get_num_threads()`` Python threads (context manager).

    Each thread gets its own worker (own buffers) from ``make_worker`` and takes the next frame when it is
    done with one; torch runs single-threaded inside the block. The heavy steps (``interpolate``, PIL
    ``resize``, ``np.take``, ``np.copyto``, and PyAV decoding in the caller's thread) release the GIL, so
    this uses the cores like torch's own intra-op threads on a quiet machine, but without OpenMP barriers
    per operation: when another process holds a core, the other thread just takes more frames instead of
    every operation waiting for the descheduled thread. With one thread, jobs run inline in ``submit``.
    On leaving the block all jobs have finished; the first job error is raised.
    """

    def __init__(self, make_worker: Callable[[], Callable[..., None]], jobs: int) -> None:
        self.make_worker = make_worker
        self.workers = max(1, min(jobs, torch.get_num_threads()))
        self._old_threads = 0
        self._futures: list[Any] = []

    def __enter__(self) -> _FramePool:
        self._old_threads = torch.get_num_threads()
        if self._old_threads != 1:
            torch.set_num_threads(1)
        self._local = threading.local()
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="llava-ov2-frames")
            if self.workers > 1
            else None
        )
        return self

    def _run(self, *args: Any) -> None:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            worker = self._local.worker = self.make_worker()
        worker(*args)

    def submit(self, *args: Any) -> None:
        if self._pool is None:
            self._run(*args)
        else:
            self._futures.append(self._pool.submit(self._run, *args))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
                if exc_type is None:
                    for future in self._futures:
                        future.result()
        finally:
            self._futures = []
            if self._old_threads != 1:
                torch.set_num_threads(self._old_threads)


def _normalization_lut(
    channels: int,
    *,
    rescale_factor: float,
    image_mean: Sequence[float],
    image_std: Sequence[float],
    do_rescale: bool,
    do_normalize: bool,
) -> np.ndarray:
    """``float32 [C, 256]``: the image processor's rescale + normalise of every uint8 value, per channel.

    Same arithmetic as ``Qwen2VLImageProcessorPil``: float64 rescale then float32 cast, float32
    ``(x - mean) / std``.
    """
    values = np.arange(256, dtype=np.float64)
    values = (values * rescale_factor).astype(np.float32) if do_rescale else values.astype(np.float32)
    if do_normalize:
        mean = np.asarray(image_mean, dtype=np.float32)
        std = np.asarray(image_std, dtype=np.float32)
        lut = (values[None, :] - mean[:, None]) / std[:, None]  # [3, 256] float32
    else:
        lut = values[None, :]
    return np.ascontiguousarray(np.broadcast_to(lut, (channels, 256)), dtype=np.float32)


class _PatchWriter:
    """Writes one ``uint8 [C, H, W]`` frame (any strides) as normalised merge-block rows into an output slice.

    Per channel one ``np.take`` through the lookup table into a reused ``float32 [C, H, W]`` buffer, then
    one strided copy into the ``[gh*gw, C*p*p]`` rows (row order ``(h-block, w-block, h-in, w-in)``, column
    order ``(C, p, p)``, like ``Qwen2VLImageProcessorPil.patchify``).
    """

    def __init__(self, lut: np.ndarray, height: int, width: int, patch_size: int, merge_size: int) -> None:
        c, p, m = lut.shape[0], patch_size, merge_size
        if height % (p * m) or width % (p * m):
            raise ValueError(f"frames of {height}x{width} are not multiples of patch*merge={p * m}")
        gh, gw = height // p, width // p
        self.lut = lut
        self.rows = gh * gw
        self.buf = np.empty((c, height, width), dtype=np.float32)
        self.blocks = self.buf.reshape(c, gh // m, m, p, gw // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
        self.shape = (gh // m, gw // m, m, m, c, p, p)

    def __call__(self, planes: np.ndarray, out: np.ndarray) -> None:
        for ch in range(self.lut.shape[0]):
            np.take(self.lut[ch], planes[ch], out=self.buf[ch], mode="clip")
        np.copyto(out.reshape(self.shape), self.blocks)


def normalize_and_patchify(
    frames: np.ndarray,
    *,
    patch_size: int,
    merge_size: int,
    rescale_factor: float,
    image_mean: Sequence[float],
    image_std: Sequence[float],
    do_rescale: bool = True,
    do_normalize: bool = True,
) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` frames to ``float32 [T*gh*gw, 3*p*p]`` rows in merge-block order.

    Bit-identical to ``LlavaOnevision2ImageProcessor(do_resize=False)`` frame by frame (same float64 rescale
    then float32 cast, same float32 ``(x - mean) / std``), but done with a 256-entry lookup table per channel
    written straight into the output rows, which is several times faster for long videos.
    """
    t, h, w, c = frames.shape
    lut = _normalization_lut(
        c,
        rescale_factor=rescale_factor,
        image_mean=image_mean,
        image_std=image_std,
        do_rescale=do_rescale,
        do_normalize=do_normalize,
    )
    writer = _PatchWriter(lut, h, w, patch_size, merge_size)
    rows = writer.rows
    out = np.empty((t * rows, c * patch_size * patch_size), dtype=np.float32)
    for i in range(t):
        writer(frames[i].transpose(2, 0, 1), out[i * rows : (i + 1) * rows])
    return out


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


def _frames_to_uint8_thwc(video: Any, source: str) -> np.ndarray:
    """A 4-D array/tensor or a list of frames as ``uint8 [T, H, W, 3]``."""
    from PIL import Image

    if isinstance(video, list):
        video = np.stack(
            [np.asarray(f.convert("RGB")) if isinstance(f, Image.Image) else np.asarray(f) for f in video]
        )
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    arr = np.asarray(video)
    if arr.ndim != 4:
        raise ValueError(f"video {source}: expected 4-D frames, got shape {arr.shape}")
    if arr.shape[-1] not in (1, 3) and arr.shape[1] in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] != 3:
        raise ValueError(f"video {source}: expected 3 colour channels, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _metadata_get(meta: Any, key: str) -> Any:
    if meta is None:
        return None
    if isinstance(meta, dict):
        return meta.get(key)
    return getattr(meta, key, None)


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
    patch_size = 14
    merge_size = 2
    temporal_patch_size = 1
    # sampling / layout
    do_sample_frames = True
    video_backend = "frames"
    video_layout = "release"
    fps = 1.0
    num_frames = None
    min_frames = 4
    max_frames = 32
    min_pixels = DEFAULT_MIN_PIXELS
    max_pixels = DEFAULT_MAX_PIXELS
    frame_max_pixels = DEFAULT_FRAME_MAX_PIXELS
    total_pixels = DEFAULT_TOTAL_PIXELS
    max_visual_tokens = None
    timestamp_decimals = 1
    timestamp_source = "index"
    frame_resize = "torch"
    codec_grid = "video"
    codec_config = None
    decode_backend = "pyav"
    video_store = None
    return_metadata = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_attributes(**kwargs)

    # ------------------------------------------------------------------ options
    def _resolve(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        names = set(self.valid_kwargs.__annotations__)
        unknown = set(kwargs) - names - {"return_tensors"}
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments: {sorted(unknown)}")
        opts = {k: (kwargs[k] if kwargs.get(k) is not None else getattr(self, k, None)) for k in names}
        opts["return_tensors"] = kwargs.get("return_tensors")
        if opts["video_backend"] not in ("frames", "codec"):
            raise ValueError(f"video_backend must be 'frames' or 'codec', got {opts['video_backend']!r}")
        if opts["video_layout"] not in ("release", "training"):
            raise ValueError(f"video_layout must be 'release' or 'training', got {opts['video_layout']!r}")
        if opts["temporal_patch_size"] != 1:
            raise ValueError("LLaVA-OneVision-2 uses temporal_patch_size=1 (2-D patch embedding)")
        return opts

    def _image_processor(self, opts: dict[str, Any]) -> LlavaOnevision2ImageProcessor:
        return LlavaOnevision2ImageProcessor(
            do_convert_rgb=False,
            resample=opts["resample"],
            do_rescale=opts["do_rescale"],
            rescale_factor=opts["rescale_factor"],
            do_normalize=opts["do_normalize"],
            image_mean=opts["image_mean"],
            image_std=opts["image_std"],
            patch_size=opts["patch_size"],
            merge_size=opts["merge_size"],
            temporal_patch_size=1,
        )

    def _normalize_and_patchify(self, frames: np.ndarray, opts: dict[str, Any]) -> np.ndarray:
        return normalize_and_patchify(
            frames,
            patch_size=opts["patch_size"],
            merge_size=opts["merge_size"],
            rescale_factor=opts["rescale_factor"],
            image_mean=opts["image_mean"],
            image_std=opts["image_std"],
            do_rescale=bool(opts["do_rescale"]),
            do_normalize=bool(opts["do_normalize"]),
        )

    # ------------------------------------------------------------------ decoding
    def fetch_videos(self, video_url_or_urls: Any, sample_indices_fn: Any = None) -> Any:
        """Decode paths / ``file://`` URLs into ``SampledFrames`` with the frames back end (PyAV)."""
        if isinstance(video_url_or_urls, (list, tuple)):
            return [self.fetch_videos(v) for v in video_url_or_urls]
        opts = self._resolve({})
        return self._sample_from_file(video_url_or_urls, opts)

    def _sample_from_file(self, source: Any, opts: dict[str, Any]) -> SampledFrames:
        from .video.uniform import sample_uniform_frames

        sample = (
            sample_uniform_frames
            if opts["video_store"] is None
            else opts["video_store"].sample_uniform_frames
        )
        return sample(
            source,
            fps=None if opts["num_frames"] is not None else opts["fps"],
            num_frames=opts["num_frames"],
            min_frames=opts["min_frames"],
            max_frames=opts["max_frames"],
            frame_factor=2,
            backend=opts["decode_backend"],
        )

    def _frames_from_array(self, video: Any, meta: Any, opts: dict[str, Any], index: int) -> SampledFrames:
        source = f"<video array {index}>"
        frames = _frames_to_uint8_thwc(video, source)
        fps = _metadata_get(meta, "fps")
        indices = _metadata_get(meta, "frames_indices")
        total = _metadata_get(meta, "total_num_frames")
        if fps is None:
            fps = float(opts["fps"] or 1.0) if indices is None else 1.0
            logger.warning_once(
                "A decoded video was passed without `video_metadata` fps; its frames are taken as sampled at "
                f"{fps} frame(s) per second for the <t seconds> tags. Pass video_metadata={{'fps': ...}} for "
                "correct timestamps."
            )
        fps = float(fps)
        if indices is None:
            indices = np.arange(frames.shape[0], dtype=np.int64)
            if opts["do_sample_frames"] and opts["video_backend"] == "frames" and meta is not None:
                keep = self._sample_array_indices(frames.shape[0], fps, opts)
                frames, indices = frames[keep], indices[keep]
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) != frames.shape[0]:
            raise ValueError(f"video {source}: {frames.shape[0]} frames but {len(indices)} frames_indices")
        total = int(total) if total is not None else int(indices.max()) + 1 if len(indices) else 0
        return SampledFrames(
            frames=frames,
            frame_indices=indices,
            timestamps=indices / fps,
            fps=fps,
            total_frames=total,
            duration=total / fps if fps else 0.0,
            source=source,
        )

    def _sample_array_indices(self, total: int, video_fps: float, opts: dict[str, Any]) -> np.ndarray:
        from .video.frame_count import compute_num_frames, sample_indices

        n = compute_num_frames(
            total,
            video_fps,
            fps=None if opts["num_frames"] is not None else opts["fps"],
            num_frames=opts["num_frames"],
            min_frames=opts["min_frames"],
            max_frames=opts["max_frames"],
            frame_factor=2,
        )
        return np.asarray(sample_indices(total, n), dtype=np.int64)

    # ------------------------------------------------------------------ back ends
    def _frame_geometry(
        self, n: int, height: int, width: int, opts: dict[str, Any]
    ) -> tuple[int, int, int, int, int]:
        """``(padded, h, w, min_px, max_px)`` of ``n`` decoded ``height x width`` frames."""
        padded = int(opts["video_layout"] == "release" and n % 2)  # release: even count, last frame repeated
        factor = opts["patch_size"] * opts["merge_size"]
        min_px, max_px = frame_pixel_budget(
            n + padded,
            min_pixels=int(opts["min_pixels"]),
            max_pixels=int(opts["max_pixels"]),
            frame_max_pixels=opts["frame_max_pixels"],
            total_pixels=opts["total_pixels"],
            max_visual_tokens=opts["max_visual_tokens"],
            factor=factor,
        )
        h, w = smart_resize(height, width, factor=factor, min_pixels=min_px, max_pixels=max_px)
        return padded, h, w, min_px, max_px

    def _process_frames(
        self, sf: SampledFrames, opts: dict[str, Any], pixels: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], LlavaOnevision2VideoInfo]:
        frames, indices = sf.frames, np.asarray(sf.frame_indices, dtype=np.int64)
        seconds = (
            indices / sf.fps
            if opts["timestamp_source"] == "index"
            else np.asarray(sf.timestamps, dtype=np.float64)
        )
        if frames.shape[0] == 0:
            raise VideoDecodeError(sf.source, "no frames were decoded")
        release = opts["video_layout"] == "release"
        padded, h, w, min_px, max_px = self._frame_geometry(
            frames.shape[0], frames.shape[1], frames.shape[2], opts
        )
        if padded:
            indices = np.concatenate([indices, indices[-1:]])
            seconds = np.concatenate([seconds, seconds[-1:]])
        t = frames.shape[0] + padded
        m, p = opts["merge_size"], opts["patch_size"]
        if pixels is None:
            pixels = self._resize_and_patchify(frames, h, w, min_px, max_px, padded, opts)
        gh, gw = h // p, w // p
        per_frame = gh * gw // (m * m)
        if release:
            grid = [[1, gh, gw]] * t
            positions = build_patch_positions(grid, m)
        else:
            grid = [[t, gh, gw]]
            positions = build_patch_positions(grid, m, frame_indices=[indices])
        info = LlavaOnevision2VideoInfo(
            source=str(sf.source),
            backend="frames",
            layout=opts["video_layout"],
            timestamps=[float(s) for s in seconds],
            block_tokens=[per_frame] * t,
            newline=not release,
            grid_thw=[list(r) for r in grid],
            num_patches=int(pixels.shape[0]),
            frame_indices=[int(i) for i in indices],
            fps=float(sf.fps),
            decimals=int(opts["timestamp_decimals"]),
            extra={"padded_frames": padded, "frame_size": (h, w), "pixel_budget": (min_px, max_px)},
        )
        return {
            "pixel_values": pixels,
            "grid": np.asarray(grid, dtype=np.int64),
            "positions": positions,
        }, info

    def _frame_job(
        self, in_height: int, in_width: int, n: int, h: int, w: int, padded: int, opts: dict[str, Any]
    ) -> tuple[np.ndarray, Callable[[], Callable[[np.ndarray, Sequence[int]], None]]] | None:
        """Output rows and a per-thread worker factory for ``n`` (+ ``padded``) frames resized to ``h x w``.

        Returns ``(out, make_worker)``; ``make_worker()(frame, slots)`` resizes one ``uint8
        [H, W, 3]`` frame (torch bicubic+antialias, or PIL exactly like the image processor), normalises it
        through the lookup table straight into the rows of ``slots[0]`` and copies them to the other slots.
        ``None`` when the image processor has to do the work (``frame_resize="pil"`` with a non-PIL
        ``resample``). Values are identical to ``resize_frames`` + ``normalize_and_patchify`` (torch) and to
        ``LlavaOnevision2ImageProcessor`` (pil).
        """
        mode = opts["frame_resize"]
        if mode not in ("torch", "pil"):
            raise ValueError(f"frame_resize must be 'torch' or 'pil', got {mode!r}")
        resample = opts["resample"]
        if mode == "pil" and not isinstance(resample, int):
            return None
        c = 3
        lut = _normalization_lut(
            c,
            rescale_factor=opts["rescale_factor"],
            image_mean=opts["image_mean"],
            image_std=opts["image_std"],
            do_rescale=bool(opts["do_rescale"]),
            do_normalize=bool(opts["do_normalize"]),
        )
        p, m = opts["patch_size"], opts["merge_size"]
        if h % (p * m) or w % (p * m):
            raise ValueError(f"frames of {h}x{w} are not multiples of patch*merge={p * m}")
        rows = (h // p) * (w // p)
        out = np.empty(((n + padded) * rows, c * p * p), dtype=np.float32)
        if mode == "pil":
            from PIL import Image

            def pil_planes(frame: np.ndarray) -> np.ndarray:
                # = the image processor: PIL image of the HWC frame, resize((w, h), resample, reducing_gap=None)
                resized = Image.fromarray(frame).resize((w, h), resample=resample, reducing_gap=None)
                return np.asarray(resized).transpose(2, 0, 1)

            def make_planes() -> Any:
                return pil_planes

        elif (in_height, in_width) == (h, w):

            def make_planes() -> Any:
                return lambda frame: frame.transpose(2, 0, 1)

        else:

            def make_planes() -> Any:
                return _FrameResizer(in_height, in_width, h, w, c)

        def make_worker() -> Callable[[np.ndarray, Sequence[int]], None]:
            planes = make_planes()
            writer = _PatchWriter(lut, h, w, p, m)

            def work(frame: np.ndarray, slots: Sequence[int]) -> None:
                first = out[slots[0] * rows : (slots[0] + 1) * rows]
                writer(planes(frame), first)
                for j in slots[1:]:
                    out[j * rows : (j + 1) * rows] = first

            return work

        return out, make_worker

    def _resize_and_patchify(
        self,
        frames: np.ndarray,
        h: int,
        w: int,
        min_px: int,
        max_px: int,
        padded: int,
        opts: dict[str, Any],
    ) -> np.ndarray:
        """``float32 [(T + padded) * gh * gw, 3*p*p]`` rows of ``uint8 [T, H, W, 3]`` frames resized to ``h x w``."""
        n = frames.shape[0]
        job = self._frame_job(frames.shape[1], frames.shape[2], n, h, w, padded, opts)
        if job is None:
            frames = np.concatenate([frames, frames[-1:]], axis=0) if padded else frames
            out = self._image_processor(opts)(
                list(frames), do_resize=True, min_pixels=min_px, max_pixels=max_px, return_tensors=None
            )
            return np.asarray(out["pixel_values"], dtype=np.float32)
        out, make_worker = job
        with _FramePool(make_worker, n) as pool:
            for i in range(n):
                pool.submit(frames[i], (i, n) if padded and i == n - 1 else (i,))
        return out

    def _process_file(
        self, source: Any, opts: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], LlavaOnevision2VideoInfo]:
        """Frames back end from a file: decoding and per-frame preprocessing overlap (PyAV).

        The indices and the frame geometry are planned before decoding; every sampled frame goes to the frame
        pool as soon as PyAV has converted it. Same frames, same values as ``_sample_from_file`` +
        ``_process_frames``, which is what a truncated stream (resampled) or another decoder falls back to.
        """
        from .video.readers import TruncatedVideoError, read_frames
        from .video.uniform import plan_uniform_frames

        if opts["decode_backend"] != "pyav" or opts["video_store"] is not None:
            return self._process_frames(self._sample_from_file(source, opts), opts)
        indices, sinfo = plan_uniform_frames(
            source,
            fps=None if opts["num_frames"] is not None else opts["fps"],
            num_frames=opts["num_frames"],
            min_frames=opts["min_frames"],
            max_frames=opts["max_frames"],
            frame_factor=2,
        )
        n = len(indices)
        padded, h, w, _, _ = self._frame_geometry(n, sinfo.height, sinfo.width, opts)
        job = self._frame_job(sinfo.height, sinfo.width, n, h, w, padded, opts)
        if job is None:
            return self._process_frames(self._sample_from_file(source, opts), opts)
        out, make_worker = job
        slots: dict[int, list[int]] = {}
        for j, i in enumerate(indices.tolist()):
            slots.setdefault(i, []).append(j)
        if padded:
            slots[int(indices[-1])].append(n)
        try:
            with _FramePool(make_worker, n) as pool:
                sf, _ = read_frames(source, indices, on_frame=lambda i, rgb: pool.submit(rgb, slots[i]))
        except TruncatedVideoError:
            return self._process_frames(self._sample_from_file(source, opts), opts)
        if sf.frames.shape[1:3] != (sinfo.height, sinfo.width):  # not expected: recompute from the frames
            return self._process_frames(sf, opts)
        return self._process_frames(sf, opts, pixels=out)

    def _codec_tokens(self, source: Any, opts: dict[str, Any]) -> CodecTokens:
        from .codec import tokenize_video

        cfg = opts["codec_config"]
        overrides: dict[str, Any] = {}
        if isinstance(cfg, dict):
            overrides.update(cfg)
            cfg = None
        if cfg is None:  # canvases must fit the model: default to the processor's patch/merge
            overrides.setdefault("patch_size", int(opts["patch_size"]))
            overrides.setdefault("merge_size", int(opts["merge_size"]))
        if opts["max_visual_tokens"] is not None:
            overrides["max_visual_tokens"] = int(opts["max_visual_tokens"])
        tokenize = tokenize_video if opts["video_store"] is None else opts["video_store"].tokenize_video
        return tokenize(source, cfg, **overrides)

    def _process_codec(
        self, ct: CodecTokens, opts: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], LlavaOnevision2VideoInfo]:
        m, p = opts["merge_size"], opts["patch_size"]
        if ct.patch_size != p or ct.merge_size != m:
            raise ValueError(
                f"codec tokens of {ct.source!r} were cut for patch {ct.patch_size} / merge {ct.merge_size}, "
                f"but the processor uses patch {p} / merge {m}"
            )
        if ct.num_canvases == 0:
            raise VideoDecodeError(ct.source, "the codec tokenizer produced no canvases")
        pixels = self._normalize_and_patchify(ct.canvases, opts)
        if pixels.shape[0] != ct.num_patches:
            raise ValueError(
                f"codec canvases of {ct.source!r} gave {pixels.shape[0]} patches, expected {ct.num_patches}"
            )
        positions = np.asarray(ct.block_positions(), dtype=np.int64)
        gh, gw = ct.grid_hw
        grid = (
            [[ct.num_canvases, gh, gw]] if opts["codec_grid"] == "video" else [[1, gh, gw]] * ct.num_canvases
        )
        # runs of equal source frame over merged tokens, in block order
        m2 = m * m
        order = ct.block_order()
        t_merged = positions[::m2, 0]
        ts_merged = np.asarray(ct.token_timestamps, dtype=np.float64)[order][::m2]
        starts = [0, *[i for i in range(1, len(t_merged)) if t_merged[i] != t_merged[i - 1]]]
        ends = [*starts[1:], len(t_merged)]
        if opts["timestamp_source"] == "index" and ct.fps:
            seconds = [float(t_merged[s]) / ct.fps for s in starts]
        else:
            seconds = [float(ts_merged[s]) for s in starts]
        info = LlavaOnevision2VideoInfo(
            source=str(ct.source),
            backend="codec",
            layout=opts["video_layout"],
            timestamps=seconds,
            block_tokens=[e - s for s, e in zip(starts, ends)],
            newline=True,
            grid_thw=[list(r) for r in grid],
            num_patches=int(pixels.shape[0]),
            frame_indices=[int(t_merged[s]) for s in starts],
            fps=float(ct.fps),
            decimals=int(opts["timestamp_decimals"]),
            extra={"num_canvases": ct.num_canvases, "codec_grid": opts["codec_grid"]},
        )
        return {
            "pixel_values": pixels,
            "grid": np.asarray(grid, dtype=np.int64),
            "positions": positions,
        }, info

    def process_one(
        self, video: Any, metadata: Any = None, index: int = 0, **kwargs: Any
    ) -> tuple[dict[str, np.ndarray], LlavaOnevision2VideoInfo]:
        """Process a single video; returns numpy ``pixel_values``/``grid``/``positions`` and its layout info."""
        opts = self._resolve(kwargs)
        return self._process_one(video, metadata, index, opts)

    def _process_one(
        self, video: Any, metadata: Any, index: int, opts: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], LlavaOnevision2VideoInfo]:
        if isinstance(video, CodecTokens):
            return self._process_codec(video, opts)
        if isinstance(video, SampledFrames):
            if opts["video_backend"] == "codec":
                raise ValueError(
                    f"video {video.source!r} is already decoded frames (SampledFrames); the codec back end needs a "
                    "file path or CodecTokens"
                )
            return self._process_frames(video, opts)
        if isinstance(video, (str, os.PathLike)):
            if opts["video_backend"] == "codec":
                return self._process_codec(self._codec_tokens(video, opts), opts)
            return self._process_file(video, opts)
        if opts["video_backend"] == "codec":
            raise ValueError(
                f"video {index}: the codec back end needs a file path or CodecTokens, got decoded frames"
            )
        return self._process_frames(self._frames_from_array(video, metadata, opts, index), opts)

    def preprocess(self, videos: Any, **kwargs: Any) -> BatchFeature:
        """Process one or several videos (see the class docstring for inputs and outputs)."""
        video_metadata = kwargs.pop("video_metadata", None)
        opts = self._resolve(kwargs)
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
        pixels, grids, positions, infos = [], [], [], []
        for i, (video, meta) in enumerate(zip(items, metas)):
            arrays, info = self._process_one(video, meta, i, opts)
            pixels.append(arrays["pixel_values"])
            grids.append(arrays["grid"])
            positions.append(arrays["positions"])
            infos.append(info)
        width = 3 * opts["patch_size"] ** 2
        data = {
            "pixel_values_videos": np.concatenate(pixels) if pixels else np.zeros((0, width), np.float32),
            "video_grid_thw": np.concatenate(grids) if grids else np.zeros((0, 3), np.int64),
            "video_patch_positions": np.concatenate(positions) if positions else np.zeros((0, 3), np.int64),
        }
        if opts["return_metadata"]:
            data["video_metadata"] = infos
        return BatchFeature(
            data=data, tensor_type=opts["return_tensors"], skip_tensor_conversion=["video_metadata"]
        )

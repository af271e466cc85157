"""The ``frames`` back end: uniformly sampled frames → patch rows, positions and prompt blocks.

Inputs: a file (decoding and per-frame preprocessing overlap: :func:`file_item`), decoded
:class:`~..video_types.SampledFrames` (:func:`sampled_frames_item`) or an in-memory array / list of frames
with optional metadata (:func:`frames_from_array`). Output: a :class:`~..video_types.VisualItem`.

Rules (each coded once, here): the per-frame pixel budget (:func:`frame_pixel_budget`, ``qwen_vl_utils``'
``fetch_video``), the release layout's even frame count (:func:`padded_frames`), the frame geometry
(:func:`frame_geometry`) and the visual-token count of a frames video without decoding pixels
(:func:`frames_num_tokens`). Pixel values are bit-identical to ``LlavaOnevision2ImageProcessor`` frame by
frame. See ``docs/processor.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from ..errors import VideoDecodeError
from ..image_processing_llava_onevision2 import (
    LlavaOnevision2ImageProcessor,
    build_patch_positions,
    smart_resize,
)
from ..video_types import LlavaOnevision2VideoInfo, SampledFrames, VisualItem
from .kernels import FramePool, FrameResizer, PatchWriter, normalization_lut
from .options import DEFAULT_FRAME_MAX_PIXELS, DEFAULT_TOTAL_PIXELS, VideoOptions

__all__ = [
    "file_item",
    "frame_geometry",
    "frame_pixel_budget",
    "frames_from_array",
    "frames_item",
    "frames_num_tokens",
    "frames_to_uint8_thwc",
    "padded_frames",
    "sample_from_file",
    "sampled_frames_item",
]

logger = logging.get_logger(__name__)


def padded_frames(num_frames: int, layout: str) -> int:
    """Frames the layout appends: ``1`` for an odd count in ``"release"`` (last frame repeated), else ``0``."""
    return int(layout == "release" and num_frames % 2)


def _frames_grid(
    layout: str, indices: np.ndarray, gh: int, gw: int, merge: int
) -> tuple[list[list[int]], np.ndarray]:
    """Grid rows and positions of ``T`` frames of ``gh x gw`` patches, by layout.

    ``"release"``: one ``[1, gh, gw]`` row per frame, ``t = 0`` (the official evaluation: frames fed as
    images); ``"training"``: one ``[T, gh, gw]`` row, ``t`` = source frame index; ``"processor"``: one
    ``[1, gh, gw]`` row per frame with ``t`` = source frame index (the official HF processor's ``videos=``).
    """
    t = len(indices)
    if layout == "training":
        grid = [[t, gh, gw]]
        return grid, build_patch_positions(grid, merge, frame_indices=[indices])
    grid = [[1, gh, gw]] * t
    per_frame = [[int(i)] for i in indices] if layout == "processor" else None
    return grid, build_patch_positions(grid, merge, frame_indices=per_frame)


def _image_processor(opts: VideoOptions) -> LlavaOnevision2ImageProcessor:
    return LlavaOnevision2ImageProcessor(
        do_convert_rgb=False,
        resample=opts.resample,
        do_rescale=opts.do_rescale,
        rescale_factor=opts.rescale_factor,
        do_normalize=opts.do_normalize,
        image_mean=list(opts.image_mean),
        image_std=list(opts.image_std),
        patch_size=opts.patch_size,
        merge_size=opts.merge_size,
        temporal_patch_size=1,
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


def frames_to_uint8_thwc(video: Any, source: str) -> np.ndarray:
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


def metadata_get(meta: Any, key: str) -> Any:
    if meta is None:
        return None
    if isinstance(meta, dict):
        return meta.get(key)
    return getattr(meta, key, None)


def sample_from_file(source: Any, opts: VideoOptions) -> SampledFrames:
    from .uniform import sample_uniform_frames

    sample = sample_uniform_frames if opts.video_store is None else opts.video_store.sample_uniform_frames
    return sample(source, backend=opts.decode_backend, **opts.frame_rule)


def frames_from_array(video: Any, meta: Any, opts: VideoOptions, index: int) -> SampledFrames:
    source = f"<video array {index}>"
    frames = frames_to_uint8_thwc(video, source)
    fps = metadata_get(meta, "fps")
    indices = metadata_get(meta, "frames_indices")
    total = metadata_get(meta, "total_num_frames")
    if fps is None:
        fps = float(opts.fps or 1.0) if indices is None else 1.0
        logger.warning_once(
            "A decoded video was passed without `video_metadata` fps; its frames are taken as sampled at "
            f"{fps} frame(s) per second for the <t seconds> tags. Pass video_metadata={{'fps': ...}} for "
            "correct timestamps."
        )
    fps = float(fps)
    if indices is None:
        indices = np.arange(frames.shape[0], dtype=np.int64)
        if opts.do_sample_frames and opts.video_backend == "frames" and meta is not None:
            keep = _sample_array_indices(frames.shape[0], fps, opts)
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


def _sample_array_indices(total: int, video_fps: float, opts: VideoOptions) -> np.ndarray:
    from .frame_count import count_frames, sample_indices

    n = count_frames(total, video_fps, **opts.frame_rule)
    return np.asarray(sample_indices(total, n), dtype=np.int64)


# ------------------------------------------------------------------ back ends
def frame_geometry(n: int, height: int, width: int, opts: VideoOptions) -> tuple[int, int, int, int, int]:
    """``(padded, h, w, min_px, max_px)`` of ``n`` decoded ``height x width`` frames."""
    padded = padded_frames(n, opts.video_layout)
    if opts.max_visual_tokens is not None and opts.max_visual_tokens < n + padded:
        raise ValueError(
            f"max_visual_tokens={opts.max_visual_tokens} is below the minimum of {n + padded} for this video "
            f"(one token per sampled frame, {n + padded} frames); raise it or lower max_frames/fps"
        )
    factor = opts.patch_size * opts.merge_size
    min_px, max_px = frame_pixel_budget(
        n + padded,
        min_pixels=int(opts.min_pixels),
        max_pixels=int(opts.max_pixels),
        frame_max_pixels=opts.frame_max_pixels,
        total_pixels=opts.total_pixels,
        max_visual_tokens=opts.max_visual_tokens,
        factor=factor,
    )
    h, w = smart_resize(height, width, factor=factor, min_pixels=min_px, max_pixels=max_px)
    return padded, h, w, min_px, max_px


def sampled_frames_item(
    sf: SampledFrames, opts: VideoOptions, pixels: np.ndarray | None = None
) -> VisualItem:
    frames, indices = sf.frames, np.asarray(sf.frame_indices, dtype=np.int64)
    seconds = (
        indices / sf.fps if opts.timestamp_source == "index" else np.asarray(sf.timestamps, dtype=np.float64)
    )
    if frames.shape[0] == 0:
        raise VideoDecodeError(sf.source, "no frames were decoded")
    padded, h, w, min_px, max_px = frame_geometry(frames.shape[0], frames.shape[1], frames.shape[2], opts)
    if padded:
        indices = np.concatenate([indices, indices[-1:]])
        seconds = np.concatenate([seconds, seconds[-1:]])
    t = frames.shape[0] + padded
    m, p = opts.merge_size, opts.patch_size
    if pixels is None:
        pixels = resize_and_patchify(frames, h, w, min_px, max_px, padded, opts)
    gh, gw = h // p, w // p
    per_frame = gh * gw // (m * m)
    grid, positions = _frames_grid(opts.video_layout, indices, gh, gw, m)
    info = LlavaOnevision2VideoInfo(
        source=str(sf.source),
        backend="frames",
        layout=opts.video_layout,
        timestamps=[float(s) for s in seconds],
        block_tokens=[per_frame] * t,
        newline=opts.video_layout == "training",
        grid_thw=[list(r) for r in grid],
        num_patches=int(pixels.shape[0]),
        frame_indices=[int(i) for i in indices],
        fps=float(sf.fps),
        decimals=int(opts.timestamp_decimals),
        extra={"padded_frames": padded, "frame_size": (h, w), "pixel_budget": (min_px, max_px)},
    )
    return VisualItem(pixels, np.asarray(grid, dtype=np.int64), positions, info.num_tokens, info)


def frame_job(
    in_height: int, in_width: int, n: int, h: int, w: int, padded: int, opts: VideoOptions
) -> tuple[np.ndarray, Callable[[], Callable[[np.ndarray, Sequence[int]], None]]] | None:
    """Output rows and a per-thread worker factory for ``n`` (+ ``padded``) frames resized to ``h x w``.

    Returns ``(out, make_worker)``; ``make_worker()(frame, slots)`` resizes one ``uint8
    [H, W, 3]`` frame (torch bicubic+antialias, or PIL exactly like the image processor), normalises it
    through the lookup table straight into the rows of ``slots[0]`` and copies them to the other slots.
    ``None`` when the image processor has to do the work (``frame_resize="pil"`` with a non-PIL
    ``resample``). Values are identical to ``resize_frames`` + ``normalize_and_patchify`` (torch) and to
    ``LlavaOnevision2ImageProcessor`` (pil).
    """
    mode = opts.frame_resize
    if mode not in ("torch", "pil"):
        raise ValueError(f"frame_resize must be 'torch' or 'pil', got {mode!r}")
    resample = opts.resample
    if mode == "pil" and not isinstance(resample, int):
        return None
    c = 3
    lut = normalization_lut(
        c,
        rescale_factor=opts.rescale_factor,
        image_mean=opts.image_mean,
        image_std=opts.image_std,
        do_rescale=bool(opts.do_rescale),
        do_normalize=bool(opts.do_normalize),
    )
    p, m = opts.patch_size, opts.merge_size
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
            return FrameResizer(in_height, in_width, h, w, c)

    def make_worker() -> Callable[[np.ndarray, Sequence[int]], None]:
        planes = make_planes()
        writer = PatchWriter(lut, h, w, p, m)

        def work(frame: np.ndarray, slots: Sequence[int]) -> None:
            first = out[slots[0] * rows : (slots[0] + 1) * rows]
            writer(planes(frame), first)
            for j in slots[1:]:
                out[j * rows : (j + 1) * rows] = first

        return work

    return out, make_worker


def resize_and_patchify(
    frames: np.ndarray,
    h: int,
    w: int,
    min_px: int,
    max_px: int,
    padded: int,
    opts: VideoOptions,
) -> np.ndarray:
    """``float32 [(T + padded) * gh * gw, 3*p*p]`` rows of ``uint8 [T, H, W, 3]`` frames resized to ``h x w``."""
    n = frames.shape[0]
    job = frame_job(frames.shape[1], frames.shape[2], n, h, w, padded, opts)
    if job is None:
        frames = np.concatenate([frames, frames[-1:]], axis=0) if padded else frames
        out = _image_processor(opts)(
            list(frames), do_resize=True, min_pixels=min_px, max_pixels=max_px, return_tensors=None
        )
        return np.asarray(out["pixel_values"], dtype=np.float32)
    out, make_worker = job
    with FramePool(make_worker, n) as pool:
        for i in range(n):
            pool.submit(frames[i], (i, n) if padded and i == n - 1 else (i,))
    return out


def file_item(source: Any, opts: VideoOptions) -> VisualItem:
    """Frames back end from a file: decoding and per-frame preprocessing overlap (PyAV).

    The indices and the frame geometry are planned before decoding; every sampled frame goes to the frame
    pool as soon as PyAV has converted it. Same frames, same values as ``_sample_from_file`` +
    ``_process_frames``, which is what a truncated stream (resampled) or another decoder falls back to.
    """
    from .readers import TruncatedVideoError, read_frames
    from .uniform import plan_uniform_frames

    if opts.decode_backend != "pyav" or opts.video_store is not None:
        return sampled_frames_item(sample_from_file(source, opts), opts)
    indices, sinfo = plan_uniform_frames(source, **opts.frame_rule)
    n = len(indices)
    padded, h, w, _, _ = frame_geometry(n, sinfo.height, sinfo.width, opts)
    job = frame_job(sinfo.height, sinfo.width, n, h, w, padded, opts)
    if job is None:
        return sampled_frames_item(sample_from_file(source, opts), opts)
    out, make_worker = job
    slots: dict[int, list[int]] = {}
    for j, i in enumerate(indices.tolist()):
        slots.setdefault(i, []).append(j)
    if padded:
        slots[int(indices[-1])].append(n)
    try:
        with FramePool(make_worker, n) as pool:
            sf, _ = read_frames(source, indices, on_frame=lambda i, rgb: pool.submit(rgb, slots[i]))
    except TruncatedVideoError:
        return sampled_frames_item(sample_from_file(source, opts), opts)
    if sf.frames.shape[1:3] != (sinfo.height, sinfo.width):  # not expected: recompute from the frames
        return sampled_frames_item(sf, opts)
    return sampled_frames_item(sf, opts, pixels=out)


def frames_item(video: Any, metadata: Any, index: int, opts: VideoOptions) -> VisualItem:
    """The frames back end for one video: a path, ``SampledFrames`` or decoded frames (+ ``metadata``)."""
    if isinstance(video, SampledFrames):
        return sampled_frames_item(video, opts)
    if isinstance(video, (str, os.PathLike)):
        return file_item(video, opts)
    return sampled_frames_item(frames_from_array(video, metadata, opts, index), opts)


def frames_num_tokens(num_frames: int, height: int, width: int, opts: VideoOptions) -> int:
    """Visual tokens of ``num_frames`` frames of ``height x width`` pixels, without decoding any pixel."""
    padded, h, w, _, _ = frame_geometry(num_frames, height, width, opts)
    return (num_frames + padded) * (h // opts.patch_size) * (w // opts.patch_size) // opts.merge_size**2

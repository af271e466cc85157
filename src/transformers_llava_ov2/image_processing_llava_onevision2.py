"""Image processor of LLaVA-OneVision-2: the released slow ``Qwen2VLImageProcessor`` plus patch positions.

The released checkpoint preprocesses images with the *slow* Qwen2-VL image processor (patch 14, merge 2,
``temporal_patch_size=1``, ``smart_resize`` with factor 28, BICUBIC, OpenAI-CLIP mean/std). In transformers
5.x that class is :class:`~transformers.models.qwen2_vl.image_processing_pil_qwen2_vl.Qwen2VLImageProcessorPil`
(PIL/NumPy, no torchvision needed). :class:`LlavaOnevision2ImageProcessor` subclasses it, so pixel values are
bit-identical to the library class with the same settings, and adds the third model input,
``patch_positions [N, 3]`` (``(t, h, w)``, int64, merge-block order, ``t = 0`` for images).

The same class serves both AutoImageProcessor backends ("pil" and "torchvision"), so behaviour does not
depend on whether torchvision is installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import SizeDict
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorKwargs,
    Qwen2VLImageProcessorPil,
    smart_resize,
)
from transformers.utils import TensorType

from .processing_defaults import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from .video_types import raster_to_block_order

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_PIXELS",
    "LlavaOnevision2ImageProcessor",
    "LlavaOnevision2ImageProcessorKwargs",
    "build_patch_positions",
    "smart_resize",
]


class LlavaOnevision2ImageProcessorKwargs(Qwen2VLImageProcessorKwargs, total=False):
    """Per-call image options: the Qwen2-VL ones (``min_pixels``, ``max_pixels``, ``patch_size``, ...)."""


def build_patch_positions(
    grid_thw: np.ndarray | Sequence[Sequence[int]],
    merge_size: int,
    frame_indices: Sequence[Sequence[int] | None] | None = None,
) -> np.ndarray:
    """``(t, h, w)`` of every patch, in the merge-block order of the pixel rows.

    Args:
        grid_thw: ``[R, 3]`` grid rows ``(T, H, W)`` in patches.
        merge_size: spatial merge size (``H`` and ``W`` must be multiples of it).
        frame_indices: optional per-row temporal values (length ``T`` each); ``None`` (or a ``None`` entry)
            means ``0 .. T-1`` (``0`` for image rows).

    Returns:
        ``int64 [sum(T*H*W), 3]``.
    """
    grid = np.asarray(grid_thw, dtype=np.int64).reshape(-1, 3)
    out = []
    for row, (t, h, w) in enumerate(grid.tolist()):
        if h % merge_size or w % merge_size:
            raise ValueError(f"grid row {row} = {(t, h, w)} is not divisible by merge_size={merge_size}")
        ts = None if frame_indices is None else frame_indices[row]
        ts = np.arange(t, dtype=np.int64) if ts is None else np.asarray(ts, dtype=np.int64).reshape(-1)
        if len(ts) != t:
            raise ValueError(f"grid row {row} has T={t} but {len(ts)} temporal indices were given")
        rows, cols = np.divmod(raster_to_block_order(h, w, merge_size), w)  # block order
        hw = np.stack([rows, cols], axis=-1)  # [h*w, 2]
        pos = np.empty((t, h * w, 3), dtype=np.int64)
        pos[:, :, 0] = ts[:, None]
        pos[:, :, 1:] = hw[None]
        out.append(pos.reshape(-1, 3))
    if not out:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(out, axis=0)


class LlavaOnevision2ImageProcessor(Qwen2VLImageProcessorPil):
    r"""LLaVA-OneVision-2 image processor (slow Qwen2-VL preprocessing + ``patch_positions``).

    Defaults follow the released 8B: ``patch_size=14``, ``merge_size=2``, ``temporal_patch_size=1``,
    ``min_pixels=200704``, ``max_pixels=1605632``. ``min_pixels``/``max_pixels`` may be passed per call
    (no deprecation warning, unlike the parent class).

    Returns a ``BatchFeature`` with ``pixel_values [N, 3*14*14]`` (float32), ``image_grid_thw [n, 3]`` rows
    ``[1, h, w]`` and ``patch_positions [N, 3]`` (int64, ``t = 0``, merge-block order).
    """

    size = {"shortest_edge": DEFAULT_MIN_PIXELS, "longest_edge": DEFAULT_MAX_PIXELS}
    temporal_patch_size = 1
    patch_size = 14
    merge_size = 2
    valid_kwargs = LlavaOnevision2ImageProcessorKwargs
    model_input_names = ["pixel_values", "image_grid_thw", "patch_positions"]

    def _standardize_kwargs(
        self,
        size: int | Iterable[int] | dict[str, int] | SizeDict | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        **kwargs,
    ) -> dict:
        if min_pixels is not None or max_pixels is not None:
            size_dict = dict(size) if isinstance(size, (dict, SizeDict)) else dict(self.size)
            if min_pixels is not None:
                size_dict["shortest_edge"] = int(min_pixels)
            if max_pixels is not None:
                size_dict["longest_edge"] = int(max_pixels)
            size = SizeDict(**{k: v for k, v in size_dict.items() if v is not None})
        # skip the parent's deprecation warning: budgets are already folded into ``size``
        return super(Qwen2VLImageProcessorPil, self)._standardize_kwargs(size=size, **kwargs)

    def _preprocess(
        self,
        images: list[np.ndarray],
        *args,
        merge_size: int,
        return_tensors: str | TensorType | None = None,
        **kwargs,
    ) -> BatchFeature:
        out = super()._preprocess(images, *args, merge_size=merge_size, return_tensors=None, **kwargs)
        positions = build_patch_positions(out["image_grid_thw"], merge_size)
        data = {
            "pixel_values": out["pixel_values"],
            "image_grid_thw": out["image_grid_thw"],
            "patch_positions": positions,
        }
        return BatchFeature(data=data, tensor_type=return_tensors)

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

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import SizeDict
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorKwargs,
    Qwen2VLImageProcessorPil,
    smart_resize,
)
from transformers.utils import TensorType

from .errors import ImageDecodeError, local_media_path
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


MAX_ASPECT_RATIO = 200
"""Qwen2-VL's ``smart_resize`` rejects images whose long side is more than 200 times the short side."""


def load_image_checked(image: Any, index: int | None = None) -> Any:
    """An image ready for processing, or :class:`~.errors.ImageDecodeError` naming it and what was expected.

    Paths and ``file://`` URLs are opened with PIL and fully decoded (a truncated file fails here, not deep
    inside the processor); ``http(s)://`` URLs and base64 strings go through transformers' ``load_image``;
    PIL images, arrays and tensors pass through after the shape checks (2 dimensions above 0, aspect
    ratio at most :data:`MAX_ASPECT_RATIO`).
    """
    from PIL import Image, UnidentifiedImageError
    from transformers.image_utils import is_valid_image, load_image

    if isinstance(image, (str, os.PathLike)):
        name: object = image
    else:
        name = "<image>" if index is None else f"<image {index}>"
    if isinstance(image, str) and (
        image.startswith(("http://", "https://", "data:")) or _looks_base64(image)
    ):
        try:
            image = load_image(image)
        except Exception as exc:  # network, decoding: all user-input problems at this point
            raise ImageDecodeError(_short(name), f"cannot load it ({type(exc).__name__}: {exc})") from exc
    elif isinstance(image, (str, os.PathLike)):
        path = local_media_path(image, ImageDecodeError)
        try:
            with Image.open(path) as opened:
                opened.load()
                image = opened.copy()
        except UnidentifiedImageError as exc:
            raise ImageDecodeError(name, "not a recognised image format") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageDecodeError(name, f"truncated or corrupt image data ({exc})") from exc
    elif isinstance(image, Image.Image):
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageDecodeError(name, f"truncated or corrupt image data ({exc})") from exc
    elif not is_valid_image(image):
        raise ImageDecodeError(
            name, f"expected a path, URL, PIL image, array or tensor, got {type(image).__name__}"
        )
    _check_shape(image, name)
    return image


def _looks_base64(text: str) -> bool:
    """A long string that is no file path: transformers' ``load_image`` reads it as base64 image data."""
    return len(text) > 1024 and not os.path.exists(text[:255])


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_shape(image: Any, name: object) -> None:
    from PIL import Image

    if isinstance(image, Image.Image):
        width, height = image.size
    else:
        shape = tuple(getattr(image, "shape", ()))
        if len(shape) not in (2, 3):
            raise ImageDecodeError(name, f"expected a 2-D or 3-D image array, got shape {shape}")
        height, width = (shape[1], shape[2]) if len(shape) == 3 and shape[0] in (1, 3, 4) else shape[:2]
    if height < 1 or width < 1:
        raise ImageDecodeError(name, f"image is empty ({width}x{height} pixels)")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ImageDecodeError(
            name,
            f"{width}x{height} pixels has an aspect ratio above {MAX_ASPECT_RATIO}:1, which the Qwen2-VL resize "
            "cannot keep; crop or pad it first",
        )


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

    def fetch_images(self, image_url_or_urls: Any) -> Any:
        """Load images (nested lists allowed) with :func:`load_image_checked`: errors name the image."""
        if isinstance(image_url_or_urls, (list, tuple)):
            return [self.fetch_images(x) for x in image_url_or_urls]
        return load_image_checked(image_url_or_urls)

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

"""Candidate pixels from arrival to packing: the planar YUV working copy, converted to RGB only where a
canvas needs it.

A candidate's working copy (:func:`~.signals.scale_to_work`: canvas size, coded orientation, full-range
8-bit ``yuv420p`` or ``yuv444p``) is kept as planar YUV (:class:`WorkImage`, half the bytes of RGB for
4:2:0) until its group is packed, and then converted by swscale (no scaling):

* :meth:`WorkImage.rgb`: the whole frame, for an I-canvas;
* :meth:`WorkImage.blocks`: only the merge blocks the group's P-canvases use. They are cut from the YUV
  planes (display orientation), tiled in rows of the canvas width and converted in one call. A group's
  P-canvases hold a few frames' worth of blocks drawn from dozens of candidates, so this converts a
  fraction of the pixels an RGB copy of every candidate would.

Rule: both return exactly the pixels of the whole frame's RGB conversion turned to display orientation
(``np.rot90(rgb, rot_k)``). swscale's unscaled YUV -> RGB conversion is pointwise (a pixel depends on its
luma sample and its chroma sample); with 4:2:0, blocks start at even coordinates and have an even side, so
every 2 x 2 chroma cell is cut whole, and a quarter turn maps 2 x 2 cells of an even-sized plane onto 2 x 2
cells. A 4:2:0 block with an odd side falls back to cutting the whole frame's conversion, and a 4:2:0
working copy with an odd side is converted on arrival (:func:`keep_pixels`).
``tests/codec/test_pixels.py`` checks the equality on real and synthetic frames.

:class:`RgbImage` is the same interface over a ready RGB array (tests, callers with their own pixels).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
from av.video.reformatter import ColorRange, VideoReformatter

from .canvas import CanvasLayout, gather_blocks

__all__ = ["CanvasImage", "RgbImage", "WorkImage", "gather_rgb", "keep_pixels"]

_LOCAL = threading.local()  # one swscale context per thread (a context is not safe to share)


class CanvasImage(Protocol):
    """The pixels of one canvas-size candidate frame, display orientation."""

    def rgb(self) -> np.ndarray:
        """``uint8 [H, W, 3]`` the whole frame."""
        ...

    def blocks(self, blocks: np.ndarray, layout: CanvasLayout) -> np.ndarray:
        """``uint8 [k, s, s, 3]`` merge blocks ``blocks`` (``int64 [k]``, raster over ``layout.blocks_hw``)."""
        ...


@dataclass(frozen=True)
class RgbImage:
    """A ready ``uint8 [H, W, 3]`` RGB frame (display orientation)."""

    array: np.ndarray

    def rgb(self) -> np.ndarray:
        return self.array

    def blocks(self, blocks: np.ndarray, layout: CanvasLayout) -> np.ndarray:
        return gather_blocks(self.array, blocks, layout)


@dataclass(frozen=True)
class WorkImage:
    """A working copy as owned planar YUV (coded orientation) with what its RGB conversion needs.

    Attributes:
        data: the planes as :meth:`av.VideoFrame.to_ndarray` returns them: ``uint8 [3H/2, W]`` for
            ``yuv420p``, ``uint8 [3, H, W]`` for ``yuv444p``.
        format: ``"yuv420p"`` or ``"yuv444p"``.
        height / width: the coded size.
        colorspace: the frame's colorspace (the YUV -> RGB matrix); the range is full (JPEG).
        rot_k: quarter turns (``np.rot90``) from the coded to the display orientation.
    """

    data: np.ndarray
    format: str
    height: int
    width: int
    colorspace: int
    rot_k: int = 0

    @classmethod
    def from_frame(cls, frame: av.VideoFrame, rot_k: int = 0) -> WorkImage:
        """Own copy of a full-range ``yuv420p`` / ``yuv444p`` working copy (no decoder memory is kept)."""
        name = frame.format.name
        if name not in ("yuv420p", "yuv444p"):
            raise ValueError(f"a working copy is yuv420p or yuv444p, got {name}")
        if name == "yuv420p" and (frame.width % 2 or frame.height % 2):
            raise ValueError(f"a yuv420p working copy has even sides, got {frame.width}x{frame.height}")
        return cls(frame.to_ndarray(), name, frame.height, frame.width, int(frame.colorspace), rot_k % 4)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y [H, W], U, V)`` views, coded orientation (chroma ``[H/2, W/2]`` for 4:2:0)."""
        h, w = self.height, self.width
        if self.format == "yuv444p":
            return self.data[0], self.data[1], self.data[2]
        flat = self.data.reshape(-1)
        c = (h // 2) * (w // 2)
        y = flat[: h * w].reshape(h, w)
        u = flat[h * w : h * w + c].reshape(h // 2, w // 2)
        v = flat[h * w + c : h * w + 2 * c].reshape(h // 2, w // 2)
        return y, u, v

    def rgb(self) -> np.ndarray:
        """``uint8 [H, W, 3]`` the whole frame in display orientation."""
        arr = _convert(self.data, self.format, self.colorspace, "frame")
        return np.ascontiguousarray(np.rot90(arr, self.rot_k)) if self.rot_k else arr

    def blocks(self, blocks: np.ndarray, layout: CanvasLayout) -> np.ndarray:
        """``uint8 [k, s, s, 3]`` merge blocks (display orientation), ``s = merge * patch``; converts only
        their pixels (the rule in the module docstring)."""
        return gather_rgb([self], [blocks], layout)

    def yuv_blocks(
        self, blocks: np.ndarray, layout: CanvasLayout
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y uint8 [k, s, s], U, V)`` of merge blocks ``blocks`` in display orientation (chroma
        ``[k, s/2, s/2]`` for 4:2:0; ``s`` even then)."""
        bh, bw = layout.blocks_hw
        s = layout.merge_size * layout.patch_size
        r, c = np.divmod(np.asarray(blocks, dtype=np.int64), bw)
        out = []
        for i, plane in enumerate(self.planes()):
            d = s // (self.chroma_step if i else 1)
            disp = np.rot90(plane, self.rot_k) if self.rot_k else plane
            out.append(disp.reshape(bh, d, bw, d).swapaxes(1, 2)[r, c])  # (a copy of the plane when turned)
        return out[0], out[1], out[2]

    @property
    def chroma_step(self) -> int:
        """Luma samples per chroma sample along each axis (2 for 4:2:0, 1 for 4:4:4)."""
        return 2 if self.format == "yuv420p" else 1


def gather_rgb(
    images: Sequence[CanvasImage], blocks: Sequence[np.ndarray], layout: CanvasLayout
) -> np.ndarray:
    """``uint8 [sum k_i, s, s, 3]``: merge blocks ``blocks[i]`` (``int64 [k_i]``) of ``images[i]``, in order.

    When every image is a :class:`WorkImage` of one format and colorspace (and 4:2:0 blocks have an even
    side), the YUV blocks are tiled in rows of the canvas width and converted in ONE swscale call (the
    rule in the module docstring); otherwise each image converts its own.
    """
    s = layout.merge_size * layout.patch_size
    blocks = [np.asarray(b, dtype=np.int64) for b in blocks]
    k = sum(len(b) for b in blocks)
    if k == 0:
        return np.zeros((0, s, s, 3), dtype=np.uint8)
    work = [im for im in images if isinstance(im, WorkImage)]
    kinds = {(im.format, im.colorspace) for im in work}
    if len(work) < len(images) or len(kinds) != 1 or s % work[0].chroma_step:
        return np.concatenate(
            [
                gather_blocks(im.rgb(), b, layout) if isinstance(im, WorkImage) else im.blocks(b, layout)
                for im, b in zip(images, blocks, strict=True)
            ]
        )
    fmt, colorspace = kinds.pop()
    bw = layout.blocks_hw[1]
    rows = -(-k // bw)
    parts = [im.yuv_blocks(b, layout) for im, b in zip(work, blocks, strict=True) if len(b)]
    tiles = []
    for i in range(3):
        d = s // (work[0].chroma_step if i else 1)
        tile = np.zeros((rows * bw, d, d), dtype=np.uint8)
        np.concatenate([p[i] for p in parts], out=tile[:k])
        tiles.append(tile.reshape(rows, bw, d, d).swapaxes(1, 2).reshape(rows * d, bw * d))
    if fmt == "yuv444p":
        data = np.stack(tiles)
    else:
        data = np.concatenate([t.reshape(-1) for t in tiles]).reshape(-1, bw * s)
    rgb = _convert(data, fmt, colorspace, "tile")  # [rows * s, bw * s, 3]
    return rgb.reshape(rows, s, bw, s, 3).swapaxes(1, 2).reshape(rows * bw, s, s, 3)[:k]


def keep_pixels(frame: av.VideoFrame, rot_k: int = 0) -> CanvasImage:
    """What a candidate keeps of its working copy (``frame``, full range): a :class:`WorkImage` when it can
    be converted later with the same result (``yuv420p`` with even sides, or ``yuv444p``), otherwise
    (odd 4:2:0 sides) its RGB conversion now (:class:`RgbImage`)."""
    fmt = frame.format.name
    if fmt == "yuv444p" or (fmt == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0):
        return WorkImage.from_frame(frame, rot_k)
    rgb = _convert_frame(frame, "frame")
    return RgbImage(np.ascontiguousarray(np.rot90(rgb, rot_k)) if rot_k % 4 else rgb)


def _convert(data: np.ndarray, fmt: str, colorspace: int, role: str) -> np.ndarray:
    """``uint8 [H, W, 3]`` swscale's no-scale ``rgb24`` conversion of full-range planar YUV ``data``
    (the :meth:`av.VideoFrame.to_ndarray` layout of ``fmt``)."""
    frame = av.VideoFrame.from_ndarray(data, format=fmt)
    frame.colorspace = colorspace
    return _convert_frame(frame, role)


def _convert_frame(frame: av.VideoFrame, role: str) -> np.ndarray:
    """``uint8 [H, W, 3]`` the full-range ``frame`` converted to ``rgb24`` with no scaling, one swscale
    thread (the other core decodes). ``role`` (``"frame"`` / ``"tile"``) picks the thread's swscale
    context: each keeps its size, so whole frames do not set up a new context after every tile."""
    scalers = getattr(_LOCAL, "scalers", None)
    if scalers is None:
        scalers = _LOCAL.scalers = {}
    scaler = scalers.get(role)
    if scaler is None:
        scaler = scalers[role] = VideoReformatter()
    out = scaler.reformat(frame, format="rgb24", src_color_range=ColorRange.JPEG, threads=1)
    return out.to_ndarray()

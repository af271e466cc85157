"""Encoding of image stacks (canvases, frames) for store entries: lossless PNG or NPY, or JPEG.

One file per image for ``png`` / ``jpeg`` (``images/000000.png``, ...), one ``images.npy`` for ``npy``.
PNG and NPY are lossless (bit-exact round trip); JPEG is lossy and records its quality and chroma
subsampling in the entry's metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["IMAGE_FORMATS", "ImageCodec", "decode_image", "encode_image"]

IMAGE_FORMATS = ("png", "npy", "jpeg")


@dataclass(frozen=True)
class ImageCodec:
    """How the images of an entry are written.

    Attributes:
        format: ``"npy"`` (lossless, raw, fastest to read; the store's default), ``"png"`` (lossless,
            compressed) or ``"jpeg"`` (lossy).
        jpeg_quality: JPEG quality 1..100 (recorded in the entry).
        jpeg_subsampling: JPEG chroma subsampling ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``.
        png_compress_level: zlib level 0..9 of PNG (speed vs size; any level is lossless).
    """

    format: str = "npy"
    jpeg_quality: int = 95
    jpeg_subsampling: str = "4:2:0"
    png_compress_level: int = 1

    def __post_init__(self) -> None:
        if self.format not in IMAGE_FORMATS:
            raise ValueError(f"image format must be one of {IMAGE_FORMATS}, got {self.format!r}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.jpeg_subsampling not in ("4:4:4", "4:2:2", "4:2:0"):
            raise ValueError(f"jpeg_subsampling must be 4:4:4, 4:2:2 or 4:2:0, got {self.jpeg_subsampling!r}")
        if not 0 <= int(self.png_compress_level) <= 9:
            raise ValueError(f"png_compress_level must be in 0..9, got {self.png_compress_level}")

    @property
    def lossless(self) -> bool:
        return self.format != "jpeg"

    @property
    def extension(self) -> str:
        return {"png": ".png", "jpeg": ".jpg", "npy": ".npy"}[self.format]

    def describe(self) -> dict:
        """What goes into the entry's metadata."""
        out: dict = {"format": self.format, "lossless": self.lossless}
        if self.format == "jpeg":
            out.update(quality=int(self.jpeg_quality), subsampling=self.jpeg_subsampling)
        return out


def encode_image(image: np.ndarray, codec: ImageCodec) -> bytes:
    """``uint8 [H, W, 3]`` RGB to PNG / JPEG bytes."""
    buf = io.BytesIO()
    pil = Image.fromarray(np.ascontiguousarray(image), mode="RGB")
    if codec.format == "png":
        pil.save(buf, format="PNG", compress_level=int(codec.png_compress_level))
    elif codec.format == "jpeg":
        pil.save(buf, format="JPEG", quality=int(codec.jpeg_quality), subsampling=codec.jpeg_subsampling)
    else:
        raise ValueError(f"encode_image writes png or jpeg, not {codec.format!r}")
    return buf.getvalue()


def decode_image(data: bytes, name: str) -> np.ndarray:
    """PNG / JPEG bytes to ``uint8 [H, W, 3]`` RGB; ``ValueError`` naming ``name`` when unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as pil:
            arr = np.asarray(pil.convert("RGB") if pil.mode != "RGB" else pil)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot decode image {name!r}: {exc}") from None
    return np.ascontiguousarray(arr, dtype=np.uint8)

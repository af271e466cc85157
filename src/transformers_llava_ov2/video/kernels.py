"""CPU kernels of the frames back end: resize, lookup-table normalise + patchify, the per-frame worker pool.

All work on ``uint8`` frames and write ``float32`` patch rows in merge-block order, bit-identical to
``LlavaOnevision2ImageProcessor`` / ``Qwen2VLImageProcessorPil`` on the same pixels (``tests/processor/
test_frames_fast_path.py``). ``docs/processor.md`` ("Performance (frames back end)") explains the design and
gives the measured figures. :func:`torch_threads` is the one place that saves and restores torch's intra-op
thread count.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

__all__ = [
    "FramePool",
    "FrameResizer",
    "PatchWriter",
    "normalization_lut",
    "normalize_and_patchify",
    "resize_frames",
    "single_torch_thread",
    "torch_threads",
]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Runs the block with ``torch.set_num_threads(n)`` (``0`` leaves it alone); restores the count after.

    Yields the previous count. The one home of this rule: the frame pool, the codec tokenizer and the
    precompute workers all go through it.
    """
    old = torch.get_num_threads()
    change = n > 0 and n != old
    if change:
        torch.set_num_threads(n)
    try:
        yield old
    finally:
        if change:
            torch.set_num_threads(old)


def single_torch_thread() -> contextlib.AbstractContextManager[int]:
    """``torch_threads(1)``: the frame pool's threads replace torch's intra-op threads."""
    return torch_threads(1)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``uint8 [T, H, W, 3]`` frames like torchvision's ``resize(BICUBIC, antialias=True)`` on uint8.

    Float32 ``interpolate(mode="bicubic", align_corners=False, antialias=True)``, clamp to [0, 255], round,
    back to uint8 (torchvision's uint8 bicubic path; what ``qwen_vl_utils`` uses). Same size: returned as is.
    Frames go through ``interpolate`` one at a time (identical values, each output element is computed
    the same way; a 720p frame's float32 buffers stay cache-sized: docs/processor.md gives the timing).
    """
    if frames.shape[1:3] == (height, width):
        return frames
    resizer = FrameResizer(frames.shape[1], frames.shape[2], height, width)
    out = np.empty((frames.shape[0], height, width, frames.shape[3]), dtype=np.uint8)
    for i in range(frames.shape[0]):
        out[i] = resizer(frames[i]).transpose(1, 2, 0)
    return out


class FrameResizer:
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


class FramePool:
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
        self._threads: contextlib.AbstractContextManager[int] = single_torch_thread()
        self._futures: list[Any] = []

    def __enter__(self) -> FramePool:
        self._threads.__enter__()
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
            self._threads.__exit__(None, None, None)


def normalization_lut(
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


class PatchWriter:
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
    written straight into the output rows (docs/processor.md, "Performance (frames back end)").
    """
    t, h, w, c = frames.shape
    lut = normalization_lut(
        c,
        rescale_factor=rescale_factor,
        image_mean=image_mean,
        image_std=image_std,
        do_rescale=do_rescale,
        do_normalize=do_normalize,
    )
    writer = PatchWriter(lut, h, w, patch_size, merge_size)
    rows = writer.rows
    out = np.empty((t * rows, c * patch_size * patch_size), dtype=np.float32)
    for i in range(t):
        writer(frames[i].transpose(2, 0, 1), out[i * rows : (i + 1) * rows])
    return out

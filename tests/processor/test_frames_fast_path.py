"""Frames back end fast path: per-frame resize/LUT/patchify, the frame pool and decode/preprocess overlap.

Everything here is checked for *bit-identical* output against straightforward restatements (the batched
``interpolate`` + per-frame float normalisation the fast path replaced) and against the non-overlapped path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.processor.conftest import SMALL
from transformers_llava_ov2.image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
from transformers_llava_ov2.video.frames import sample_from_file
from transformers_llava_ov2.video.readers import VideoTruncatedWarning
from transformers_llava_ov2.video.uniform import sample_uniform_frames
from transformers_llava_ov2.video_processing_llava_onevision2 import (
    LlavaOnevision2VideoProcessor,
    normalize_and_patchify,
    resize_frames,
)
from transformers_llava_ov2.video_types import SampledFrames

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def batched_resize(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    """The previous implementation: one batched float32 interpolate over all frames."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(torch.float32)
    y = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return y.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def naive_patchify(frames, p=14, m=2, scale=1 / 255, mean=MEAN, std=STD, rescale=True, normalize=True):
    """Image-processor arithmetic per frame: float64 rescale -> float32, float32 (x - mean) / std, patchify."""
    rows = []
    for f in frames:
        x = f.transpose(2, 0, 1)
        x = (x.astype(np.float64) * scale).astype(np.float32) if rescale else x.astype(np.float32)
        if normalize:
            x = (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
        c, h, w = x.shape
        b = x.reshape(c, h // p // m, m, p, w // p // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
        rows.append(b.reshape(-1, c * p * p))
    return np.concatenate(rows).astype(np.float32)


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(11).integers(0, 256, (3, 150, 230, 3), dtype=np.uint8)


def test_resize_frames_equals_one_batched_interpolate(frames):
    for h, w in [(112, 168), (56, 84), (308, 448)]:  # down, strongly down, up
        np.testing.assert_array_equal(resize_frames(frames, h, w), batched_resize(frames, h, w))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"normalize": False},
        {"rescale": False, "normalize": False},
        {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.3, 0.25)},
        {"rescale": False},
    ],
)
def test_normalize_and_patchify_equals_float_arithmetic(frames, kwargs):
    x = frames[:, :56, :112]
    got = normalize_and_patchify(
        x,
        patch_size=14,
        merge_size=2,
        rescale_factor=1 / 255,
        image_mean=kwargs.get("mean", MEAN),
        image_std=kwargs.get("std", STD),
        do_rescale=kwargs.get("rescale", True),
        do_normalize=kwargs.get("normalize", True),
    )
    np.testing.assert_array_equal(got, naive_patchify(x, **kwargs))


def test_non_contiguous_frames(frames):
    x = frames[:, ::2, ::2][:, :56, :112]  # strided view
    got = normalize_and_patchify(
        x, patch_size=14, merge_size=2, rescale_factor=1 / 255, image_mean=MEAN, image_std=STD
    )
    np.testing.assert_array_equal(got, naive_patchify(np.ascontiguousarray(x)))


def _sf(frames: np.ndarray) -> SampledFrames:
    idx = np.arange(len(frames)) * 2
    n = 2 * len(frames)
    return SampledFrames(
        frames=frames, frame_indices=idx, timestamps=idx / 10.0, fps=10.0, total_frames=n, duration=n / 10.0
    )


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("resize", ["torch", "pil"])
def test_thread_count_does_not_change_values_and_is_restored(frames, threads, resize):
    vp = LlavaOnevision2VideoProcessor()
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got, info = vp.process_one(_sf(frames), frame_resize=resize, video_layout="release", **SMALL)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(old)
    h, w = info.extra["frame_size"]
    padded = np.concatenate([frames, frames[-1:]])  # release layout: 3 frames -> 4
    if resize == "torch":
        ref = naive_patchify(batched_resize(padded, h, w))
    else:
        ref = LlavaOnevision2ImageProcessor()(list(padded), return_tensors="np", **SMALL)["pixel_values"]
    np.testing.assert_array_equal(got["pixel_values"], ref)


def test_worker_errors_propagate_and_threads_are_restored(frames, monkeypatch):
    from transformers_llava_ov2.video import kernels

    def boom(self, planes, out):
        raise RuntimeError("boom")

    monkeypatch.setattr(kernels.PatchWriter, "__call__", boom)
    old = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        LlavaOnevision2VideoProcessor().process_one(_sf(frames), **SMALL)
    assert torch.get_num_threads() == old


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    root = tmp_path_factory.mktemp("fast_path_clips")
    return {
        "mp4": write_synthetic_clip(
            root / "a.mp4", seconds=2.0, fps=10, size=(130, 90), bframes=2, gop=8, object_size=16
        ),
        "mkv": write_synthetic_clip(root / "b.mkv", seconds=1.2, fps=10, size=(96, 70), object_size=16),
        "short": write_synthetic_clip(root / "c.mp4", seconds=0.3, fps=10, size=(64, 48), object_size=16),
    }


@pytest.mark.parametrize("name", ["mp4", "mkv", "short"])
@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"frame_resize": "pil"},
        {"video_layout": "training", "timestamp_source": "pts"},
        {"num_frames": 7},
        {"num_frames": 9, "frame_resize": "pil"},
        {"min_pixels": 90 * 130, "max_pixels": 90 * 130},  # larger budget: upscaling for the small clips
        {"frame_resize": "pil", "resample": "bicubic"},  # not a PIL filter code: the image processor resizes
    ],
)
def test_overlapped_file_path_equals_decode_then_process(clips, name, opts):
    """Paths decode and preprocess at once; SampledFrames go the plain way: same result, bit for bit."""
    vp = LlavaOnevision2VideoProcessor()
    path = clips[name].path
    kwargs = {**SMALL, **opts}
    got, info = vp.process_one(str(path), **kwargs)
    sf = sample_from_file(path, vp.options(**kwargs))
    ref, ref_info = vp.process_one(sf, **kwargs)
    for key in ("pixel_values", "grid", "positions"):
        np.testing.assert_array_equal(got[key], ref[key])
        assert got[key].dtype == ref[key].dtype
    ref_info.source = info.source  # a SampledFrames keeps the path as given
    assert vars(info) == vars(ref_info)


def test_truncated_file_falls_back_to_resampling(tmp_path):
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    clip = write_synthetic_clip(
        tmp_path / "full.mp4", seconds=2.0, size=(96, 64), bframes=2, gop=10, object_size=16, faststart=True
    )
    data = Path(clip.path).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    vp = LlavaOnevision2VideoProcessor()
    with pytest.warns(VideoTruncatedWarning):
        got, info = vp.process_one(str(cut), num_frames=8, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoTruncatedWarning)
        sf = sample_uniform_frames(cut, num_frames=8)
    ref, _ = vp.process_one(sf, num_frames=8, **SMALL)
    np.testing.assert_array_equal(got["pixel_values"], ref["pixel_values"])
    assert info.frame_indices == [int(i) for i in sf.frame_indices]


@pytest.mark.parametrize("threads", [1, 2])
def test_preprocessing_errors_during_decoding_surface(clips, threads):
    """A job that fails while frames are still being decoded raises (never leaves rows unwritten)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with pytest.raises(ValueError, match="resampling filter"):
            LlavaOnevision2VideoProcessor().process_one(
                str(clips["mp4"].path), frame_resize="pil", resample=99, **SMALL
            )
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(old)

"""Frames back end: sampling, timestamps, layouts, pixel budgets, resizing, inputs and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from transformers.video_utils import VideoMetadata

from tests.processor.conftest import IMAGE_PAD, SMALL, VEND, VIDEO_PAD, VSTART
from transformers_llava_ov2.errors import VideoDecodeError
from transformers_llava_ov2.image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
from transformers_llava_ov2.video_processing_llava_onevision2 import (
    LlavaOnevision2VideoProcessor,
    frame_pixel_budget,
    render_video_prompt,
    resize_frames,
)
from transformers_llava_ov2.video_types import SampledFrames

SIZE = (112, 84)  # (width, height): 84x112 fits the SMALL budget unchanged -> grid 6x8, 12 tokens per frame


def qwen_indices(total: int, video_fps: float, fps: float = 1.0, min_frames: int = 4, max_frames: int = 32):
    """Independent re-statement of qwen_vl_utils.smart_nframes + linspace().round()."""
    lo, hi = math.ceil(min_frames / 2) * 2, math.floor(max_frames / 2) * 2
    n = min(min(max(total / video_fps * fps, lo), hi), total)
    n = math.floor(n / 2) * 2
    return np.linspace(0, total - 1, n).round().astype(int).tolist()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    root = tmp_path_factory.mktemp("proc_clips")
    specs = {"2s": (2.0, 10), "9.5s": (9.5, 10), "45s": (45.0, 4), "0.3s": (0.3, 10)}
    return {
        name: write_synthetic_clip(root / f"{name}.mp4", seconds=s, fps=f, size=SIZE, object_size=16)
        for name, (s, f) in specs.items()
    }


@pytest.mark.parametrize("name", ["2s", "9.5s", "45s", "0.3s"])
@pytest.mark.parametrize("layout", ["release", "training"])
def test_indices_timestamps_and_prompt(clips, name, layout):
    clip = clips[name]
    vp = LlavaOnevision2VideoProcessor()
    arrays, info = vp.process_one(str(clip.path), video_layout=layout, **SMALL)
    expected = qwen_indices(clip.num_frames, clip.fps)
    if layout == "release" and len(expected) % 2:
        expected.append(expected[-1])
    assert info.frame_indices == expected
    assert len(expected) % 2 == 0 or layout == "training"
    assert info.timestamps == pytest.approx([i / clip.fps for i in expected])
    t = len(expected)
    assert info.block_tokens == [12] * t
    sep = "\n" if layout == "training" else ""
    text = "".join(f"<{i / clip.fps:.1f} seconds>{VSTART}{IMAGE_PAD * 12}{VEND}{sep}" for i in expected)
    assert render_video_prompt(info) == text
    if layout == "release":
        assert arrays["grid"].tolist() == [[1, 6, 8]] * t
        assert (arrays["positions"][:, 0] == 0).all()
    else:
        assert arrays["grid"].tolist() == [[t, 6, 8]]
        np.testing.assert_array_equal(arrays["positions"][:, 0], np.repeat(expected, 48))
    assert arrays["pixel_values"].shape == (t * 48, 588)
    assert arrays["positions"].shape == (t * 48, 3)


def test_release_defaults_match_the_official_evaluation():
    vp = LlavaOnevision2VideoProcessor()
    assert (vp.fps, vp.min_frames, vp.max_frames) == (1.0, 4, 32)
    assert (vp.min_pixels, vp.max_pixels, vp.frame_max_pixels) == (200704, 1605632, 602112)
    assert (vp.video_backend, vp.video_layout, vp.timestamp_decimals) == ("frames", "release", 1)


def test_exact_prompt_of_a_2s_clip(clips, processor):
    out = processor(
        text=f"a{VSTART}{VIDEO_PAD}{VEND}b", videos=[str(clips["2s"].path)], return_tensors="np", **SMALL
    )
    text = processor.tokenizer.decode(out["input_ids"][0])
    block = f"{VSTART}{IMAGE_PAD * 12}{VEND}"
    assert text == f"a<0.0 seconds>{block}<0.6 seconds>{block}<1.3 seconds>{block}<1.9 seconds>{block}b"
    assert processor.video_token_id not in out["input_ids"][0]
    assert out["image_grid_thw"].tolist() == [[1, 6, 8]] * 4


def test_timestamp_decimals_and_pts_source(clips):
    vp = LlavaOnevision2VideoProcessor()
    _, info = vp.process_one(str(clips["2s"].path), timestamp_decimals=2, **SMALL)
    assert render_video_prompt(info).startswith(f"<0.00 seconds>{VSTART}")
    assert "<0.60 seconds>" in render_video_prompt(info) and "<1.90 seconds>" in render_video_prompt(info)
    _, info_pts = vp.process_one(str(clips["2s"].path), timestamp_source="pts", **SMALL)
    assert info_pts.timestamps == pytest.approx(info.timestamps)  # constant frame rate, pts from 0


def test_fps_num_frames_and_max_frames_per_call(clips):
    vp = LlavaOnevision2VideoProcessor()
    path = str(clips["9.5s"].path)
    assert len(vp.process_one(path, fps=2.0, **SMALL)[1].frame_indices) == 18
    expected = np.linspace(0, 94, 6).round().astype(int).tolist()
    assert vp.process_one(path, num_frames=6, **SMALL)[1].frame_indices == expected
    assert len(vp.process_one(path, fps=4.0, max_frames=10, **SMALL)[1].frame_indices) == 10
    assert len(vp.process_one(str(clips["2s"].path), min_frames=8, **SMALL)[1].frame_indices) == 8


def test_file_url_equals_path(clips):
    vp = LlavaOnevision2VideoProcessor()
    path = clips["2s"].path
    a, ia = vp.process_one(str(path), **SMALL)
    b, ib = vp.process_one(path.resolve().as_uri(), **SMALL)
    np.testing.assert_array_equal(a["pixel_values"], b["pixel_values"])
    assert ia.timestamps == ib.timestamps


def test_frame_pixel_budget_follows_qwen_vl_utils():
    # official evaluation defaults: 32 frames, min 200704, max 1605632 -> the 768-token per-frame cap applies
    assert frame_pixel_budget(32, min_pixels=200704, max_pixels=1605632) == (200704, 602112)
    # a small user max_pixels wins
    assert frame_pixel_budget(128, min_pixels=153664, max_pixels=153664) == (153664, 153664)
    # many frames: the whole-video budget (90316800 / T * 2) caps each frame
    assert frame_pixel_budget(768, min_pixels=84100, max_pixels=1605632) == (84100, 235200)
    # caps disabled -> only max_pixels
    assert frame_pixel_budget(
        32, min_pixels=200704, max_pixels=1605632, frame_max_pixels=0, total_pixels=0
    ) == (
        200704,
        1605632,
    )
    # token budget: 64 tokens over 8 frames -> 8 tokens per frame
    assert frame_pixel_budget(8, min_pixels=3136, max_pixels=12544, max_visual_tokens=64) == (3136, 8 * 784)


def test_max_visual_tokens_caps_frames(clips):
    vp = LlavaOnevision2VideoProcessor()
    _, info = vp.process_one(str(clips["9.5s"].path), max_visual_tokens=48, min_pixels=784, max_pixels=12544)
    assert info.num_tokens <= 48 and len(info.frame_indices) == 8


def _sampled(n: int = 5, h: int = 84, w: int = 112, fps: float = 10.0, seed: int = 0) -> SampledFrames:
    rng = np.random.default_rng(seed)
    idx = np.arange(n) * 3
    return SampledFrames(
        frames=rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
        frame_indices=idx,
        timestamps=idx / fps,
        fps=fps,
        total_frames=n * 3,
        duration=n * 3 / fps,
    )


def test_release_pads_odd_frame_counts_training_does_not():
    vp = LlavaOnevision2VideoProcessor()
    arrays, info = vp.process_one(_sampled(5), **SMALL)
    assert info.frame_indices == [0, 3, 6, 9, 12, 12] and info.extra["padded_frames"] == 1
    np.testing.assert_array_equal(arrays["pixel_values"][-48:], arrays["pixel_values"][-96:-48])
    _, info_t = vp.process_one(_sampled(5), video_layout="training", **SMALL)
    assert info_t.frame_indices == [0, 3, 6, 9, 12]


def test_pil_resize_is_the_image_path_and_torch_resize_is_close():
    sf = _sampled(2, h=90, w=130)
    vp = LlavaOnevision2VideoProcessor()
    ip = LlavaOnevision2ImageProcessor()
    image_path = ip(list(sf.frames), return_tensors="np", **SMALL)
    pil, _ = vp.process_one(sf, frame_resize="pil", **SMALL)
    np.testing.assert_array_equal(pil["pixel_values"], image_path["pixel_values"])
    torch_, info = vp.process_one(sf, frame_resize="torch", **SMALL)
    assert torch_["pixel_values"].shape == pil["pixel_values"].shape
    # bicubic+antialias (torch) vs PIL bicubic: same geometry, small differences (< ~2 grey levels on average)
    diff = np.abs(torch_["pixel_values"] - pil["pixel_values"]) * 0.27 * 255
    assert diff.mean() < 2.0
    h, w = info.extra["frame_size"]
    resized = resize_frames(sf.frames, h, w)
    assert resized.dtype == np.uint8 and resized.shape == (2, h, w, 3)
    assert resize_frames(resized, h, w) is resized  # same size: untouched


def test_decoded_arrays_with_metadata():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (20, 84, 112, 3), dtype=np.uint8)
    vp = LlavaOnevision2VideoProcessor()
    meta = VideoMetadata(total_num_frames=20, fps=10.0)
    _, info = vp.process_one(frames, metadata=meta, **SMALL)  # full video -> sampled like a file
    assert info.frame_indices == [0, 6, 13, 19]
    meta = {"fps": 10.0, "frames_indices": [2, 4, 6, 8]}
    arrays, info = vp.process_one(
        frames[:4].transpose(0, 3, 1, 2), metadata=meta, **SMALL
    )  # pre-sampled, TCHW
    assert info.timestamps == pytest.approx([0.2, 0.4, 0.6, 0.8])
    ref, _ = vp.process_one(frames[:4], metadata=meta, **SMALL)
    np.testing.assert_array_equal(arrays["pixel_values"], ref["pixel_values"])


def test_missing_and_corrupt_files_raise_video_decode_error(tmp_path, processor):
    vp = LlavaOnevision2VideoProcessor()
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4"):
        vp.process_one(str(missing))
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoDecodeError, match=r"garbage\.mp4"):
        processor(text=f"{VSTART}{VIDEO_PAD}{VEND}", videos=[str(bad)])
    with pytest.raises(VideoDecodeError, match="only local files"):
        vp.process_one("https://example.com/v.mp4")


def test_invalid_options_are_rejected():
    vp = LlavaOnevision2VideoProcessor()
    with pytest.raises(ValueError, match="video_layout"):
        vp.process_one(_sampled(2), video_layout="nope")
    with pytest.raises(TypeError, match="unexpected"):
        vp.process_one(_sampled(2), not_an_option=1)
    with pytest.raises(ValueError, match="codec back end"):
        vp.process_one(_sampled(2), video_backend="codec")


def test_save_load_keeps_settings(tmp_path):
    vp = LlavaOnevision2VideoProcessor(
        video_layout="training",
        timestamp_decimals=2,
        max_frames=16,
        fps=2.0,
        video_backend="codec",
        max_visual_tokens=512,
    )
    vp.save_pretrained(tmp_path)
    loaded = LlavaOnevision2VideoProcessor.from_pretrained(tmp_path)
    for key in (
        "video_layout",
        "timestamp_decimals",
        "max_frames",
        "fps",
        "video_backend",
        "max_visual_tokens",
    ):
        assert getattr(loaded, key) == getattr(vp, key), key


def test_torch_path_normalisation_is_bit_exact_with_the_image_processor():
    sf = _sampled(3, h=90, w=130, seed=5)
    arrays, info = LlavaOnevision2VideoProcessor().process_one(sf, video_layout="training", **SMALL)
    h, w = info.extra["frame_size"]
    ref = LlavaOnevision2ImageProcessor()(
        list(resize_frames(sf.frames, h, w)), do_resize=False, return_tensors="np"
    )
    np.testing.assert_array_equal(arrays["pixel_values"], ref["pixel_values"])

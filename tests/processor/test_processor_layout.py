"""video_layout="processor": the official HF video processor's own ``videos=`` inputs, rule by rule.

The expectations restate the official code's rules independently (``docs/processor.md``, "Video layouts"):
8 / 16 / 384 frames by duration, ``min(max(1, int(duration * fps)), max_frames)`` for a target rate, every frame
when the clip is shorter, float32 ``torch.linspace(...).round()`` indices, one ``[1, h, w]`` row per frame with
``t`` = source frame index, no newline, no padding, ``smart_resize`` with the released pixel budget and no
qwen-vl-utils caps, ``<idx / fps seconds>`` with one decimal.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.processor.conftest import IMAGE_PAD, VEND, VSTART
from transformers_llava_ov2.image_processing_llava_onevision2 import (
    LlavaOnevision2ImageProcessor,
    smart_resize,
)
from transformers_llava_ov2.video.frame_count import linspace_indices, processor_num_frames
from transformers_llava_ov2.video.kernels import resize_frames
from transformers_llava_ov2.video.uniform import sample_uniform_frames
from transformers_llava_ov2.video_processing_llava_onevision2 import (
    LlavaOnevision2VideoProcessor,
    render_video_prompt,
)

SIZE = (64, 36)  # (width, height): tiny frames keep the 384-frame case fast


def official_count(total: int, video_fps: float, target_fps=None, fixed=None, max_frames=384) -> int:
    duration = total / video_fps
    if target_fps is not None:
        return min(max(1, int(duration * target_fps)), max_frames)
    if fixed is not None:
        return fixed
    return 8 if duration < 10 else 16 if duration < 30 else max_frames


def official_indices(total: int, k: int) -> list[int]:
    if total <= k:
        return list(range(total))
    return torch.linspace(0, total - 1, k).round().long().tolist()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    root = tmp_path_factory.mktemp("official_layout")
    specs = {"0.5s": (0.5, 10), "9.5s": (9.5, 4), "12s": (12.0, 4), "45s": (45.0, 10)}
    return {
        name: write_synthetic_clip(root / f"{name}.mp4", seconds=s, fps=f, size=SIZE, object_size=8, gop=5)
        for name, (s, f) in specs.items()
    }


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("0.5s", {}),  # 5 frames < 8: every frame, odd count, no padding
        ("9.5s", {}),  # < 10 s: 8 frames
        ("12s", {}),  # < 30 s: 16 frames
        ("45s", {}),  # >= 30 s: max_frames = 384 (of 450)
        ("45s", {"max_frames": 100}),
        ("12s", {"fps": 0.5}),  # int(12 * 0.5) = 6
        ("45s", {"fps": 2.0}),  # int(90) = 90
        ("9.5s", {"num_frames": 5}),
    ],
)
def test_processor_layout_equals_the_official_rules(clips, name, kwargs):
    clip = clips[name]
    vp = LlavaOnevision2VideoProcessor()
    item = vp.process_video(str(clip.path), video_layout="processor", **kwargs)
    k = official_count(
        clip.num_frames, clip.fps, kwargs.get("fps"), kwargs.get("num_frames"), kwargs.get("max_frames", 384)
    )
    expected = official_indices(clip.num_frames, k)
    info = item.info
    assert info.frame_indices == expected
    assert info.extra["padded_frames"] == 0
    h, w = smart_resize(SIZE[1], SIZE[0], factor=28, min_pixels=256 * 28 * 28, max_pixels=2048 * 28 * 28)
    gh, gw = h // 14, w // 14
    t = len(expected)
    assert item.grid_thw.tolist() == [[1, gh, gw]] * t
    per_frame = gh * gw // 4
    text = "".join(f"<{i / clip.fps:.1f} seconds>{VSTART}{IMAGE_PAD * per_frame}{VEND}" for i in expected)
    assert render_video_prompt(info) == text
    np.testing.assert_array_equal(item.patch_positions[:, 0], np.repeat(expected, gh * gw))
    if t <= 16:  # pixels: torch bicubic resize, then the image processor frame by frame without resize
        sampled = sample_uniform_frames(clip.path, num_frames=t, frame_factor=1)
        assert sampled.frame_indices.tolist() == expected
        resized = resize_frames(sampled.frames, h, w)
        ref = LlavaOnevision2ImageProcessor()(list(resized), do_resize=False, return_tensors="np")
        np.testing.assert_array_equal(item.pixel_values, ref["pixel_values"])


def test_processor_layout_pixel_budget_has_no_qwen_caps():
    vp = LlavaOnevision2VideoProcessor()
    opts = vp.options(video_layout="processor")
    assert (opts.fps, opts.max_frames, opts.frame_max_pixels, opts.total_pixels) == (None, 384, None, None)
    assert vp.options(video_layout="processor", max_frames=64, fps=2.0).max_frames == 64
    release = vp.options()
    assert (release.fps, release.max_frames, release.frame_max_pixels) == (1.0, 32, 602112)


@pytest.mark.parametrize("n", [384, 32])
def test_linspace_indices_equal_torch_float32_up_to_a_million_frames(n):
    totals = [*range(n, 30_001, 7), *range(30_001, 1_000_001, 1_009)]
    for total in totals:
        ref = torch.linspace(0, total - 1, n).round().long().numpy()
        np.testing.assert_array_equal(linspace_indices(total, n), ref, err_msg=f"total={total}")
    # float64 linspace (the old rule) is not the official one: the first 384-sample difference
    assert not np.array_equal(np.linspace(0, 24514, 384).round(), linspace_indices(24515, 384))


def test_processor_num_frames_table():
    assert processor_num_frames(50, 10.0) == 8
    assert processor_num_frames(5, 10.0) == 5
    assert processor_num_frames(150, 10.0) == 16
    assert processor_num_frames(300, 10.0) == 300  # 30 s -> 384 frames, but the clip has 300: every frame
    assert processor_num_frames(10000, 10.0) == 384
    assert processor_num_frames(10000, 10.0, fps=0.05) == 50
    assert processor_num_frames(10, 10.0, fps=0.1) == 1  # int(0.1) = 0 -> at least 1
    assert processor_num_frames(100, 10.0, num_frames=7) == 7
    with pytest.raises(ValueError, match="either fps or num_frames"):
        processor_num_frames(100, 10.0, fps=1.0, num_frames=7)


def test_training_layout_never_pads(tmp_path):
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    clip = write_synthetic_clip(tmp_path / "one.mp4", seconds=0.04, fps=25, size=(64, 48), object_size=8)
    assert clip.num_frames == 1
    vp = LlavaOnevision2VideoProcessor()
    training = vp.process_video(str(clip.path), video_layout="training").info
    release = vp.process_video(str(clip.path), video_layout="release").info
    assert training.frame_indices == [0] and training.extra["padded_frames"] == 0
    assert release.frame_indices == [0, 0]  # the evaluation's even count

"""VideoOptions: defaults in one home, validation errors that name the option, resolution rules."""

from __future__ import annotations

import pytest

from transformers_llava_ov2.video.options import VideoOptions
from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor


def test_processor_attributes_are_the_options_defaults():
    vp = LlavaOnevision2VideoProcessor()
    assert vp.options() == VideoOptions()
    for name in (
        "fps",
        "min_frames",
        "max_frames",
        "min_pixels",
        "max_pixels",
        "video_layout",
        "video_backend",
    ):
        assert getattr(LlavaOnevision2VideoProcessor, name) == getattr(VideoOptions, name)


def test_light_defaults_equal_the_library_constants():
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    from transformers_llava_ov2 import processing_defaults as d

    assert tuple(OPENAI_CLIP_MEAN) == d.IMAGE_MEAN and tuple(OPENAI_CLIP_STD) == d.IMAGE_STD
    assert VideoOptions().resample == 3  # PIL BICUBIC


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_visual_tokens": 0}, "VideoOptions.max_visual_tokens must be >= 1"),
        ({"max_visual_tokens": -1}, "VideoOptions.max_visual_tokens must be >= 1"),
        ({"max_visual_tokens": "64"}, "max_visual_tokens must be a whole number >= 1, got '64' (str)"),
        ({"max_visual_tokens": True}, "max_visual_tokens must be a whole number"),
        ({"fps": float("nan")}, "VideoOptions.fps must be a finite number > 0, got nan"),
        ({"fps": -1.0}, "VideoOptions.fps must be a finite number > 0"),
        ({"timestamp_decimals": -1}, "VideoOptions.timestamp_decimals must be >= 0"),
        ({"video_backend": "nope"}, "VideoOptions.video_backend must be one of ['frames', 'codec']"),
        ({"video_layout": "x"}, "VideoOptions.video_layout must be one of"),
        ({"min_frames": 8, "max_frames": 4}, "min_frames=8 is above max_frames=4"),
        ({"temporal_patch_size": 2}, "temporal_patch_size must be 1"),
        ({"codec_config": 3}, "codec_config must be a CodecConfig or a dict"),
    ],
)
def test_bad_options_name_the_option(kwargs, needle):
    with pytest.raises(ValueError) as err:
        VideoOptions.resolve(VideoOptions(), kwargs)
    assert needle in str(err.value)


def test_fps_and_num_frames_are_alternatives():
    vp = LlavaOnevision2VideoProcessor()
    assert vp.options(num_frames=8).fps is None  # a per-call count clears the default rate
    assert vp.options(fps=2.0).num_frames is None
    with pytest.raises(ValueError, match=r"either fps=2\.0 or num_frames=8, not both"):
        vp.options(fps=2.0, num_frames=8)


def test_unknown_options_raise_type_error():
    with pytest.raises(TypeError, match=r"unexpected keyword arguments: \['max_tokenz'\]"):
        LlavaOnevision2VideoProcessor().options(max_tokenz=3)


def test_options_flow_down_frozen():
    opts = VideoOptions()
    with pytest.raises(AttributeError):
        opts.fps = 2.0  # type: ignore[misc]
    assert opts.replace(fps=2.0).fps == 2.0 and opts.factor == 28


def test_frames_back_end_enforces_the_token_budget(small_h264_clip):
    vp = LlavaOnevision2VideoProcessor()
    with pytest.raises(ValueError, match="max_visual_tokens=1 is below the minimum"):
        vp.process_video(str(small_h264_clip.path), max_visual_tokens=1, max_frames=4)
    with pytest.raises(ValueError, match="must be a whole number"):
        vp.process_video(str(small_h264_clip.path), max_visual_tokens="64")


@pytest.mark.parametrize("layout", ["release", "training"])
@pytest.mark.parametrize(
    "budget", [{}, {"max_pixels": 16 * 28 * 28, "min_pixels": 4 * 28 * 28}, {"max_visual_tokens": 40}]
)
def test_num_visual_tokens_matches_processing_without_decoding(small_h264_clip, layout, budget):
    vp = LlavaOnevision2VideoProcessor()
    kwargs = {"video_layout": layout, "max_frames": 5, "fps": 2.0, **budget}
    item = vp.process_video(str(small_h264_clip.path), **kwargs)
    assert vp.num_visual_tokens(str(small_h264_clip.path), **kwargs) == item.num_tokens
    frames = len(item.info.frame_indices) - item.info.extra["padded_frames"]
    n = vp.num_visual_tokens(num_frames=frames, height=96, width=160, **kwargs)
    assert n == item.num_tokens
    assert (
        vp.num_visual_tokens(duration=2.0, video_fps=25.0, height=96, width=160, **kwargs) == item.num_tokens
    )


def test_num_visual_tokens_needs_facts_and_frames_back_end():
    vp = LlavaOnevision2VideoProcessor()
    with pytest.raises(ValueError, match="needs a video file or height= and width="):
        vp.num_visual_tokens(num_frames=4)
    with pytest.raises(ValueError, match="codec counts depend on the content"):
        vp.num_visual_tokens(num_frames=4, height=96, width=160, video_backend="codec")

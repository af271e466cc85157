"""Codec back end: canvases on the image path, one grid row per video, runs, newlines, token counts."""

from __future__ import annotations

import numpy as np
import pytest

from tests.processor.conftest import IMAGE_PAD, VEND, VIDEO_PAD, VSTART, make_codec_tokens
from transformers_llava_ov2.image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
from transformers_llava_ov2.video_processing_llava_onevision2 import (
    LlavaOnevision2VideoProcessor,
    render_video_prompt,
)


def _block(seconds: str, n: int) -> str:
    return f"<{seconds} seconds>{VSTART}{IMAGE_PAD * n}{VEND}\n"


def test_runs_grid_positions_and_prompt(codec_tokens):
    arrays, info = LlavaOnevision2VideoProcessor().process_one(codec_tokens)
    assert arrays["grid"].tolist() == [[2, 4, 6]]  # one [N_canvas, h, w] row per video (release)
    np.testing.assert_array_equal(arrays["positions"], codec_tokens.block_positions())
    assert arrays["pixel_values"].shape == (48, 588)
    assert info.timestamps == pytest.approx([0.0, 0.3, 0.5, 1.2]) and info.block_tokens == [6, 2, 2, 2]
    assert info.frame_indices == [0, 3, 5, 12] and info.newline
    assert render_video_prompt(info) == _block("0.0", 6) + _block("0.3", 2) + _block("0.5", 2) + _block(
        "1.2", 2
    )
    # token count == visual feature count
    assert int(np.prod(arrays["grid"], axis=1).sum()) // 4 == info.num_tokens == codec_tokens.num_tokens


def test_canvas_pixels_are_the_image_processor_without_resize(codec_tokens):
    arrays, _ = LlavaOnevision2VideoProcessor().process_one(codec_tokens)
    ref = LlavaOnevision2ImageProcessor()(list(codec_tokens.canvases), do_resize=False, return_tensors="np")
    np.testing.assert_array_equal(arrays["pixel_values"], ref["pixel_values"])


def test_per_canvas_rows_option_and_training_layout(codec_tokens):
    vp = LlavaOnevision2VideoProcessor()
    arrays, info = vp.process_one(codec_tokens, codec_grid="canvas")
    assert arrays["grid"].tolist() == [[1, 4, 6], [1, 4, 6]]
    ref, ref_info = vp.process_one(codec_tokens, video_layout="training")
    assert ref["grid"].tolist() == [[2, 4, 6]] and render_video_prompt(ref_info) == render_video_prompt(info)


def test_timestamp_sources(codec_tokens):
    shifted = make_codec_tokens(
        [np.zeros((2, 3), np.int64), np.array([[3, 3, 5], [5, 12, 12]])], pts_offset=0.04, fps=10.0
    )
    vp = LlavaOnevision2VideoProcessor()
    _, pts = vp.process_one(shifted, timestamp_source="pts", timestamp_decimals=2)
    runs = shifted.timestamp_runs()
    assert pts.block_tokens == [n for _, n in runs] and pts.timestamps == pytest.approx([s for s, _ in runs])
    _, idx = vp.process_one(shifted)
    assert idx.timestamps == pytest.approx([0.0, 0.3, 0.5, 1.2])  # release convention: t / fps
    assert render_video_prompt(pts).startswith(f"<0.04 seconds>{VSTART}")


def test_runs_merge_across_canvas_boundaries():
    ct = make_codec_tokens([np.array([[0, 0, 4]]), np.array([[4, 4, 9]])])
    _, info = LlavaOnevision2VideoProcessor().process_one(ct)
    assert info.frame_indices == [0, 4, 9] and info.block_tokens == [2, 3, 1]
    runs = ct.timestamp_runs()
    assert info.block_tokens == [n for _, n in runs] and info.timestamps == pytest.approx(
        [s for s, _ in runs]
    )


def test_processor_rewrites_the_video_span(processor, codec_tokens):
    out = processor(
        text=f"<|im_start|>user\n{VSTART}{VIDEO_PAD}{VEND}Q<|im_end|>",
        videos=[codec_tokens],
        return_tensors="pt",
    )
    text = processor.tokenizer.decode(out["input_ids"][0])
    expected = _block("0.0", 6) + _block("0.3", 2) + _block("0.5", 2) + _block("1.2", 2)
    assert text == f"<|im_start|>user\n{expected}Q<|im_end|>"
    n_pad = int((out["input_ids"] == processor.image_token_id).sum())
    assert n_pad == int(out["image_grid_thw"].prod(-1).sum()) // 4 == out["pixel_values"].shape[0] // 4
    assert out["patch_positions"].shape == (48, 3)


def test_patch_or_merge_mismatch_is_an_error(codec_tokens):
    with pytest.raises(ValueError, match="merge"):
        LlavaOnevision2VideoProcessor().process_one(codec_tokens, merge_size=3)


def test_file_through_the_codec_tokenizer(small_h264_clip, processor):
    codec = pytest.importorskip("transformers_llava_ov2.codec")
    if not hasattr(codec, "tokenize_video"):
        pytest.skip("the codec tokenizer (codec.tokenize_video) is not available yet")
    path = str(small_h264_clip.path)
    ct = codec.tokenize_video(path)
    out = processor(text=f"{VSTART}{VIDEO_PAD}{VEND}", videos=[ct], return_metadata=True)
    assert out["video_metadata"][0].backend == "codec"
    assert out["image_grid_thw"].tolist() == [[ct.num_canvases, *ct.grid_hw]]
    np.testing.assert_array_equal(np.asarray(out["patch_positions"]), ct.block_positions())
    assert sum(np.asarray(out["input_ids"][0]) == processor.image_token_id) == ct.num_tokens
    # the same through a path (the processor runs the tokenizer itself)
    out = processor(
        text=f"{VSTART}{VIDEO_PAD}{VEND}", videos=[path], video_backend="codec", return_metadata=True
    )
    grid = np.asarray(out["image_grid_thw"])
    assert len(grid) == 1 and grid[0, 1:].tolist() == list(ct.grid_hw)
    assert len(out["patch_positions"]) == int(grid.prod(-1).sum()) == 4 * out["video_metadata"][0].num_tokens
    assert (
        sum(np.asarray(out["input_ids"][0]) == processor.image_token_id)
        == out["video_metadata"][0].num_tokens
    )


def test_token_budget_and_canvas_rows_with_the_codec_tokenizer(small_h264_clip, processor):
    codec = pytest.importorskip("transformers_llava_ov2.codec")
    if not hasattr(codec, "tokenize_video"):
        pytest.skip("the codec tokenizer (codec.tokenize_video) is not available yet")
    path = str(small_h264_clip.path)
    text = f"{VSTART}{VIDEO_PAD}{VEND}"
    out = processor(
        text=text, videos=[path], video_backend="codec", max_visual_tokens=32, return_metadata=True
    )
    assert 0 < out["video_metadata"][0].num_tokens <= 32
    rows = processor(text=text, videos=[path], video_backend="codec", codec_grid="canvas")["image_grid_thw"]
    assert all(r[0] == 1 for r in rows)
    decoded = processor.tokenizer.decode(out["input_ids"][0])
    assert decoded.endswith(f"{VEND}\n") and decoded.startswith("<0.0 seconds>")

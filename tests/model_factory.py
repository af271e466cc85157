"""Test helpers: the tiny models and offline tokenizer live in :mod:`transformers_llava_ov2.testing`."""

from transformers_llava_ov2.testing import (
    SMALL_IDS,
    SMALL_VOCAB,
    qwen3_tokenizer_dir,
    small_config,
    tiny_model,
)

__all__ = ["SMALL_IDS", "SMALL_VOCAB", "qwen3_tokenizer_dir", "small_config", "tiny_model"]

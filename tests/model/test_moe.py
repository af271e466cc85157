"""The MoE twin (``llava_onevision2_moe``): released 30B-A3B layout, generation, router auxiliary loss."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText
from transformers.core_model_loading import revert_weight_conversion

from tests.model.test_checkpoint_layout import released_parameter_shapes
from transformers_llava_ov2 import (
    LlavaOnevision2MoeConfig,
    LlavaOnevision2MoeForConditionalGeneration,
    tiny_moe_config,
)


def released_moe_parameter_shapes(
    *, layers=48, hidden=2048, experts=128, moe_ffn=768, q_heads=32, kv_heads=4, head_dim=128
) -> dict[str, tuple[int, ...]]:
    """Spec §7 for the 30B-A3B, written out independently: dense ViT/merger/attention, experts one by one."""
    dense = released_parameter_shapes(
        llm_layers=layers, llm_hidden=hidden, q_heads=q_heads, kv_heads=kv_heads, head_dim=head_dim
    )
    shapes = {k: v for k, v in dense.items() if ".mlp.gate_proj" not in k and ".mlp.up_proj" not in k}
    shapes = {k: v for k, v in shapes.items() if not ("language_model" in k and ".mlp.down_proj" in k)}
    for i in range(layers):
        p = f"model.language_model.layers.{i}.mlp."
        shapes[p + "gate.weight"] = (experts, hidden)
        for j in range(experts):
            shapes[f"{p}experts.{j}.gate_proj.weight"] = (moe_ffn, hidden)
            shapes[f"{p}experts.{j}.up_proj.weight"] = (moe_ffn, hidden)
            shapes[f"{p}experts.{j}.down_proj.weight"] = (hidden, moe_ffn)
    return shapes


def test_30b_a3b_checkpoint_names_and_shapes_on_meta():
    config = LlavaOnevision2MoeConfig.from_variant("30b-a3b")
    with torch.device("meta"):
        model = LlavaOnevision2MoeForConditionalGeneration(config)
    saved = revert_weight_conversion(model, model.state_dict())  # what save_pretrained writes
    actual = {k: tuple(v.shape) for k, v in saved.items()}
    expected = released_moe_parameter_shapes()
    assert sorted(set(actual) - set(expected)) == []
    assert sorted(set(expected) - set(actual)) == []
    assert {k: (actual[k], v) for k, v in expected.items() if actual[k] != v} == {}
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 1) == 30.9
    assert config.text_config.model_type == "qwen3_moe" and config.vision_config.out_hidden_size == 2048


def test_moe_config_round_trip_and_validation(tmp_path):
    config = tiny_moe_config(router_aux_loss_coef=0.05)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, LlavaOnevision2MoeConfig)
    assert loaded.router_aux_loss_coef == 0.05 and loaded.output_router_logits is False
    with pytest.raises(ValueError, match="unknown LLaVA-OneVision-2 MoE variant 'x'"):
        LlavaOnevision2MoeConfig.from_variant("x")
    with pytest.raises(Exception, match="needs a qwen3_moe text_config"):
        LlavaOnevision2MoeConfig(text_config={"model_type": "qwen3", "hidden_size": 4096})


def _inputs():
    ids = torch.tensor([[1, 2, 3] + [500] * 4 + [7, 9]])
    return {
        "input_ids": ids,
        "pixel_values": torch.randn(16, 588),
        "image_grid_thw": torch.tensor([[1, 4, 4]]),
    }


def test_tiny_moe_generates_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = LlavaOnevision2MoeForConditionalGeneration(tiny_moe_config()).eval()
    inputs = _inputs()
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 4)
    model.save_pretrained(tmp_path)
    loaded, info = AutoModelForImageTextToText.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(loaded, LlavaOnevision2MoeForConditionalGeneration)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_router_aux_loss_added_when_requested():
    torch.manual_seed(0)
    config = tiny_moe_config(router_aux_loss_coef=0.5)
    model = LlavaOnevision2MoeForConditionalGeneration(config).eval()
    inputs = _inputs()
    labels = inputs["input_ids"]
    plain = model(**inputs, labels=labels)
    assert plain.aux_loss is None and plain.router_logits is None
    routed = model(**inputs, labels=labels, output_router_logits=True)
    assert len(routed.router_logits) == config.text_config.num_hidden_layers
    assert routed.router_logits[0].shape == (labels.numel(), config.text_config.num_experts)
    assert routed.aux_loss is not None and float(routed.aux_loss.detach()) > 0
    torch.testing.assert_close(routed.loss, plain.loss + 0.5 * routed.aux_loss)
    config.output_router_logits = True  # the config default is honoured too
    assert model(**inputs, labels=labels).aux_loss is not None


def test_moe_config_maps_to_the_shared_processors(tmp_path):
    """A folder whose processor files name no class resolves through the (MoE) model config."""
    import json

    from transformers import AutoImageProcessor
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    from transformers_llava_ov2 import LlavaOnevision2MoeConfig, LlavaOnevision2Processor

    tiny_moe_config().save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"patch_size": 14, "merge_size": 2}))
    assert type(AutoImageProcessor.from_pretrained(tmp_path)).__name__ == "LlavaOnevision2ImageProcessor"
    assert PROCESSOR_MAPPING[LlavaOnevision2MoeConfig] is LlavaOnevision2Processor

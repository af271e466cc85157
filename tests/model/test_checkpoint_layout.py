"""Parameter names/shapes of the released layouts, and loading a folder written in the released format."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText

from tests.model_factory import small_config, tiny_model
from transformers_llava_ov2 import (
    LlavaOnevision2Config,
    LlavaOnevision2ForConditionalGeneration,
    LlavaOnevision2Model,
)


def released_parameter_shapes(
    *,
    vit_layers=24,
    vit_hidden=1024,
    vit_ffn=4096,
    patch=14,
    merge=2,
    llm_layers=36,
    llm_hidden=4096,
    llm_ffn=12288,
    q_heads=32,
    kv_heads=8,
    head_dim=128,
    vocab=151936,
) -> dict[str, tuple[int, ...]]:
    """The checkpoint table of spec architecture.md §7, written out independently of the model code."""
    shapes: dict[str, tuple[int, ...]] = {
        "model.visual.embeddings.patch_embedding.weight": (vit_hidden, 3, patch, patch),
        "model.visual.layernorm_pre.weight": (vit_hidden,),
        "model.visual.layernorm_pre.bias": (vit_hidden,),
    }
    for i in range(vit_layers):
        p = f"model.visual.encoder.layers.{i}."
        shapes.update(
            {
                p + "layer_norm1.weight": (vit_hidden,),
                p + "layer_norm1.bias": (vit_hidden,),
                p + "self_attn.qkv.weight": (3 * vit_hidden, vit_hidden),
                p + "self_attn.qkv.bias": (3 * vit_hidden,),
                p + "self_attn.proj.weight": (vit_hidden, vit_hidden),
                p + "self_attn.proj.bias": (vit_hidden,),
                p + "layer_norm2.weight": (vit_hidden,),
                p + "layer_norm2.bias": (vit_hidden,),
                p + "mlp.fc1.weight": (vit_ffn, vit_hidden),
                p + "mlp.fc1.bias": (vit_ffn,),
                p + "mlp.fc2.weight": (vit_hidden, vit_ffn),
                p + "mlp.fc2.bias": (vit_hidden,),
            }
        )
    merged = vit_hidden * merge * merge
    shapes.update(
        {
            "model.visual.merger.ln_q.weight": (vit_hidden,),
            "model.visual.merger.ln_q.bias": (vit_hidden,),
            "model.visual.merger.mlp.0.weight": (merged, merged),
            "model.visual.merger.mlp.0.bias": (merged,),
            "model.visual.merger.mlp.2.weight": (llm_hidden, merged),
            "model.visual.merger.mlp.2.bias": (llm_hidden,),
            "model.language_model.embed_tokens.weight": (vocab, llm_hidden),
            "model.language_model.norm.weight": (llm_hidden,),
            "lm_head.weight": (vocab, llm_hidden),
        }
    )
    for i in range(llm_layers):
        p = f"model.language_model.layers.{i}."
        shapes.update(
            {
                p + "input_layernorm.weight": (llm_hidden,),
                p + "self_attn.q_proj.weight": (q_heads * head_dim, llm_hidden),
                p + "self_attn.k_proj.weight": (kv_heads * head_dim, llm_hidden),
                p + "self_attn.v_proj.weight": (kv_heads * head_dim, llm_hidden),
                p + "self_attn.o_proj.weight": (llm_hidden, q_heads * head_dim),
                p + "self_attn.q_norm.weight": (head_dim,),
                p + "self_attn.k_norm.weight": (head_dim,),
                p + "post_attention_layernorm.weight": (llm_hidden,),
                p + "mlp.gate_proj.weight": (llm_ffn, llm_hidden),
                p + "mlp.up_proj.weight": (llm_ffn, llm_hidden),
                p + "mlp.down_proj.weight": (llm_hidden, llm_ffn),
            }
        )
    return shapes


def meta_state_shapes(config: LlavaOnevision2Config) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = LlavaOnevision2ForConditionalGeneration(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@pytest.mark.parametrize(
    ("variant", "layout"),
    [
        ("8b", {}),
        ("4b-p16m3", {"patch": 16, "merge": 3, "llm_hidden": 2560, "llm_ffn": 9728}),
        ("4b-p14m2", {"llm_hidden": 2560, "llm_ffn": 9728}),
        ("2b", {"llm_layers": 28, "llm_hidden": 2048, "llm_ffn": 6144, "q_heads": 16}),
    ],
)
def test_released_layout_parameter_names_and_shapes(variant, layout):
    expected = released_parameter_shapes(**layout)
    actual = meta_state_shapes(LlavaOnevision2Config.from_variant(variant))
    assert sorted(set(actual) - set(expected)) == [], "unexpected parameters"
    assert sorted(set(expected) - set(actual)) == [], "missing parameters"
    mismatched = {k: (actual[k], v) for k, v in expected.items() if actual[k] != v}
    assert mismatched == {}


def test_8b_parameter_count_matches_spec():
    with torch.device("meta"):
        model = LlavaOnevision2ForConditionalGeneration(LlavaOnevision2Config.from_variant("8b"))
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    vit = count(model.model.visual) - count(model.model.visual.merger)
    assert round(vit / 1e6, 1) == 302.9
    assert round(count(model.model.visual.merger) / 1e6, 1) == 33.6
    assert round(count(model) / 1e9, 2) == 8.53


def write_released_folder(path: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A checkpoint folder in the released format, written without the package's save code."""
    config = small_config()
    torch.manual_seed(seed)
    with torch.device("meta"):
        skeleton = LlavaOnevision2ForConditionalGeneration(config)
    tensors = {name: torch.randn(t.shape) * 0.02 for name, t in skeleton.state_dict().items()}
    for name in tensors:
        if "norm" in name and name.endswith("weight"):
            tensors[name] = torch.ones_like(tensors[name])
    os.makedirs(path, exist_ok=True)
    # two shards + index, like the release
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: tensors[k].to(torch.bfloat16).contiguous() for k in keys}, os.path.join(path, file))
        weight_map.update(dict.fromkeys(keys, file))
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    text = config.text_config.to_dict()
    vision = config.vision_config.to_dict()
    vision.update(
        model_type="llava_onevision2",  # pre-release sub-config type
        use_patch_position_encoding=False,
        patch_position_encoding_type="absolute",
        max_position_embeddings=8192,
        text_hidden_size=text["hidden_size"],
    )
    released = {
        "architectures": ["LlavaOnevision2ForConditionalGeneration"],
        "auto_map": {
            "AutoConfig": "configuration_llava_onevision2.LlavaOnevision2Config",
            "AutoModelForCausalLM": "modeling_llava_onevision2.LlavaOnevision2ForConditionalGeneration",
            "AutoModelForImageTextToText": "modeling_llava_onevision2.LlavaOnevision2ForConditionalGeneration",
        },
        "model_type": "llava_onevision2",
        "torch_dtype": "bfloat16",
        "transformers_version": "5.0.0",
        "image_token_id": config.image_token_id,
        "video_token_id": config.video_token_id,
        "vision_start_token_id": config.vision_start_token_id,
        "vision_end_token_id": config.vision_end_token_id,
        "tie_word_embeddings": False,
        "text_config": text,
        "vision_config": vision,
    }
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(released, f, indent=2)
    return tensors


def test_released_folder_loads_without_remote_code(tmp_path):
    tensors = write_released_folder(str(tmp_path))
    model, info = AutoModelForImageTextToText.from_pretrained(str(tmp_path), output_loading_info=True)
    assert isinstance(model, LlavaOnevision2ForConditionalGeneration)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.dtype == torch.bfloat16  # checkpoint dtype is kept
    state = model.state_dict()
    for name, value in tensors.items():
        torch.testing.assert_close(state[name].float(), value.to(torch.bfloat16).float(), rtol=0, atol=0)
    # the RoPE buffers are recomputed, not left uninitialised by meta-device loading
    rope = model.model.visual.video_rope
    assert torch.equal(
        rope.inv_freq_t.float(), 10000.0 ** -(torch.arange(rope.inv_freq_t.numel()) / rope.inv_freq_t.numel())
    )
    assert model.config.vision_config.model_type == "onevision_encoder"
    assert (
        AutoModelForCausalLM.from_pretrained(str(tmp_path)).__class__
        is LlavaOnevision2ForConditionalGeneration
    )
    assert AutoModel.from_pretrained(str(tmp_path)).__class__ is LlavaOnevision2Model


def test_save_load_round_trip_identical_logits(tmp_path):
    model = tiny_model(small_config(), seed=3)
    ids = torch.tensor([[1, 2, 3] + [500] * 4 + [7]])
    inputs = {
        "input_ids": ids,
        "pixel_values": torch.randn(16, 588),
        "image_grid_thw": torch.tensor([[1, 4, 4]]),
    }
    expected = model(**inputs).logits
    model.save_pretrained(str(tmp_path))
    loaded, info = AutoModelForImageTextToText.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    torch.testing.assert_close(loaded.eval()(**inputs).logits, expected, rtol=0, atol=0)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (
        saved["model_type"] == "llava_onevision2"
        and saved["vision_config"]["model_type"] == "onevision_encoder"
    )
    reloaded = AutoConfig.from_pretrained(str(tmp_path)).vision_config
    assert {k: getattr(reloaded, k) for k in saved["vision_config"]} == saved["vision_config"]


def test_broken_checkpoint_gives_clear_error(tmp_path):
    write_released_folder(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision_config"]["out_hidden_size"] = 7  # does not match the text hidden size
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match=r"out_hidden_size=7 must equal text_config\.hidden_size"):
        AutoModelForImageTextToText.from_pretrained(str(tmp_path))

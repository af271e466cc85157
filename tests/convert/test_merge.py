"""Stage-0 merge: standalone OneVision-Encoder + Qwen3 / Qwen3-MoE (+ projector) → LLaVA-OneVision-2."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForImageTextToText,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

from transformers_llava_ov2.convert import ConversionError
from transformers_llava_ov2.convert import merge as merge_module
from transformers_llava_ov2.convert.merge import MergeOptions, merge_stage0

QUIET = {"log": lambda _: None}
IDS = {"image_token_id": 500, "video_token_id": 501, "vision_start_token_id": 502, "vision_end_token_id": 503}
ENC = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 2,
       "patch_size": 14, "image_size": 448, "layer_norm_eps": 1e-5, "hidden_act": "gelu", "num_channels": 3,
       "model_type": "onevision_encoder", "use_head": True}  # fmt: skip


def write_encoder(folder, compiled=False, seed=0):
    """A standalone OneVision-Encoder folder as its own repo stores it (spec §7.2): separate q/k/v,
    out_proj, layernorm_post, a pooling head and rotary buffers."""
    g = torch.Generator().manual_seed(seed)
    h, f = ENC["hidden_size"], ENC["intermediate_size"]
    r = lambda *s: torch.randn(*s, generator=g) * 0.05  # noqa: E731
    t = {
        "embeddings.patch_embedding.weight": r(h, 3, 14, 14),
        "layernorm_pre.weight": 1 + r(h),
        "layernorm_pre.bias": r(h),
    }
    for i in range(ENC["num_hidden_layers"]):
        p = f"encoder.{'_orig_mod.' if compiled else ''}layers.{i}."
        for n in ("layer_norm1", "layer_norm2"):
            t[p + n + ".weight"], t[p + n + ".bias"] = 1 + r(h), r(h)
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"self_attn.{n}.weight"], t[p + f"self_attn.{n}.bias"] = r(h, h), r(h)
        t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = r(f, h), r(f)
        t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = r(h, f), r(h)
    t |= {"layernorm_post.weight": 1 + r(h), "layernorm_post.bias": r(h), "head.probe": r(1, 1, h),
          "head.attention.in_proj_weight": r(3 * h, h), "head.mlp.fc1.weight": r(f, h),
          "video_rope.inv_freq_t": r(4)}  # fmt: skip
    folder.mkdir()
    save_file(t, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(ENC))
    return t


def write_llm(folder, moe=False, tied=False, seed=0):
    torch.manual_seed(seed)
    common = {"vocab_size": 520, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": tied}  # fmt: skip
    if moe:
        model = Qwen3MoeForCausalLM(
            Qwen3MoeConfig(**common, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2)
        )
    else:
        model = Qwen3ForCausalLM(Qwen3Config(**common, intermediate_size=128))
    model.save_pretrained(folder)
    return model


@pytest.mark.parametrize(
    ("moe", "tied", "compiled"), [(False, False, True), (True, True, False)], ids=["dense", "moe-tied"]
)
def test_merge_validates_and_loads(tmp_path, moe, tied, compiled):
    enc = write_encoder(tmp_path / "vit", compiled=compiled)
    write_llm(tmp_path / "llm", moe=moe, tied=tied)
    notes = []
    report = merge_stage0(
        tmp_path / "vit",
        tmp_path / "llm",
        tmp_path / "out",
        options=MergeOptions(token_ids=IDS),
        log=notes.append,
    )
    assert any("validated: vision tower output" in n for n in notes)
    assert any("validated: text logits" in n for n in notes)
    assert "dropped 6 encoder tensors" in report.notes[-1] and "head.probe" in report.notes[-1]
    model, info = AutoModelForImageTextToText.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.model_type == ("llava_onevision2_moe" if moe else "llava_onevision2")
    assert model.config.vision_config.layer_norm_eps == 1e-5  # the encoder's own, not the class default
    state = model.state_dict()
    p = f"encoder.{'_orig_mod.' if compiled else ''}layers.1.self_attn."
    qkv = torch.cat([enc[p + "q_proj.weight"], enc[p + "k_proj.weight"], enc[p + "v_proj.weight"]])
    assert torch.equal(state["model.visual.encoder.layers.1.self_attn.qkv.weight"], qkv)
    assert torch.equal(state["model.visual.encoder.layers.1.self_attn.proj.bias"], enc[p + "out_proj.bias"])
    llm = load_file(str(tmp_path / "llm" / "model.safetensors"))
    head = llm["model.embed_tokens.weight"] if tied else llm["lm_head.weight"]
    assert torch.equal(state["lm_head.weight"], head)
    assert (tmp_path / "out" / "preprocessor_config.json").is_file()


def test_merge_with_projector(tmp_path):
    write_encoder(tmp_path / "vit")
    write_llm(tmp_path / "llm")
    proj = {"model.mm_projector.ln_q.weight": torch.rand(64), "model.mm_projector.ln_q.bias": torch.rand(64),
            "model.mm_projector.mlp.0.weight": torch.rand(256, 256), "model.mm_projector.mlp.0.bias": torch.rand(256),
            "model.mm_projector.mlp.2.weight": torch.rand(64, 256), "model.mm_projector.mlp.2.bias": torch.rand(64)}  # fmt: skip
    (tmp_path / "proj").mkdir()
    save_file(proj, str(tmp_path / "proj" / "model.safetensors"))
    merge_stage0(
        tmp_path / "vit",
        tmp_path / "llm",
        tmp_path / "out",
        tmp_path / "proj",
        MergeOptions(token_ids=IDS, validate=False),
        **QUIET,
    )
    out = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert torch.equal(out["model.visual.merger.mlp.2.weight"], proj["model.mm_projector.mlp.2.weight"])


def _drop(folder, name):
    data = load_file(str(folder / "model.safetensors"))
    data.pop(name)
    save_file(data, str(folder / "model.safetensors"))


def test_merge_failures_leave_nothing(tmp_path, monkeypatch):
    write_encoder(tmp_path / "vit")
    write_llm(tmp_path / "llm")
    opts = MergeOptions(token_ids=IDS)

    def run():
        merge_stage0(tmp_path / "vit", tmp_path / "llm", tmp_path / "out", options=opts, **QUIET)

    real = merge_module._produce

    def swap_qk(sources, plan, config, seed):  # a wrong q/k order must be caught by the validation
        for name, tensor in real(sources, plan, config, seed):
            yield (
                name,
                (tensor.roll(64, dims=0) if name.endswith("layers.0.self_attn.qkv.weight") else tensor),
            )

    monkeypatch.setattr(merge_module, "_produce", swap_qk)
    with pytest.raises(ConversionError, match=r"vision tower output .* differs from the standalone model"):
        run()
    monkeypatch.setattr(merge_module, "_produce", real)
    assert not (tmp_path / "out").exists()
    _drop(tmp_path / "vit", "encoder.layers.1.self_attn.v_proj.bias")
    with pytest.raises(ConversionError, match=r"incomplete q/k/v .*encoder.layers.1.self_attn.v_proj.bias"):
        run()
    _drop(tmp_path / "vit", "encoder.layers.1.self_attn.k_proj.bias")
    _drop(tmp_path / "vit", "encoder.layers.1.self_attn.q_proj.bias")
    with pytest.raises(
        ConversionError, match=r"missing tensors \['model.visual.encoder.layers.1.self_attn.qkv.bias'\]"
    ):
        run()
    _drop(tmp_path / "llm", "model.norm.weight")
    with pytest.raises(ConversionError, match=r"missing tensors .*model.language_model.norm.weight"):
        run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llm", "vit"]


def test_merge_dry_run_writes_nothing(tmp_path):
    write_encoder(tmp_path / "vit")
    write_llm(tmp_path / "llm")
    lines = []
    report = merge_stage0(
        tmp_path / "vit",
        tmp_path / "llm",
        None,
        options=MergeOptions(token_ids=IDS),
        dry_run=True,
        log=lines.append,
    )
    assert (
        report.dry_run and report.tensors > 0 and "dropped from the encoder: head.probe" in "\n".join(lines)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llm", "vit"]

"""HF → Megatron → HF is bit-exact (dense and MoE; legacy TP/PP/EP and torch_dist)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from transformers_llava_ov2.convert.hf_to_megatron import HfToMegatronOptions, hf_to_megatron
from transformers_llava_ov2.convert.megatron_legacy import LegacyMegatronView
from transformers_llava_ov2.convert.megatron_to_hf import megatron_to_hf

QUIET = {"log": lambda _: None}


@pytest.mark.parametrize(
    ("moe", "options"),
    [
        (False, HfToMegatronOptions(tp=2, pp=2)),
        (False, HfToMegatronOptions(tp=1, pp=2, pp_layers=(0, 2))),
        (False, HfToMegatronOptions(target_format="torch_dist", vocab_tp=2)),
        (True, HfToMegatronOptions(tp=2, ep=2)),
        (True, HfToMegatronOptions(pp=2, ep=2, grouped_gemm=True)),
        (True, HfToMegatronOptions(target_format="torch_dist")),
    ],
    ids=["dense-tp2-pp2", "dense-pp2-custom", "dense-dist", "moe-tp2-ep2", "moe-pp2-ep2-grouped", "moe-dist"],
)
def test_round_trip_bit_exact(dense_truth, moe_truth, tmp_path, moe, options):
    folder, model, tensors = moe_truth if moe else dense_truth
    hf_to_megatron(folder, tmp_path / "mg", options, **QUIET)
    megatron_to_hf(tmp_path / "mg", tmp_path / "hf", model.config, **QUIET)
    back = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert sorted(back) == sorted(tensors)
    assert [k for k, v in tensors.items() if not (torch.equal(back[k], v) and back[k].dtype == v.dtype)] == []


def test_legacy_layout_written(dense_truth, tmp_path):
    """The written checkpoint has Megatron's layout: rank folders, padded vocab shards, 2-D patch shards."""
    folder, _model, _ = dense_truth
    hf_to_megatron(folder, tmp_path / "mg", HfToMegatronOptions(tp=2, pp=2), **QUIET)
    assert (tmp_path / "mg" / "latest_checkpointed_iteration.txt").read_text().strip() == "release"
    names = sorted(p.name for p in (tmp_path / "mg" / "release").iterdir())
    assert names == ["mp_rank_00_000", "mp_rank_00_001", "mp_rank_01_000", "mp_rank_01_001"]
    view = LegacyMegatronView(tmp_path / "mg")
    assert (view.tp, view.pp, view.ep) == (2, 2, 1)
    emb = view.shard_shapes("language_model.embedding.word_embeddings.weight")
    assert emb == [(384, 64), (384, 64)]  # 520 padded to a multiple of 128·TP = 768
    assert view.shard_shapes("vision_model.patch_embed.proj.weight") == [(32, 588), (32, 588)]
    stage1 = view.models[(0, 1, 0)]
    assert "language_model.decoder.layers.0.self_attention.linear_qkv.weight" in stage1
    assert (
        "language_model.output_layer.weight" in stage1 and "vision_model.pre_layernorm.weight" not in stage1
    )


def test_dry_run_prints_the_stage_plan(dense_truth, tmp_path):
    folder, _, _ = dense_truth
    lines = []
    hf_to_megatron(
        folder, None, HfToMegatronOptions(tp=2, pp=2, pp_layers=(0, 2)), dry_run=True, log=lines.append
    )
    text = "\n".join(lines)
    assert "stage 0: ViT, adapter, embedding, no LLM layers (2 rank files)" in text
    assert "stage 1: LLM layers 0-1, final norm, output layer" in text
    assert list(tmp_path.iterdir()) == []

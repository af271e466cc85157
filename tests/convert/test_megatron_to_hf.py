"""Megatron (legacy torch TP/PP/EP and torch_dist) → HF gives exactly the expected tensors, and the model runs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from tests.convert.megatron_fixtures import write_dist, write_legacy
from transformers_llava_ov2.convert.megatron_to_hf import MegatronToHfOptions, megatron_to_hf

QUIET = {"log": lambda _: None}


def _inputs():
    ids = torch.tensor([[1, 2, 3] + [500] * 4 + [7, 9]])
    torch.manual_seed(1)
    return {
        "input_ids": ids,
        "pixel_values": torch.randn(16, 588),
        "image_grid_thw": torch.tensor([[1, 4, 4]]),
    }


def _assert_same_folder(out, tensors, truth_folder):
    got = load_file(str(out / "model.safetensors"))
    assert sorted(got) == sorted(tensors)
    assert [k for k in tensors if not torch.equal(got[k], tensors[k])] == []
    loaded, info = AutoModelForImageTextToText.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    inputs = _inputs()
    reference = AutoModelForImageTextToText.from_pretrained(truth_folder).eval()
    torch.testing.assert_close(loaded.eval()(**inputs).logits, reference(**inputs).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("tp", "pp", "patch", "pp_layers"),
    [
        (1, 1, "tp_linear", None),
        (2, 1, "tp_linear", None),
        (2, 2, "replicated_conv", None),
        (1, 2, "tp_linear", [0, 2]),
    ],
    ids=["tp1", "tp2", "tp2-pp2-replicated-patch", "pp2-vit-only-stage0"],
)
def test_dense_legacy_to_hf(dense_truth, tmp_path, tp, pp, patch, pp_layers):
    folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config, tp=tp, pp=pp, patch=patch, pp_layers=pp_layers)
    report = megatron_to_hf(
        tmp_path / "mg", tmp_path / "hf", model.config, MegatronToHfOptions(skeleton=folder), **QUIET
    )
    assert report.tensors == len(tensors)
    _assert_same_folder(tmp_path / "hf", tensors, folder)
    assert (tmp_path / "hf" / "generation_config.json").is_file()
    assert (tmp_path / "hf" / "preprocessor_config.json").is_file()


@pytest.mark.parametrize("grouped", [False, True], ids=["sequential-mlp", "grouped-gemm"])
def test_moe_legacy_tp2_ep2_to_hf(moe_truth, tmp_path, grouped):
    folder, model, tensors = moe_truth
    write_legacy(tmp_path / "mg", tensors, model.config, tp=2, pp=1, ep=2, grouped=grouped)
    assert sorted(p.name for p in (tmp_path / "mg" / "release").iterdir())[0] == "mp_rank_00_000_000"
    megatron_to_hf(
        tmp_path / "mg", tmp_path / "hf", model.config, MegatronToHfOptions(skeleton=folder), **QUIET
    )
    _assert_same_folder(tmp_path / "hf", tensors, folder)


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_torch_dist_to_hf_equals_legacy_to_hf(dense_truth, moe_truth, tmp_path, moe):
    _folder, model, tensors = moe_truth if moe else dense_truth
    write_dist(tmp_path / "dist", tensors, model.config)
    write_legacy(tmp_path / "legacy", tensors, model.config, tp=2)
    megatron_to_hf(tmp_path / "dist", tmp_path / "a", model.config, **QUIET)
    megatron_to_hf(tmp_path / "legacy", tmp_path / "b", model.config, **QUIET)
    a, b = (
        load_file(str(tmp_path / "a" / "model.safetensors")),
        load_file(str(tmp_path / "b" / "model.safetensors")),
    )
    assert sorted(a) == sorted(b) == sorted(tensors)
    assert [k for k in a if not (torch.equal(a[k], b[k]) and torch.equal(a[k], tensors[k]))] == []


def test_cast_and_sharded_output(dense_truth, tmp_path):
    _folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config, tp=2)
    options = MegatronToHfOptions(dtype=torch.float32, max_shard_bytes=200_000)
    megatron_to_hf(tmp_path / "mg", tmp_path / "hf", model.config, options, **QUIET)
    shards = sorted((tmp_path / "hf").glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "hf" / "model.safetensors.index.json").is_file()
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "hf")
    assert loaded.dtype == torch.float32
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v.float()) for k, v in tensors.items())

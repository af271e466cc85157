"""Every corruption fails loudly, naming the problem, and leaves no output folder; ``--dry-run`` writes nothing."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.convert.megatron_fixtures import fake_megatron_module, write_legacy
from transformers_llava_ov2.convert import ConversionError
from transformers_llava_ov2.convert.hf_to_megatron import HfToMegatronOptions, hf_to_megatron
from transformers_llava_ov2.convert.megatron_to_hf import MegatronToHfOptions, megatron_to_hf
from transformers_llava_ov2.testing import small_config

QUIET = {"log": lambda _: None}
LN = "language_model.decoder.layers.0.self_attention.linear_qkv.layer_norm_weight"
QKV = "language_model.decoder.layers.1.self_attention.linear_qkv.weight"


def _rank_file(root, name="mp_rank_00"):
    return root / "release" / name / "model_optim_rng.pt"


def _edit_rank(root, name, edit):
    path = _rank_file(root, name)
    with fake_megatron_module():
        data = torch.load(path, weights_only=False)
        edit(data["model"])
        torch.save(data, path)


def _no_output(tmp_path):
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("mg", "src")]
    assert leftovers == [], leftovers


CORRUPTIONS = {
    "missing": (lambda m: m.pop(QKV), r"linear_qkv.weight' is missing on TP ranks \[1\]"),
    "renamed": (
        lambda m: m.__setitem__(
            "language_model.decoder.layers.1.self_attention.linear_qkvv.weight", m.pop(QKV)
        ),
        "unexpected tensors .*linear_qkvv.weight",
    ),
    "shape": (
        lambda m: m.__setitem__(QKV, m[QKV][:-1].clone()),
        r"linear_qkv.weight': TP shards disagree in shape \(tp1: \[63, 64\]",
    ),
    "tp-disagree": (
        lambda m: m.__setitem__(LN, m[LN] + 1),
        "should be identical on every rank but tp1 differs",
    ),
    "nan": (lambda m: m[QKV].__setitem__((0, 0), float("nan")), "q_proj.weight' has 1 NaN"),
    "dtype": (
        lambda m: m.__setitem__(LN, m[LN].half()),
        r"layer_norm_weight' \(on tp1\) is torch.float16 but",
    ),
    "integer": (
        lambda m: m.__setitem__(LN, m[LN].long()),
        "stored as torch.int64; model weights must be floating",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_megatron_corruption_fails_and_leaves_nothing(dense_truth, tmp_path, case):
    _folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config, tp=2)
    edit, message = CORRUPTIONS[case]
    _edit_rank(tmp_path / "mg", "mp_rank_01", edit)
    with pytest.raises(ConversionError, match=message):
        megatron_to_hf(tmp_path / "mg", tmp_path / "out", model.config, **QUIET)
    _no_output(tmp_path)


def test_truncated_rank_file(dense_truth, tmp_path):
    _folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config, tp=2)
    path = _rank_file(tmp_path / "mg", "mp_rank_01")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConversionError, match=r"mp_rank_01/model_optim_rng.pt' is unreadable or truncated"):
        megatron_to_hf(tmp_path / "mg", tmp_path / "out", model.config, **QUIET)
    _no_output(tmp_path)


def test_config_not_matching_the_weights(dense_truth, tmp_path):
    _folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config)
    wrong = small_config(vocab_size=520, text_layers=3)
    with pytest.raises(ConversionError, match=r"missing tensors .*layers.2"):
        megatron_to_hf(tmp_path / "mg", tmp_path / "out", wrong, **QUIET)
    wider = small_config(vocab_size=520, vision_hidden_size=128)
    with pytest.raises(ConversionError, match=r"expected .* from the config"):
        megatron_to_hf(tmp_path / "mg", tmp_path / "out", wider, **QUIET)
    _no_output(tmp_path)


def test_failure_mid_write_leaves_no_folder(dense_truth, tmp_path):
    """A NaN in the last tensor is found after most shards were written: still no output folder."""
    _folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config)
    _edit_rank(
        tmp_path / "mg",
        "mp_rank_00",
        lambda m: m["language_model.output_layer.weight"].__setitem__((3, 3), float("inf")),
    )
    with pytest.raises(ConversionError, match=r"'lm_head.weight' has 0 NaN and 1 Inf"):
        megatron_to_hf(
            tmp_path / "mg",
            tmp_path / "out",
            model.config,
            MegatronToHfOptions(max_shard_bytes=50_000),
            **QUIET,
        )
    _no_output(tmp_path)


def test_dry_run_writes_nothing_and_validates(dense_truth, tmp_path):
    folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config, tp=2)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    lines = []
    report = megatron_to_hf(tmp_path / "mg", tmp_path / "out", model.config, dry_run=True, log=lines.append)
    assert report.dry_run and report.tensors == len(tensors)
    assert "model.visual.embeddings.patch_embedding.weight" in "\n".join(lines)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    report = hf_to_megatron(folder, tmp_path / "out2", HfToMegatronOptions(tp=2), dry_run=True, **QUIET)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    _edit_rank(tmp_path / "mg", "mp_rank_01", lambda m: m[QKV].__setitem__((0, 0), float("nan")))
    with pytest.raises(ConversionError, match=r"NaN"):
        megatron_to_hf(tmp_path / "mg", None, model.config, dry_run=True, **QUIET)


def _copy_hf(folder, dst):
    dst.mkdir()
    for p in folder.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_hf_source_corruptions(dense_truth, tmp_path):
    folder, _model, _tensors = dense_truth
    src = _copy_hf(folder, tmp_path / "src")
    weights = src / "model.safetensors"
    data = load_file(str(weights))
    data["model.visual.merger.mlp.0.biass"] = data.pop("model.visual.merger.mlp.0.bias")
    save_file(data, str(weights))
    with pytest.raises(
        ConversionError, match=r"missing tensors .*mlp.0.bias'.*unexpected tensors .*mlp.0.biass"
    ):
        hf_to_megatron(src, tmp_path / "out", **QUIET)
    data["model.visual.merger.mlp.0.bias"] = data.pop("model.visual.merger.mlp.0.biass")
    data["lm_head.weight"][0, 0] = float("nan")
    save_file(data, str(weights))
    with pytest.raises(ConversionError, match=r"'lm_head.weight' has 1 NaN"):
        hf_to_megatron(src, tmp_path / "out", **QUIET)
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ConversionError, match=r"model.safetensors' is unreadable or truncated"):
        hf_to_megatron(src, tmp_path / "out", **QUIET)
    config = json.loads((src / "config.json").read_text())
    config["text_config"]["intermediate_size"] = 256
    (src / "config.json").write_text(json.dumps(config))
    save_file(load_file(str(folder / "model.safetensors")), str(weights))
    with pytest.raises(ConversionError, match=r"_proj.weight' has shape .*config does not match the weights"):
        hf_to_megatron(src, tmp_path / "out", **QUIET)
    _no_output(tmp_path)


def test_never_writes_into_the_source(dense_truth, tmp_path):
    folder, model, tensors = dense_truth
    write_legacy(tmp_path / "mg", tensors, model.config)
    with pytest.raises(ConversionError, match=r"overlaps the source"):
        megatron_to_hf(tmp_path / "mg", tmp_path / "mg" / "hf", model.config, **QUIET)
    with pytest.raises(ConversionError, match=r"already exists"):
        megatron_to_hf(tmp_path / "mg", tmp_path / "mg", model.config, **QUIET)
    with pytest.raises(ConversionError, match=r"TP=3 must divide|not divisible"):
        hf_to_megatron(folder, tmp_path / "out", HfToMegatronOptions(tp=3), **QUIET)
    _no_output(tmp_path)


def test_truncated_torch_dist(dense_truth, tmp_path):
    from tests.convert.megatron_fixtures import write_dist

    _, model, tensors = dense_truth
    write_dist(tmp_path / "mg", tensors, model.config)
    shard = next((tmp_path / "mg" / "release").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    with pytest.raises(ConversionError, match=r"cannot be read from torch_dist checkpoint .*truncated"):
        megatron_to_hf(tmp_path / "mg", tmp_path / "out", model.config, **QUIET)
    _no_output(tmp_path)


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))  # would create a file when unpickled by plain pickle


def test_restricted_unpickler_runs_no_code(tmp_path):
    import pickle

    from transformers_llava_ov2.convert import safe_pickle

    target = tmp_path / "pwned"
    data = pickle.dumps({"args": _Evil(str(target)), "iteration": 3})
    loaded = safe_pickle.loads(data)
    assert not target.exists()
    assert isinstance(loaded["args"], safe_pickle.Opaque) and ".open(" in repr(loaded["args"])
    assert loaded["iteration"] == 3

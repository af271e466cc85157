"""``llava-ov2 convert ...`` / ``llava-ov2 check`` and the thin scripts in ``conversion/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tests.convert.test_merge import write_encoder, write_llm
from transformers_llava_ov2.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_hf_megatron_hf_via_cli(dense_truth, tmp_path, capsys):
    folder, _, tensors = dense_truth
    assert (
        main(["convert", "hf-to-megatron", str(folder), str(tmp_path / "mg"), "--tp", "2", "--pp", "2", "-q"])
        == 0
    )
    assert (
        main(["convert", "megatron-to-hf", str(tmp_path / "mg"), "--config", str(folder), "--dry-run"]) == 0
    )
    assert "would write" in capsys.readouterr().out and not (tmp_path / "hf").exists()
    argv = [
        "convert",
        "megatron-to-hf",
        str(tmp_path / "mg"),
        str(tmp_path / "hf"),
        "--skeleton",
        str(folder),
        "-q",
    ]
    assert main(argv) == 0
    back = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert all(torch.equal(back[k], v) for k, v in tensors.items())
    assert main(["convert", "megatron-to-hf", str(tmp_path / "mg"), str(tmp_path / "x")]) == 2
    assert "needs the model's config" in capsys.readouterr().err
    assert (
        main(["convert", "megatron-to-hf", str(tmp_path / "mg"), str(tmp_path / "hf"), "--variant", "8b"])
        == 2
    )
    assert "already exists" in capsys.readouterr().err


def test_merge_via_cli(tmp_path):
    write_encoder(tmp_path / "vit")
    write_llm(tmp_path / "llm")
    ids = [
        "--image-token-id",
        "500",
        "--video-token-id",
        "501",
        "--vision-start-token-id",
        "502",
        "--vision-end-token-id",
        "503",
    ]
    argv = [
        "convert",
        "merge-stage0",
        "--vit",
        str(tmp_path / "vit"),
        "--llm",
        str(tmp_path / "llm"),
        str(tmp_path / "out"),
    ]
    assert main([*argv, *ids, "--no-validate", "-q"]) == 0
    assert (tmp_path / "out" / "config.json").is_file()


def test_check_via_cli(dense_truth, tmp_path, capsys):
    folder, _, _ = dense_truth
    assert main(["check", str(folder)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_bytes((folder / "config.json").read_bytes())
    data = load_file(str(folder / "model.safetensors"))
    data["model.language_model.norm.weight"][0] = float("nan")
    data["model.visual.layernorm_pre.weight_renamed"] = data.pop("model.visual.layernorm_pre.weight")
    save_file(data, str(bad / "model.safetensors"))
    assert main(["check", str(bad), "-q"]) == 1
    err = capsys.readouterr().err
    assert "unexpected tensor 'model.visual.layernorm_pre.weight_renamed'" in err
    assert "missing tensor 'model.visual.layernorm_pre.weight'" in err
    assert "'model.language_model.norm.weight' has 1 NaN" in err
    assert main(["check", str(tmp_path / "nowhere")]) == 2


def test_conversion_scripts_run_as_files_and_modules():
    """``--help`` through each entry style (the jobs themselves are tested in-process above)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    as_file = subprocess.run([sys.executable, str(ROOT / "conversion" / "check.py"), "--help"],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert as_file.returncode == 0 and "MODEL_DIR" in as_file.stdout, as_file.stderr
    as_module = subprocess.run([sys.executable, "-m", "conversion.megatron_to_hf", "--help"], cwd=ROOT,
                               capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert as_module.returncode == 0 and "MEGATRON_DIR" in as_module.stdout

"""Streaming guard: Megatron → HF allocates a fraction of the model, never a copy of it (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
_CHILD = r"""
import json, sys, threading, time
peak = [0]
def sample():
    while True:
        with open("/proc/self/status") as f:
            peak[0] = max(peak[0], next(int(l.split()[1]) * 1024 for l in f if l.startswith("RssAnon:")))
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
from transformers_llava_ov2.convert.layout import checkpoint_shapes, load_config
from transformers_llava_ov2.convert.megatron_to_hf import MegatronToHfOptions, megatron_to_hf
checkpoint_shapes(load_config(sys.argv[3]))  # imports the model code (a fixed cost, not model-sized)
time.sleep(0.05)
base = peak[0]
megatron_to_hf(sys.argv[1], sys.argv[2], load_config(sys.argv[3]), MegatronToHfOptions(max_shard_bytes=20 * 10**6),
               log=lambda _: None)
time.sleep(0.05)
print(json.dumps({"base": base, "peak": peak[0]}))
"""


@pytest.mark.slow
def test_megatron_to_hf_peak_memory_is_a_fraction_of_the_model(tmp_path):
    from transformers_llava_ov2 import LlavaOnevision2ForConditionalGeneration
    from transformers_llava_ov2.convert.hf_to_megatron import HfToMegatronOptions, hf_to_megatron
    from transformers_llava_ov2.testing import small_config

    config = small_config(vocab_size=32768, text_hidden_size=512, text_layers=8, vision_hidden_size=256)
    config.text_config.intermediate_size = 2048
    torch.manual_seed(0)
    model = LlavaOnevision2ForConditionalGeneration(config).to(torch.bfloat16)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    model.save_pretrained(tmp_path / "hf", max_shard_size="20MB")
    del model
    hf_to_megatron(tmp_path / "hf", tmp_path / "mg", HfToMegatronOptions(tp=2, pp=2), log=lambda _: None)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = [str(tmp_path / "mg"), str(tmp_path / "out"), str(tmp_path / "hf")]
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    grown = measured["peak"] - measured["base"]
    print(f"megatron->hf peak anonymous growth {grown / 1e6:.0f} MB for a {size / 1e6:.0f} MB model")
    assert size > 100e6
    assert grown < 0.5 * size, (
        f"peak anonymous memory grew by {grown / 1e6:.0f} MB for a {size / 1e6:.0f} MB model"
    )

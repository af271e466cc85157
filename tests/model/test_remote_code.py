"""A Hub-ready folder loads with ``trust_remote_code=True`` in a process that never imports the package."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from tests.model_factory import small_config, tiny_model
from transformers_llava_ov2.hub import AUTO_MAP, save_hub_ready

SCRIPT = """
import sys, torch
from transformers import AutoModelForImageTextToText, AutoModel
path = sys.argv[1]
model = AutoModelForImageTextToText.from_pretrained(path, trust_remote_code=True).eval()
assert "transformers_llava_ov2" not in sys.modules, "the package must not be imported"
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
assert type(AutoModel.from_pretrained(path, trust_remote_code=True)).__name__ == "LlavaOnevision2Model"
ids = torch.tensor([[1] + [500] * 4 + [2]])
torch.manual_seed(0)
px = torch.randn(16, 588)
logits = model(input_ids=ids, pixel_values=px, image_grid_thw=torch.tensor([[1, 4, 4]])).logits
torch.save(logits, sys.argv[2])
"""


def test_hub_ready_folder_loads_with_remote_code_only(tmp_path):
    model = tiny_model(small_config(), seed=0)
    save_hub_ready(model, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP
    for name in (
        "modeling_llava_onevision2.py",
        "modeling_onevision_encoder.py",
        "vision_rope.py",
        "vision_segments.py",
    ):
        assert (tmp_path / "ckpt" / name).is_file(), name
    out = tmp_path / "logits.pt"
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ckpt"), str(out)], check=True, timeout=300)
    torch.manual_seed(0)
    px = torch.randn(16, 588)
    ids = torch.tensor([[1] + [500] * 4 + [2]])
    expected = model(input_ids=ids, pixel_values=px, image_grid_thw=torch.tensor([[1, 4, 4]])).logits
    torch.testing.assert_close(torch.load(out), expected, rtol=0, atol=0)

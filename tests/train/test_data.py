"""Records, label masking, over-long policy, bad records, the official offline format and the sampler."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from tests.train.conftest import write_media_dataset
from transformers_llava_ov2.train.dataset import ConversationDataset
from transformers_llava_ov2.train.encode import build_segments, encode_record
from transformers_llava_ov2.train.records import BadRecord, parse_record
from transformers_llava_ov2.train.sampler import ModalityMixSampler
from transformers_llava_ov2.train.stage import StageConfig

STAGE = StageConfig(
    name="test", image_max_pixels=16 * 784, frame_pixels=4 * 784, num_frames=4, codec_max_visual_tokens=16
)


def _expected_labels(tokens: list[str]) -> list[bool]:
    """Independent rule, token by token: inside an assistant turn (after ``<|im_start|>assistant\\n``) up to
    and including its ``<|im_end|>``; never a visual token."""
    out, inside = [], False
    for i, tok in enumerate(tokens):
        if inside:
            out.append(tok not in ("<|image_pad|>", "<|vision_start|>", "<|vision_end|>"))
            inside = tok != "<|im_end|>"
            continue
        out.append(False)
        if i >= 2 and tokens[i - 2] == "<|im_start|>" and tokens[i - 1] == "assistant" and tok == "Ċ":
            inside = True
    return out


def test_label_masking_matches_token_by_token_rule(qwen_processor, tmp_path):
    files = write_media_dataset(tmp_path)
    raw = {
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is it?"},
            {"from": "gpt", "value": "A cat, 42 of them."},
            {"from": "human", "value": "And then?"},
            {"from": "gpt", "value": "Nothing more."},
        ],
        "image": "img0.png",
    }
    sample = encode_record(parse_record(0, raw, files["root"]), qwen_processor, STAGE)
    ids, labels = sample["input_ids"].tolist(), sample["labels"].tolist()
    tokens = qwen_processor.tokenizer.convert_ids_to_tokens(ids)
    assert _expected_labels(tokens) == [lab != -100 for lab in labels]
    assert all(lab in (-100, i) for lab, i in zip(labels, ids))
    text = qwen_processor.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("Nothing more.<|im_end|>")  # no newline after the last turn
    learned = qwen_processor.tokenizer.decode([i for i, lab in zip(ids, labels) if lab != -100])
    assert learned == "A cat, 42 of them.<|im_end|>Nothing more.<|im_end|>"
    assert sample["num_visual_tokens"] == ids.count(qwen_processor.image_token_id) > 0


def test_custom_system_prompt_kept():
    segs = build_segments(
        parse_record(
            0,
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": "A"},
                ]
            },
            ".",
        ).turns
    )
    assert (
        segs[0].text
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )
    assert [s.target for s in segs] == [False, True]


def test_overlong_drop_rounds_and_skip(qwen_processor, tmp_path):
    files = write_media_dataset(tmp_path)
    raw = {
        "messages": [
            {"role": "user", "content": "<image>Q1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "<image>Q2 " + "long " * 80},
            {"role": "assistant", "content": "A2"},
        ],
        "images": ["img0.png", "img1.png"],
    }
    rec = parse_record(0, raw, files["root"])
    full = encode_record(rec, qwen_processor, STAGE)
    short_stage = STAGE.with_overrides({"max_seq_length": full["input_ids"].numel() - 40})
    cut = encode_record(rec, qwen_processor, short_stage)
    assert cut["dropped_rounds"] == 1 and cut["image_grid_thw"].shape[0] == 1
    assert qwen_processor.tokenizer.decode(cut["input_ids"]).endswith("A1<|im_end|>")
    assert cut["pixel_values"].shape[0] == cut["num_visual_tokens"] * 4
    with pytest.raises(BadRecord, match="too_long"):
        encode_record(rec, qwen_processor, short_stage.with_overrides({"overlong": "skip"}))


def test_official_offline_record(qwen_processor, tmp_path):
    files = write_media_dataset(tmp_path)
    raw = json.loads(files["data"].read_text().splitlines()[3])
    sample = encode_record(parse_record(3, raw, files["root"]), qwen_processor, STAGE)
    assert sample["modality"] == "codec"
    assert sample["image_grid_thw"].tolist() == [[2, 4, 4]]  # one [N, H, W] row, as the official encoder
    text = qwen_processor.tokenizer.decode(sample["input_ids"])
    # runs of equal t: t=0,1 (canvas 0), 3,4 (canvas 1) at fps 10 with 2 decimals, a newline after each run
    for ts in ("<0.00 seconds>", "<0.10 seconds>", "<0.30 seconds>", "<0.40 seconds>"):
        assert ts in text
    assert "<image>" not in text
    # block order: each merged token's 4 patches share one source frame
    t = sample["patch_positions"][:, 0].reshape(-1, 4)
    assert bool((t == t[:, :1]).all())


def test_bad_records_are_skipped_and_counted(qwen_processor, tmp_path):
    files = write_media_dataset(tmp_path)
    lines = files["data"].read_text().splitlines()[:3]
    lines += [
        json.dumps(
            {
                "messages": [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "y"}],
                "image": "missing.png",
            }
        ),
        "{not json",
        json.dumps(
            {"messages": [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "y"}]}
        ),
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
    ]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    ds = ConversationDataset(tmp_path / "bad.jsonl", qwen_processor, STAGE)
    samples = [ds[i] for i in range(len(ds))]
    assert len(samples) == 7 and all(s["input_ids"].numel() > 0 for s in samples)
    assert ds.skipped == Counter(
        {"missing_file": 1, "bad_json": 1, "placeholder_mismatch": 1, "no_assistant_turn": 1}
    )
    assert sum(len(s["skipped"]) for s in samples) == 4


def test_video_record_through_both_back_ends(qwen_processor, tmp_path, small_h264_clip):
    files = write_media_dataset(tmp_path, clip_path=small_h264_clip.path)
    ds = ConversationDataset(files["data"], qwen_processor, STAGE)
    vid = len(ds) - 1
    frames, codec = ds[(vid, "frames")], ds[(vid, "codec")]
    assert frames["modality"] == "frames" and frames["image_grid_thw"].shape[0] == 4
    assert codec["modality"] == "codec" and codec["num_visual_tokens"] <= 16


def test_sampler_mix_within_tolerance(qwen_processor, tmp_path):
    files = write_media_dataset(tmp_path, clip_path=tmp_path / "fake.mp4")
    ds = ConversationDataset(files["data"], qwen_processor, STAGE)
    mix = {"codec": 0.5, "frames": 0.375, "image": 0.125}
    sampler = ModalityMixSampler(ds, mix, num_samples=8000, batch_size=4, seed=3)
    counts = Counter(m for _, m in sampler)
    for name, p in mix.items():
        assert abs(counts[name] / 8000 - p) < 0.02, (name, counts)
    assert sorted(sampler) == sorted(sampler)  # deterministic per epoch
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sampler_groups_by_length(qwen_processor, tmp_path):
    files = write_media_dataset(tmp_path)
    ds = ConversationDataset(files["data"], qwen_processor, STAGE)
    keys = list(
        ModalityMixSampler(ds, {"image": 1, "text": 1}, num_samples=64, batch_size=4, group_batches=16)
    )
    est = np.array([ds.estimate_length(*k) for k in keys]).reshape(-1, 4)
    assert (est.max(1) - est.min(1)).mean() < np.ptp(est)  # batches are more homogeneous than the draw


def test_video_store_hook(qwen_processor, tmp_path, small_h264_clip):
    from transformers_llava_ov2.codec import tokenize_video

    files = write_media_dataset(tmp_path, clip_path=small_h264_clip.path)
    tokens = tokenize_video(small_h264_clip.path, max_visual_tokens=12)

    class Store:
        def __init__(self, result):
            self.result, self.calls = result, []

        def get(self, path, options):
            self.calls.append((path, options["video_backend"]))
            if isinstance(self.result, Exception):
                raise self.result
            return self.result

    hit = Store(tokens)
    ds = ConversationDataset(files["data"], qwen_processor, STAGE, video_store=hit)
    vid = len(ds) - 1
    sample = ds[(vid, "codec")]
    assert hit.calls == [(str(small_h264_clip.path), "codec")]
    assert sample["num_visual_tokens"] == tokens.num_tokens  # the stored tokens were used, not re-computed
    miss = Store(None)
    assert (
        ConversationDataset(files["data"], qwen_processor, STAGE, video_store=miss)[(vid, "codec")][
            "num_visual_tokens"
        ]
        <= 16
    )
    broken = ConversationDataset(files["data"], qwen_processor, STAGE, video_store=Store(OSError("disk")))
    broken[(vid, "codec")]
    assert broken.skipped == Counter({"video_store_error": 1})

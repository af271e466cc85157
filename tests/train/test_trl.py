"""TRL and peft stay working: ``trl.SFTTrainer`` trains this model with its processor.

* SFTTrainer + this package's ``RecordCollator`` (official assistant-only labels, visual tokens masked), with
  a ``peft_config`` LoRA; ``merge_and_unload`` equals the adapter model: images in the default suite, images +
  frames video + codec video in the slow suite.
* Slow: SFTTrainer's own vision collator on an image dataset (TRL's labels: everything but padding).
"""

from __future__ import annotations

import pytest
import torch

from tests.train.conftest import fast_stage, write_media_dataset

trl = pytest.importorskip("trl")
peft = pytest.importorskip("peft")


def _sft_args(tmp_path, **kw):
    return trl.SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=3,
        use_cpu=True,
        report_to=[],
        max_length=None,
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=False,
        remove_unused_columns=False,
        bf16=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        learning_rate=1e-2,
        **kw,
    )


@pytest.mark.parametrize(
    "modalities",
    [("image",), pytest.param(("image", "frames", "codec"), marks=pytest.mark.slow, id="image-frames-codec")],
    ids=lambda m: "-".join(m),
)
def test_sft_trainer_with_record_collator_lora(tmp_path, qwen_processor, make_clip, modalities):
    from datasets import Dataset

    from transformers_llava_ov2.configuration_llava_onevision2 import tiny_config
    from transformers_llava_ov2.testing import tiny_model
    from transformers_llava_ov2.train.record_collator import RecordCollator

    files = write_media_dataset(tmp_path / "data")
    turns = [{"role": "user", "content": "<image>\nWhat?"}, {"role": "assistant", "content": "A cat."}]
    vturns = [
        {"role": "user", "content": "<video>\nWhat happens?"},
        {"role": "assistant", "content": "It moves."},
    ]
    rows = [{"messages": turns, "images": ["img0.png"], "videos": [], "modality": "image"}]
    if "frames" in modalities:
        clip = str(
            make_clip("small_h264.mp4", seconds=2.0, size=(160, 96), bframes=2, gop=10, object_size=24).path
        )
        rows += [
            {"messages": vturns, "images": [], "videos": [clip], "modality": "frames"},
            {"messages": vturns, "images": [], "videos": [clip], "modality": "codec"},
        ]
    dataset = Dataset.from_list(rows)
    collator = RecordCollator(qwen_processor, fast_stage(), media_root=files["root"])
    batch = collator(list(dataset))
    ids = (
        qwen_processor.image_token_id,
        qwen_processor.vision_start_token_id,
        qwen_processor.vision_end_token_id,
    )
    visual = torch.isin(batch["input_ids"], torch.tensor(ids))
    assert bool(visual.any()) and bool((batch["labels"][visual] == -100).all())
    learned = qwen_processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100])
    assert learned == "A cat.<|im_end|>"  # assistant-only loss

    model = tiny_model(tiny_config(text_hidden_size=32), seed=0).train()
    trainer = trl.SFTTrainer(
        model=model,
        args=_sft_args(tmp_path),
        train_dataset=dataset,
        data_collator=collator,
        processing_class=qwen_processor,
        peft_config=peft.LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]
        ),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    out = trainer.train()
    assert out.global_step == 2 and torch.isfinite(torch.tensor(out.training_loss))
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed)

    peft_model = trainer.model.eval()
    inputs = {k: v for k, v in collator(rows[:1]).items() if k != "labels"}
    with torch.no_grad():
        adapter_logits = peft_model(**inputs).logits
        merged_logits = peft_model.merge_and_unload()(**inputs).logits
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sft_trainer_own_vision_collator_on_images(tmp_path, qwen_processor):
    import numpy as np
    from datasets import Dataset
    from PIL import Image

    from transformers_llava_ov2.configuration_llava_onevision2 import tiny_config
    from transformers_llava_ov2.testing import tiny_model

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 84, 3), dtype=np.uint8))
    rows = [
        {
            "messages": [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
            ],
            "images": [img],
        }
    ] * 4
    model = tiny_model(tiny_config(text_hidden_size=32), seed=0).train()
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to=[],
        max_length=None,
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=False,
    )
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=qwen_processor,
        peft_config=peft.LoraConfig(r=4, target_modules=["q_proj"]),
    )
    assert trainer.train().global_step == 2


def test_record_collator_drops_and_counts_bad_records(tmp_path, qwen_processor):
    from transformers_llava_ov2.train.record_collator import RecordCollator

    files = write_media_dataset(tmp_path / "data")
    good = {
        "messages": [{"role": "user", "content": "<image>\nWhat?"}, {"role": "assistant", "content": "A."}],
        "images": ["img0.png"],
    }
    bad = dict(good, images=["missing.png"])
    collator = RecordCollator(qwen_processor, fast_stage(), media_root=files["root"])
    batch = collator([good, bad])
    assert batch["input_ids"].shape[0] == 1 and dict(collator.skipped) == {"missing_file": 1}
    with pytest.raises(ValueError, match="every record of the batch was bad"):
        collator([bad])

"""LlavaOnevision2Trainer: stage freezing, parameter groups, loss going down, text-only batches, resume."""

from __future__ import annotations

import pytest
import torch

from tests.train.conftest import fast_stage, synthetic_sample, write_media_dataset
from transformers_llava_ov2.testing import small_config, tiny_model
from transformers_llava_ov2.train.collator import MultimodalCollator
from transformers_llava_ov2.train.modules import module_group, param_groups
from transformers_llava_ov2.train.run import build_trainer, train_stage, training_arguments
from transformers_llava_ov2.train.stage import StageConfig
from transformers_llava_ov2.train.trainer import LlavaOnevision2Trainer

SYNTH = [synthetic_sample(i, 6 + i, [(1, 2, 2)] if i % 2 == 0 else [(2, 2, 2)], "image") for i in range(4)]


def _one_step(stage, tmp_path, samples=SYNTH, packing=False, checkpointing=False):
    model = tiny_model(small_config(), seed=0).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = training_arguments(
        stage.with_overrides({"gradient_checkpointing": checkpointing}),
        tmp_path,
        max_steps=1,
        per_device_train_batch_size=4,
        use_cpu=True,
        logging_steps=1,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        warmup_steps=0,
    )
    trainer = LlavaOnevision2Trainer(
        model=model,
        args=args,
        stage=stage,
        train_dataset=samples,
        data_collator=MultimodalCollator(pad_token_id=0, packing=packing, max_seq_length=256),
    )
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    return model, trainer, changed


@pytest.mark.parametrize("preset", ["alignment", "stage1", "stage4", "llm_only"])
def test_each_preset_freezes_exactly_the_intended_modules(preset, tmp_path):
    stage = (
        StageConfig.load("stage1").with_overrides({"trainable": ["llm"], "name": "llm_only"})
        if preset == "llm_only"
        else StageConfig.load(preset)
    )
    model, _, changed = _one_step(stage, tmp_path)
    names = {n for n, _ in model.named_parameters()}
    expected = {n for n in names if module_group(n) in stage.trainable}
    assert changed <= expected
    # every tensor of a trainable group moved except those with no gradient path (none in this model)
    assert expected - changed == set(), sorted(expected - changed)[:5]
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected


def test_param_groups_learning_rates_and_decay():
    stage = fast_stage(lr_vision=1e-5, lr_merger=2e-4, lr_llm=3e-5, weight_decay=0.1)
    model = tiny_model(small_config())
    for p in model.parameters():
        p.requires_grad_(True)
    groups = {g["name"]: g for g in param_groups(model, stage)}
    assert groups["vision"]["lr"] == 1e-5 and groups["merger"]["lr"] == 2e-4 and groups["llm"]["lr"] == 3e-5
    assert groups["llm"]["weight_decay"] == 0.1 and groups["llm_no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim == 1 for g in groups.values() if g["name"].endswith("no_decay") for p in g["params"])
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def test_text_only_batch_runs_vision_tower_and_leaves_no_unused_parameter(tmp_path):
    text = [synthetic_sample(i, 8, []) for i in range(2)]
    model = tiny_model(small_config(), seed=0).train()
    stage = fast_stage()  # everything trains
    trainer = LlavaOnevision2Trainer(
        model=model,
        args=training_arguments(stage, tmp_path, use_cpu=True),
        stage=stage,
        data_collator=MultimodalCollator(pad_token_id=0),
        train_dataset=text,
    )
    calls = []
    hook = model.model.visual.register_forward_hook(lambda *a: calls.append(1))
    batch = trainer.data_collator(text)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    hook.remove()
    assert calls == [1]
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert all(float(p.grad.abs().sum()) == 0 for n, p in model.named_parameters() if ".visual." in n)


def test_packed_training_step_matches_unpacked(tmp_path):
    stage = fast_stage()
    m1, _, _ = _one_step(stage, tmp_path / "a", packing=False)
    m2, _, _ = _one_step(stage, tmp_path / "b", packing=True)
    for (n, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("preset", ["alignment", "stage2"])
def test_gradient_checkpointing_gives_the_same_step(preset, tmp_path):
    stage = StageConfig.load(preset)
    m1, _, _ = _one_step(stage, tmp_path / "a")
    m2, _, _ = _one_step(stage, tmp_path / "b", checkpointing=True)
    assert (
        m2.model.language_model.gradient_checkpointing
        and m2.model.visual.encoder.layers[0].gradient_checkpointing
    )
    for (n, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-6, msg=n)


def test_lora_stage_trains_only_adapters_and_merger(tmp_path):
    from transformers_llava_ov2.train.lora import apply_lora

    stage = fast_stage(lora_r=4)
    model = apply_lora(tiny_model(small_config(), seed=0), stage).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = training_arguments(stage, tmp_path, max_steps=2, per_device_train_batch_size=4, use_cpu=True)
    LlavaOnevision2Trainer(
        model=model,
        args=args,
        stage=stage,
        apply_freezing=False,
        train_dataset=SYNTH,
        data_collator=MultimodalCollator(pad_token_id=0),
    ).train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and all("lora_" in n or ".visual.merger." in n for n in changed)
    assert any("lora_B" in n for n in changed)


def test_loss_decreases_on_synthetic_mixed_batches(tmp_path):
    """Fast variant: image-like, frame-like ([T,h,w] rows) and codec-like (multi-t) samples, small vocabulary."""
    samples = [
        synthetic_sample(0, 6, [(1, 2, 4)], "image"),
        synthetic_sample(1, 6, [(1, 2, 2)] * 3, "frames"),
        synthetic_sample(2, 6, [(3, 2, 2)], "codec"),
        synthetic_sample(3, 6, [], "text"),
    ]
    model = tiny_model(small_config(), seed=0).train()
    stage = fast_stage(learning_rate=1e-2)
    args = training_arguments(
        stage, tmp_path, max_steps=12, per_device_train_batch_size=4, use_cpu=True, logging_steps=5
    )
    trainer = LlavaOnevision2Trainer(
        model=model,
        args=args,
        stage=stage,
        train_dataset=samples,
        data_collator=MultimodalCollator(pad_token_id=0, packing=True, max_seq_length=64),
    )
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0], losses
    assert trainer.run_stats.samples == {"image": 12, "frames": 12, "codec": 12, "text": 12}


@pytest.mark.slow
def test_loss_decreases_on_mixed_image_frames_codec_data(tmp_path, tiny_checkpoint, small_h264_clip):
    files = write_media_dataset(tmp_path / "data", clip_path=small_h264_clip.path)
    stage = fast_stage(modality_mix={"image": 1, "frames": 1, "codec": 1}, packing=True, learning_rate=1e-2)
    losses = []

    from transformers import TrainerCallback

    class Keep(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(logs)

    summary = train_stage(
        stage,
        tiny_checkpoint,
        files["data"],
        tmp_path / "out",
        cache_samples=True,
        callbacks=[Keep()],
        max_steps=16,
        per_device_train_batch_size=4,
        use_cpu=True,
        logging_steps=4,
    )
    values = [x["loss"] for x in losses]
    assert values == sorted(values, reverse=True) and values[-1] < 0.8 * values[0], values
    assert set(summary.samples) == {"image", "frames", "codec"} and summary.steps == 16
    assert sum(summary.samples.values()) == 40  # an epoch = 5 draws (one per record): 8 epochs of 4 + 1
    assert losses[0]["visual_text_ratio"] > 0 and 0 < losses[0]["packing_efficiency"] <= 1
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file()
    assert (tmp_path / "out" / "final" / "stage.yaml").is_file()


def test_resume_equals_uninterrupted(tmp_path, tiny_checkpoint):
    from transformers_llava_ov2.modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration
    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor

    files = write_media_dataset(tmp_path / "data")
    stage = fast_stage(modality_mix={"image": 1, "text": 1}, lr_scheduler="cosine", learning_rate=1e-3)
    processor = LlavaOnevision2Processor.from_pretrained(tiny_checkpoint)

    from transformers import TrainerCallback

    class StopAt2(TrainerCallback):  # a run of 4 steps killed right after its step-2 checkpoint
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 2:
                control.should_save = True
                control.should_training_stop = True

    def run(out, resume=None, callbacks=None):
        model = LlavaOnevision2ForConditionalGeneration.from_pretrained(tiny_checkpoint)
        args = training_arguments(
            stage,
            out,
            max_steps=4,
            per_device_train_batch_size=2,
            use_cpu=True,
            seed=7,
            logging_steps=1,
            save_only_model=False,
        )
        trainer = build_trainer(model, processor, stage, files["data"], args, callbacks=callbacks)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full")
    run(tmp_path / "part", callbacks=[StopAt2()])
    assert (tmp_path / "part" / "checkpoint-2" / "train_stats.json").is_file()
    resumed = run(tmp_path / "part", resume=str(tmp_path / "part" / "checkpoint-2"))
    for (n, p1), (_, p2) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        torch.testing.assert_close(p1, p2, msg=n)
    assert resumed.run_stats.samples == full.run_stats.samples


def test_chain_stages_starts_each_stage_from_the_previous_output(tmp_path, tiny_checkpoint):
    from safetensors.torch import load_file

    from transformers_llava_ov2.train.run import chain_stages

    files = write_media_dataset(tmp_path / "data")
    first = fast_stage(name="align", trainable=("merger",), modality_mix={"image": 1})
    second = fast_stage(name="llm", trainable=("llm",), modality_mix={"image": 1, "text": 1})
    summaries = chain_stages(
        [first, second],
        tiny_checkpoint,
        [files["data"]] * 2,
        tmp_path / "runs",
        max_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
    )
    assert [s.stage for s in summaries] == ["align", "llm"]
    assert (
        StageConfig.load(tmp_path / "runs" / "llm" / "final" / "stage.yaml").init_from
        == summaries[0].output_dir
    )
    w0 = load_file(tiny_checkpoint / "model.safetensors")
    w1 = load_file(tmp_path / "runs" / "align" / "final" / "model.safetensors")
    w2 = load_file(tmp_path / "runs" / "llm" / "final" / "model.safetensors")
    merger = next(k for k in w0 if "visual.merger.mlp.0.weight" in k)
    llm = next(k for k in w0 if "language_model.layers.0.self_attn.q_proj.weight" in k)
    assert not torch.equal(w0[merger], w1[merger]) and torch.equal(
        w1[merger], w2[merger]
    )  # stage 2 kept stage 1's
    assert torch.equal(w0[llm], w1[llm]) and not torch.equal(w1[llm], w2[llm])


def test_find_unused_parameters_defaults_off_and_explicit_on_skips_the_dummy(tmp_path):
    stage = fast_stage()
    default = LlavaOnevision2Trainer(
        model=tiny_model(small_config()),
        args=training_arguments(stage, tmp_path, use_cpu=True),
        stage=stage,
        train_dataset=SYNTH,
        data_collator=MultimodalCollator(pad_token_id=0),
    )
    assert default.args.ddp_find_unused_parameters is False and default._vision_dummy_on
    explicit = LlavaOnevision2Trainer(
        model=tiny_model(small_config()),
        args=training_arguments(stage, tmp_path, use_cpu=True, ddp_find_unused_parameters=True),
        stage=stage,
        train_dataset=SYNTH,
        data_collator=MultimodalCollator(pad_token_id=0),
    )
    assert not explicit._vision_dummy_on


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    """Per-token normalisation over the whole optimizer step: 2 x 2 accumulated == 1 x 4 (uneven targets)."""
    samples = [synthetic_sample(i, 4 + 5 * i, [(1, 2, 2)] if i % 2 else []) for i in range(4)]
    stage = fast_stage()
    weights = []
    for batch, accum in ((4, 1), (2, 2)):
        model = tiny_model(small_config(), seed=0).train()
        args = training_arguments(
            stage,
            tmp_path / f"b{batch}",
            max_steps=1,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accum,
            use_cpu=True,
            train_sampling_strategy="sequential",
            learning_rate=1e-2,
            lr_scheduler_type="constant",
            warmup_steps=0,
            max_grad_norm=0.0,
        )
        LlavaOnevision2Trainer(
            model=model, args=args, stage=stage, train_dataset=samples, data_collator=MultimodalCollator(0)
        ).train()
        weights.append(dict(model.named_parameters()))
    for name, p in weights[0].items():
        torch.testing.assert_close(p, weights[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_moe_router_aux_loss_is_weighted_like_the_models_own_loss(tmp_path):
    from transformers_llava_ov2 import LlavaOnevision2MoeForConditionalGeneration, tiny_moe_config

    samples = [synthetic_sample(i, 8, []) for i in range(2)]
    torch.manual_seed(0)
    config = tiny_moe_config(output_router_logits=True, router_aux_loss_coef=0.5)
    model = LlavaOnevision2MoeForConditionalGeneration(config).train()
    stage = fast_stage()
    trainer = LlavaOnevision2Trainer(
        model=model,
        args=training_arguments(stage, tmp_path, use_cpu=True),
        stage=stage,
        data_collator=MultimodalCollator(pad_token_id=0),
        train_dataset=samples,
    )
    batch = dict(trainer.data_collator(samples))
    loss = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        own = model(
            **{k: v for k, v in batch.items() if k not in ("labels",) and torch.is_tensor(v)},
            labels=batch["labels"],
        )
    assert own.aux_loss is not None and float(own.aux_loss) > 0
    torch.testing.assert_close(loss.detach(), own.loss, rtol=1e-5, atol=1e-6)

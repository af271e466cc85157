"""Running stages: ``TrainingArguments`` from a stage, one stage end to end, stages chained.

:func:`train_stage` is what ``llava-ov2 train`` and the fine-tuning notebook call: load the model and
processor, build the dataset/collator/trainer for the stage (LoRA when ``lora_r > 0``), train (optionally
resuming), save the final model (merged when LoRA) with the processor and ``stage.yaml`` (files written by
the main process only; under multi-process runs every rank must call it), and return a :class:`RunSummary`
(counts summed over all ranks). :func:`chain_stages` runs several stages, each starting from the previous one's output.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .stage import StageConfig

__all__ = ["RunSummary", "build_trainer", "chain_stages", "train_stage", "training_arguments"]


@dataclass
class RunSummary:
    """What a stage run did (printed by the CLI, saved as ``train_summary.json``)."""

    stage: str
    output_dir: str
    steps: int
    samples: dict[str, int]
    tokens: dict[str, int]
    skipped: dict[str, int]
    visual_tokens: int
    text_tokens: int
    packing_efficiency: float
    seconds: float
    tokens_per_second: float
    final_loss: float | None
    trainable_parameters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_arguments(stage: StageConfig, output_dir: str | os.PathLike, **overrides: Any) -> Any:
    """``TrainingArguments`` carrying the stage's optimizer/schedule settings (``overrides`` win)."""
    from transformers import TrainingArguments

    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": stage.learning_rate,
        "weight_decay": stage.weight_decay,
        "warmup_steps": stage.warmup_ratio,
        "lr_scheduler_type": stage.lr_scheduler,
        "adam_beta1": stage.adam_beta1,
        "adam_beta2": stage.adam_beta2,
        "adam_epsilon": stage.adam_epsilon,
        "max_grad_norm": stage.max_grad_norm,
        "remove_unused_columns": False,
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": 10,
        "dataloader_num_workers": 0,
    }
    if stage.lr_scheduler == "cosine_with_min_lr":
        kwargs["lr_scheduler_kwargs"] = {"min_lr": stage.min_lr}
    if stage.gradient_checkpointing:
        kwargs["activation_checkpointing"] = True
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def build_trainer(
    model: Any,
    processor: Any,
    stage: StageConfig,
    data_file: str | os.PathLike,
    args: Any,
    media_root: str | os.PathLike | None = None,
    video_store: Any = None,
    cache_samples: bool = False,
    callbacks: list | None = None,
) -> Any:
    """The dataset, collator and :class:`~.trainer.LlavaOnevision2Trainer` of one stage (LoRA when ``lora_r``)."""
    from .collator import MultimodalCollator
    from .dataset import ConversationDataset
    from .trainer import LlavaOnevision2Trainer

    dataset = ConversationDataset(
        data_file, processor, stage, media_root=media_root, video_store=video_store, cache=cache_samples
    )
    attn = getattr(getattr(model, "config", None), "_attn_implementation", None)
    collator = MultimodalCollator(
        pad_token_id=processor.tokenizer.pad_token_id or 0,
        packing=stage.packing,
        max_seq_length=stage.max_seq_length,
        flatten=bool(attn and "flash" in attn),
    )
    apply_freezing = True
    if stage.lora_r > 0:
        from .lora import apply_lora

        model = apply_lora(model, stage)
        apply_freezing = False
    return LlavaOnevision2Trainer(
        model=model,
        args=args,
        stage=stage,
        apply_freezing=apply_freezing,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=processor,
        callbacks=callbacks,
    )


def train_stage(
    stage: StageConfig,
    model_dir: str | os.PathLike,
    data_file: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    media_root: str | os.PathLike | None = None,
    resume_from_checkpoint: str | bool | None = None,
    video_store: Any = None,
    cache_samples: bool = False,
    callbacks: list | None = None,
    **args_overrides: Any,
) -> RunSummary:
    """Train one stage from ``stage.init_from`` (or ``model_dir``) and save the result to ``output_dir``."""
    import transformers_llava_ov2  # noqa: F401 - registers the Auto classes

    from ..modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration
    from ..processing_llava_onevision2 import LlavaOnevision2Processor
    from .modules import trainable_summary

    source = stage.init_from or str(model_dir)
    model = LlavaOnevision2ForConditionalGeneration.from_pretrained(source)
    processor = LlavaOnevision2Processor.from_pretrained(source)
    args = training_arguments(stage, output_dir, **args_overrides)
    trainer = build_trainer(
        model, processor, stage, data_file, args, media_root, video_store, cache_samples, callbacks
    )
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    seconds = time.perf_counter() - start
    out = Path(output_dir)
    trained = trainer.model
    params = trainable_summary(trained)
    main_process = trainer.is_world_process_zero()
    if stage.lora_r > 0:
        from .lora import merge_and_save

        if main_process:  # adapters are replicated under DDP; ZeRO-3/FSDP LoRA merges need gathered weights
            merge_and_save(trained, out / "final", processor)
    else:
        trainer.save_model(str(out / "final"))  # every rank takes part (FSDP / ZeRO-3 gather the weights)
        if main_process:
            processor.save_pretrained(str(out / "final"))
    if main_process:
        stage.save(out / "final" / "stage.yaml")
    stats = _gather_stats(trainer.run_stats)
    summary = RunSummary(
        stage=stage.name,
        output_dir=str(out / "final"),
        steps=int(result.global_step),
        samples=dict(stats.samples),
        tokens=dict(stats.tokens),
        skipped=dict(stats.skipped),
        visual_tokens=stats.visual_tokens,
        text_tokens=stats.text_tokens,
        packing_efficiency=round(stats.real_tokens / stats.slots, 4) if stats.slots else 0.0,
        seconds=round(seconds, 3),
        tokens_per_second=round(stats.real_tokens / seconds, 1) if seconds > 0 else 0.0,
        final_loss=float(result.training_loss) if result.training_loss is not None else None,
        trainable_parameters=params,
    )
    if main_process:
        _write_json(out / "train_summary.json", summary.to_dict())
    return summary


def chain_stages(
    stages: list[StageConfig],
    model_dir: str | os.PathLike,
    data_files: list[str | os.PathLike],
    output_root: str | os.PathLike,
    **kwargs: Any,
) -> list[RunSummary]:
    """Run stages in order; stage N starts from stage N-1's ``final`` folder."""
    import dataclasses

    if len(stages) != len(data_files):
        raise ValueError(
            f"{len(stages)} stages but {len(data_files)} data files; give one data file per stage"
        )
    summaries, previous = [], None
    for stage, data in zip(stages, data_files):
        if previous is not None:
            stage = dataclasses.replace(stage, init_from=previous)
        summary = train_stage(stage, model_dir, data, Path(output_root) / stage.name, **kwargs)
        summaries.append(summary)
        previous = summary.output_dir
    return summaries


def _gather_stats(stats: Any) -> Any:
    """The run statistics summed over all ranks (this rank's when not distributed)."""
    import torch.distributed as dist

    from .trainer import RunStats

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stats
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, stats.to_dict())
    total = RunStats()
    for part in parts:
        total.add({**part, "samples": part["samples"], "tokens": part["tokens"], "skipped": part["skipped"]})
    return total


def _write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)

"""``llava-ov2 train``: fine-tune a checkpoint folder for one stage (a preset or a stage file).

Every :class:`~transformers_llava_ov2.train.stage.StageConfig` field is also an option (``--lr_llm=2e-5``,
``--num_frames=60``, ``--packing=false``...) overriding the stage. ``--demo`` generates a tiny random
checkpoint and a tiny mixed dataset (images, frames video, codec video, text) and trains it on CPU.
Progress is the Trainer's bar; the final summary (steps, samples by modality, skipped records by reason,
tokens/s) goes to stdout and to ``OUTPUT/train_summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ._common import CliError, check_model_dir, positive_int, status

NAME = "train"


def _stage_fields() -> list[str]:
    from ..train.stage import StageConfig

    return [f.name for f in dataclasses.fields(StageConfig) if f.name != "name"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``train`` on the ``llava-ov2`` sub-parsers."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune a checkpoint for one training stage",
        description="Fine-tune a checkpoint folder on LLaVA-style or official-offline JSON/JSONL data for one "
        "stage (stage1..stage4, alignment, or a YAML/JSON stage file). Stage fields can be overridden as "
        "--FIELD=VALUE. See docs/training.md.",
    )
    p.add_argument("--stage", default="stage1", help="preset name or stage file (default: stage1)")
    p.add_argument("--data", help="training records (.json list or .jsonl)")
    p.add_argument("--model", help="checkpoint folder to start from")
    p.add_argument("--output", required=True, help="output folder (checkpoints, final/, train_summary.json)")
    p.add_argument("--media-root", help="folder media paths are relative to (default: the data file's)")
    p.add_argument(
        "--demo", action="store_true", help="generate a tiny model + dataset under OUTPUT and train it"
    )
    p.add_argument("--max-steps", type=positive_int, help="optimizer steps (default: one epoch)")
    p.add_argument("--epochs", type=float, default=1.0, help="epochs when --max-steps is not given")
    p.add_argument("--batch-size", type=positive_int, default=1, help="samples per device per step")
    p.add_argument("--grad-accum", type=positive_int, default=1, help="gradient accumulation steps")
    p.add_argument("--save-steps", type=positive_int, help="save a checkpoint every N steps (resumable)")
    p.add_argument("--logging-steps", type=positive_int, default=10)
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="CHECKPOINT",
        help="resume from OUTPUT's last checkpoint, or from CHECKPOINT",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="DataLoader worker processes decoding media (default 0: in the training process)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision")
    p.add_argument("--cpu", action="store_true", help="train on CPU even if a GPU is present")
    p.add_argument("--cache-samples", action="store_true", help="keep encoded samples in memory (tiny data)")
    overrides = p.add_argument_group("stage overrides (--FIELD=VALUE, parsed as YAML scalars/lists)")
    for name in _stage_fields():
        overrides.add_argument(f"--{name}", dest=f"stage__{name}", metavar="VALUE", help=argparse.SUPPRESS)
    p.epilog = "stage fields: " + ", ".join(_stage_fields())
    p.set_defaults(func=run)
    return p


def _load_stage(args: argparse.Namespace) -> Any:
    from ..train.stage import StageConfig, StageConfigError

    overrides = {
        k.split("__", 1)[1]: v for k, v in vars(args).items() if k.startswith("stage__") and v is not None
    }
    try:
        stage = StageConfig.load(args.stage)
        return stage.with_overrides(overrides) if overrides else stage
    except StageConfigError as exc:
        raise CliError(str(exc)) from None


def _prepare_demo(args: argparse.Namespace) -> None:
    from ..train.demo import write_demo_checkpoint, write_demo_dataset

    out = Path(args.output)
    with status("Writing the demo dataset and tiny checkpoint"):
        args.data = str(write_demo_dataset(out / "demo_data"))
        try:
            args.model = str(write_demo_checkpoint(out / "demo_model"))
        except FileNotFoundError as exc:
            raise CliError(str(exc)) from None
    if args.stage == "stage1":
        args.stage = str(out / "demo_data" / "stage.yaml")
    args.max_steps = args.max_steps or 12
    args.batch_size = max(args.batch_size, 4)
    args.cache_samples = True
    args.logging_steps = min(args.logging_steps, 4)


def _print_summary(summary: Any) -> None:
    print(
        f"stage {summary.stage}: {summary.steps} steps in {summary.seconds:.1f} s "
        f"({summary.tokens_per_second:.0f} tokens/s), mean training loss {summary.final_loss:.4f}"
    )
    print(
        "samples by modality: "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary.samples.items())) or "none")
    )
    ratio = summary.visual_tokens / summary.text_tokens if summary.text_tokens else 0.0
    print(
        f"tokens: {summary.visual_tokens} visual, {summary.text_tokens} text (visual/text {ratio:.2f}); "
        f"packing efficiency {summary.packing_efficiency:.1%}"
    )
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items()))
    print("skipped records: " + (skipped or "none"))
    print(f"trainable parameters: {summary.trainable_parameters}")
    print(f"model saved to {summary.output_dir}")


def run(args: argparse.Namespace) -> int:
    if args.demo:
        _prepare_demo(args)
    if not args.data or not args.model:
        raise CliError("--data and --model are required (or use --demo)")
    if not Path(args.data).is_file():
        raise CliError(f"data file {args.data!r} does not exist")
    check_model_dir(args.model)
    stage = _load_stage(args)
    from ..train.run import train_stage

    extra: dict[str, Any] = {
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.grad_accum,
        "logging_steps": args.logging_steps,
        "seed": args.seed,
        "dataloader_num_workers": args.workers,
        "bf16": args.bf16,
        "use_cpu": args.cpu or args.demo,
    }
    if args.max_steps:
        extra["max_steps"] = args.max_steps
    else:
        extra["num_train_epochs"] = args.epochs
    if args.save_steps:
        extra.update(save_strategy="steps", save_steps=args.save_steps)
    resume = args.resume
    if resume is True and not any(Path(args.output).glob("checkpoint-*")):
        raise CliError(f"--resume: no checkpoint-* folder in {args.output!r}")
    if args.workers < 0:
        raise CliError(f"--workers must be >= 0, got {args.workers}")
    summary = train_stage(
        stage,
        args.model,
        args.data,
        args.output,
        media_root=args.media_root,
        resume_from_checkpoint=resume,
        cache_samples=args.cache_samples,
        **extra,
    )
    import os

    if os.environ.get("RANK", "0") == "0":  # torchrun / accelerate: one summary, from the main process
        _print_summary(summary)
    return 0

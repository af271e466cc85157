"""``llava-ov2 eval jumpscore``: run a checkpoint over a local JumpScore-format folder, or score predictions.

* ``--model DIR --data DIR``: batched greedy generation with the task's settings (``max_new_tokens`` 1024,
  temperature 0, ``top_p`` 1, one beam) and two-decimal timestamps; predictions are appended to
  ``--predictions`` (default ``<output>.predictions.jsonl``) as they are produced, so a killed run continues
  where it stopped; then scored.
* ``--predictions FILE --data DIR`` (no ``--model``): score a predictions file
  (``{"id": ..., "prediction": "<model text>"}`` per line).

Writes the scores JSON to ``--output`` and (with ``--model``, unless ``--no-record``) the summary entry into
``MODEL_DIR/eval_results.json`` for ``llava-ov2 card``; prints the table. See ``docs/evaluation.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ._common import CliError, check_model_dir, positive_float, positive_int, print_error, progress, status

NAME = "eval"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``eval`` on the ``llava-ov2`` sub-parsers."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on a local benchmark folder (jumpscore), or score a predictions file",
        description="Run a checkpoint over a local folder in the JumpScore dataset format "
        "(annotations.jsonl/.json/.parquet with id, video_path, question, answer) and score it exactly as "
        "lmms-eval's JumpScore task does; or score a predictions file without a model.",
    )
    p.add_argument("task", choices=("jumpscore",), help="benchmark")
    p.add_argument("--data", required=True, metavar="DIR", help="benchmark folder (or annotation file)")
    p.add_argument("--model", metavar="DIR", help="checkpoint folder (omit to score --predictions)")
    p.add_argument(
        "--predictions",
        metavar="FILE",
        help="predictions JSONL: written/resumed with --model, scored without it",
    )
    p.add_argument("--output", default="jumpscore_results.json", metavar="FILE", help="scores JSON")
    p.add_argument("--backend", choices=("codec", "frames"), default="codec", help="video front end")
    p.add_argument(
        "--max-visual-tokens", type=positive_int, metavar="N", help="visual-token budget per video"
    )
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="videos per generate call")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N videos")
    p.add_argument("--max-new-tokens", type=positive_int, default=1024, metavar="N", help="task: 1024")
    p.add_argument("--timestamp-decimals", type=int, default=2, metavar="D", help="task: 2")
    p.add_argument("--fps", type=positive_float, help="frames: sampling rate (default 1.0)")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="frames: maximum count (default 32)")
    p.add_argument("--max-pixels", type=positive_int, metavar="PX", help="max pixels per frame / canvas")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--device-map", metavar="MAP", help="shard the model (e.g. auto); overrides --device")
    p.add_argument("--overwrite", action="store_true", help="discard earlier predictions in the file")
    p.add_argument("--no-record", action="store_true", help="do not write MODEL_DIR/eval_results.json")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=run)
    return p


def _settings(args: argparse.Namespace, model_path: Path | None) -> tuple[Any, Any, dict[str, Any]]:
    from ..eval.runner import JUMPSCORE_GENERATION, VideoSettings, settings_record

    if args.timestamp_decimals < 0:
        raise CliError(f"--timestamp-decimals must be >= 0, got {args.timestamp_decimals}")
    if args.backend == "codec" and (args.fps is not None or args.max_frames is not None):
        print_error("note: --fps/--max-frames apply to --backend frames only; ignored")
    video = VideoSettings(
        backend=args.backend,
        max_visual_tokens=args.max_visual_tokens,
        timestamp_decimals=args.timestamp_decimals,
        fps=args.fps,
        max_frames=args.max_frames,
        max_pixels=args.max_pixels,
    )
    generation = dataclasses.replace(JUMPSCORE_GENERATION, max_new_tokens=args.max_new_tokens)
    return (
        video,
        generation,
        settings_record(video, generation, None if model_path is None else str(model_path.resolve())),
    )


def _generate(args: argparse.Namespace, model_path: Path, records: list, predictions: Path, settings) -> None:
    from ..eval.runner import PredictionStore, load_model, run_predictions

    video, generation, record = settings
    try:
        store = PredictionStore(predictions, record, overwrite=args.overwrite)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    pending = sum(1 for r in records if r.id not in store.done)
    if store.dropped_lines:
        print_error(f"note: dropped {store.dropped_lines} unreadable line(s) of {predictions}")
    if not pending:
        if not args.quiet:
            print_error(f"all {len(records)} predictions are in {predictions}; scoring only")
        return
    if len(store.done) and not args.quiet:
        print_error(
            f"resuming: {len(records) - pending} of {len(records)} predictions already in {predictions}"
        )
    import torch
    from transformers.utils import logging as hf_logging

    if args.quiet:
        hf_logging.disable_progress_bar()
    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    try:
        with status(f"Loading {model_path}", quiet=args.quiet):
            model, processor = load_model(
                model_path, dtype=dtype[args.dtype], device=args.device, device_map=args.device_map
            )
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"cannot load the checkpoint in {str(model_path)!r}: {exc}") from None
    with progress(pending, "videos", args.quiet) as bar:
        failed = run_predictions(
            model,
            processor,
            records,
            store,
            video=video,
            generation=generation,
            batch_size=args.batch_size,
            on_item=lambda _id: bar.update(1),
        )
    if failed:
        print_error(
            f"note: {failed} video(s) failed and are scored as empty answers (see 'error' in {predictions})"
        )


def run(args: argparse.Namespace) -> int:
    """``llava-ov2 eval jumpscore``: generate (resumably) and/or score, write JSON, print the table."""
    from ..eval.annotations import load_annotations
    from ..eval.results import format_table, record_eval_result, report_json, score_jumpscore, write_json
    from ..eval.runner import read_predictions

    model_path = check_model_dir(args.model) if args.model is not None else None
    if model_path is None and args.predictions is None:
        raise CliError("pass --model DIR to run a checkpoint, or --predictions FILE to score predictions")
    try:
        loaded = load_annotations(args.data)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if loaded.skipped:
        shown = "; ".join(f"record {n}: {why}" for n, why in loaded.skipped[:3])
        print_error(f"note: skipped {len(loaded.skipped)} bad record(s) of {loaded.source} ({shown})")
    records = loaded.records[: args.limit] if args.limit else loaded.records
    if not records:
        raise CliError(f"{loaded.source} holds no usable records")
    output = Path(args.output).expanduser()
    predictions = (
        Path(args.predictions).expanduser() if args.predictions else output.with_suffix(".predictions.jsonl")
    )
    settings = _settings(args, model_path)
    if model_path is not None:
        _generate(args, model_path, records, predictions, settings)
    elif not predictions.is_file():
        raise CliError(f"predictions file {args.predictions!r} does not exist")
    preds, bad_lines = read_predictions(predictions)
    if bad_lines:
        print_error(f"note: {bad_lines} unreadable line(s) in {predictions} ignored")
    report = score_jumpscore(records, preds)
    write_json(output, report_json(report, settings[2]))
    dataset = loaded.source.parent.name
    title = f"JumpScore on {dataset} ({len(records)} videos) | " + (
        f"backend {args.backend}, timestamps {args.timestamp_decimals} decimals"
        if model_path
        else f"predictions {predictions.name}"
    )
    print(format_table(report, title))
    print(f"scores: {output} | predictions: {predictions}")
    if model_path is not None and not args.no_record:
        try:
            path = record_eval_result(model_path, report, dataset=dataset, settings=settings[2])
            print(f"recorded in {path}")
        except OSError as exc:
            print_error(f"note: could not record the result in {model_path}: {exc}")
    sys.stdout.flush()
    return 0

"""``llava-ov2 convert JOB``: checkpoint conversions (shared logic in :mod:`transformers_llava_ov2.convert`).

Jobs: ``megatron-to-hf``, ``hf-to-megatron``, ``merge-stage0``, ``release-to-native``. Every job streams
tensors, never writes into its source, publishes its output folder only when everything succeeded and
accepts ``--dry-run`` (validate and print the plan, write nothing). See ``docs/conversion.md``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from ._common import CliError, Parser, positive_int, print_error, progress

NAME = "convert"
_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
           "fp32": "float32", "float32": "float32"}  # fmt: skip
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def byte_size(text: str) -> int:
    """``argparse`` type: ``5GB``, ``500MB``, ``2GiB`` or a number of bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a size such as 5GB or 500MB, got {text!r}")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "B").upper()])


def dtype_name(text: str) -> str:
    if text.lower() not in _DTYPES:
        raise argparse.ArgumentTypeError(f"expected one of {sorted(_DTYPES)}, got {text!r}")
    return _DTYPES[text.lower()]


def layer_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer counts such as 0,12,12,12, got {text!r}"
        ) from None


def _common(p: argparse.ArgumentParser, dtype: bool = True) -> None:
    if dtype:
        p.add_argument("--dtype", type=dtype_name, help="cast every tensor (default: keep the stored dtype)")
        p.add_argument("--allow-mixed-dtypes", action="store_true", help="accept tensors of different dtypes")
    p.add_argument(
        "--dry-run", action="store_true", help="validate everything and print the plan; write nothing"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no plan or progress output")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``convert`` and its jobs on the ``llava-ov2`` sub-parsers."""
    conv = subparsers.add_parser(
        "convert", help="convert checkpoints: Megatron <-> HF, stage-0 merge, release folder -> native",
        description="Checkpoint conversions. Nothing is written into a source; the output folder appears only "
        "when the whole job succeeded.",
    )  # fmt: skip
    jobs = conv.add_subparsers(dest="job", metavar="JOB", parser_class=Parser, required=True)
    m2h = jobs.add_parser("megatron-to-hf", help="Megatron legacy torch / torch_dist -> HF folder")
    m2h.add_argument(
        "source", metavar="MEGATRON_DIR", help="checkpoint root (tracker file) or iteration folder"
    )
    m2h.add_argument("out", metavar="OUT_DIR", nargs="?", help="new HF folder")
    m2h.add_argument(
        "--variant", help="released variant: 8b, 4b-p14m2, 4b-p14m3, 4b-p16m2, 4b-p16m3, 2b, 30b-a3b"
    )
    m2h.add_argument("--config", metavar="PATH", help="config.json (or a folder holding one)")
    m2h.add_argument(
        "--skeleton", metavar="DIR", help="HF folder giving tokenizer/processor files (and the config)"
    )
    m2h.add_argument("--tokenizer", metavar="DIR", help="folder with tokenizer files (without --skeleton)")
    m2h.add_argument(
        "--format", choices=("auto", "torch", "torch_dist"), default="auto", help="source format"
    )
    m2h.add_argument(
        "--max-shard-size", type=byte_size, default="5GB", help="output shard size (default 5GB)"
    )
    _common(m2h)
    h2m = jobs.add_parser(
        "hf-to-megatron", help="HF folder -> Megatron legacy torch (TP/PP/EP) or torch_dist"
    )
    h2m.add_argument("source", metavar="HF_DIR")
    h2m.add_argument("out", metavar="OUT_DIR", nargs="?", help="new Megatron checkpoint root")
    h2m.add_argument("--format", choices=("torch", "torch_dist"), default="torch", help="target format")
    h2m.add_argument("--tp", type=positive_int, default=1, help="tensor parallel size")
    h2m.add_argument("--pp", type=positive_int, default=1, help="pipeline parallel size")
    h2m.add_argument("--ep", type=positive_int, default=1, help="expert parallel size (MoE)")
    h2m.add_argument("--pp-layers", type=layer_list, help="LLM layers per PP stage, e.g. 0,12,12,12")
    h2m.add_argument(
        "--vocab-tp", type=positive_int, default=1, help="torch_dist: pad the vocabulary for this TP"
    )
    h2m.add_argument("--grouped-gemm", action="store_true", help="MoE: TEGroupedMLP expert names (weight<j>)")
    _common(h2m)
    mrg = jobs.add_parser(
        "merge-stage0", help="standalone OneVision-Encoder + Qwen3/Qwen3-MoE -> LLaVA-OneVision-2"
    )
    mrg.add_argument("--vit", required=True, metavar="DIR", help="standalone OneVision-Encoder folder")
    mrg.add_argument("--llm", required=True, metavar="DIR", help="Qwen3 or Qwen3-MoE folder")
    mrg.add_argument("--projector", metavar="DIR", help="projector weights (default: a fresh merger)")
    mrg.add_argument("--processor", metavar="DIR", help="tokenizer/processor files (default: the LLM folder)")
    mrg.add_argument("out", metavar="OUT_DIR", nargs="?")
    mrg.add_argument(
        "--spatial-merge-size", type=int, choices=(1, 2, 3), default=2, help="merger block (default 2)"
    )
    mrg.add_argument("--seed", type=int, default=0, help="seed of the fresh merger")
    mrg.add_argument("--no-validate", action="store_true", help="skip the vision-tower / logits validation")
    for tok in ("image", "video", "vision-start", "vision-end"):
        mrg.add_argument(f"--{tok}-token-id", type=int, help=f"{tok} token id (default: the Qwen3 id)")
    _common(mrg)
    rel = jobs.add_parser(
        "release-to-native", help="Hub release folder -> a folder this package loads natively"
    )
    rel.add_argument("source", metavar="RELEASE_DIR")
    rel.add_argument("out", metavar="OUT_DIR", nargs="?")
    rel.add_argument("--keep-remote-code", action="store_true", help="keep the *.py files and auto_map")
    rel.add_argument("--no-value-check", action="store_true", help="skip the NaN/Inf scan of the weights")
    _common(rel, dtype=False)
    conv.set_defaults(func=run)
    return conv


def _out(args) -> Path | None:
    if args.out is None and not args.dry_run:
        raise CliError(f"{args.job}: OUT_DIR is required (or pass --dry-run)")
    return Path(args.out) if args.out is not None else None


def _config(args):
    from ..convert.layout import config_from_variant, load_config

    given = [n for n in ("variant", "config", "skeleton") if getattr(args, n)]
    if not given:
        raise CliError("megatron-to-hf needs the model's config: --variant, --config or --skeleton")
    if args.variant:
        return config_from_variant(args.variant)
    return load_config(Path(args.config or args.skeleton))


def _dtype(args):
    import torch

    return getattr(torch, args.dtype) if getattr(args, "dtype", None) else None


def _run_job(args) -> None:
    from .. import register_auto_classes

    register_auto_classes()  # deferred by the launcher; the jobs load models through the Auto classes
    log = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    bars = None if args.quiet else (lambda total, desc: progress(total, desc, False))
    out = _out(args)
    if args.job == "megatron-to-hf":
        from ..convert.megatron_to_hf import MegatronToHfOptions, megatron_to_hf

        options = MegatronToHfOptions(
            dtype=_dtype(args), allow_mixed_dtypes=args.allow_mixed_dtypes, max_shard_bytes=args.max_shard_size,
            skeleton=Path(args.skeleton) if args.skeleton else None,
            tokenizer=Path(args.tokenizer) if args.tokenizer else None, source_format=args.format,
        )  # fmt: skip
        report = megatron_to_hf(
            args.source, out, _config(args), options, dry_run=args.dry_run, log=log, progress_factory=bars
        )
    elif args.job == "hf-to-megatron":
        from ..convert.hf_to_megatron import HfToMegatronOptions, hf_to_megatron

        options = HfToMegatronOptions(
            target_format=args.format, tp=args.tp, pp=args.pp, ep=args.ep, pp_layers=args.pp_layers,
            vocab_tp=args.vocab_tp, dtype=_dtype(args), grouped_gemm=args.grouped_gemm,
        )  # fmt: skip
        report = hf_to_megatron(args.source, out, options, allow_mixed_dtypes=args.allow_mixed_dtypes,
                                dry_run=args.dry_run, log=log, progress_factory=bars)  # fmt: skip
    elif args.job == "merge-stage0":
        from ..convert.merge import MergeOptions, merge_stage0

        ids = {f"{t.replace('-', '_')}_token_id": getattr(args, f"{t.replace('-', '_')}_token_id")
               for t in ("image", "video", "vision-start", "vision-end")}  # fmt: skip
        options = MergeOptions(
            spatial_merge_size=args.spatial_merge_size, dtype=_dtype(args), allow_mixed_dtypes=args.allow_mixed_dtypes,
            seed=args.seed, token_ids={k: v for k, v in ids.items() if v is not None}, validate=not args.no_validate,
            processor=Path(args.processor) if args.processor else None,
        )  # fmt: skip
        report = merge_stage0(args.vit, args.llm, out, args.projector, options, dry_run=args.dry_run, log=log,
                              progress_factory=bars)  # fmt: skip
    else:
        from ..convert.release import release_to_native

        report = release_to_native(args.source, out, keep_remote_code=args.keep_remote_code,
                                   check_values=not args.no_value_check, dry_run=args.dry_run, log=log)  # fmt: skip
    for note in report.notes:
        if not args.quiet:
            print_error(f"note: {note}")


def run(args: argparse.Namespace) -> int:
    from ..convert.checks import ConversionError

    try:
        _run_job(args)
    except ConversionError as exc:
        raise CliError(str(exc)) from None
    return 0

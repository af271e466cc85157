"""``llava-ov2 check MODEL_DIR``: stream a checkpoint folder tensor by tensor and report every problem.

Finds what ``from_pretrained`` would only warn about or silently accept: renamed/missing tensors (a random
weight), shape mismatches, NaN/Inf weights, integer or mixed dtypes, truncated files and index errors.
Exit status 0 when the folder is fine, 1 when problems were found, 2 for usage errors.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import check_model_dir, print_error, progress

NAME = "check"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``check`` on the ``llava-ov2`` sub-parsers."""
    chk = subparsers.add_parser(
        "check", help="check a checkpoint folder (names, shapes, dtypes, NaN/Inf, truncated files)",
        description="Stream every tensor of MODEL_DIR through the conversion checks and list all problems.",
    )  # fmt: skip
    chk.add_argument("model_dir", metavar="MODEL_DIR")
    chk.add_argument(
        "--no-values", action="store_true", help="skip the NaN/Inf scan (names/shapes/dtypes only)"
    )
    chk.add_argument("-q", "--quiet", action="store_true", help="print only the problems")
    chk.set_defaults(func=run)
    return chk


def run(args: argparse.Namespace) -> int:
    from .. import register_auto_classes

    register_auto_classes()  # deferred by the launcher; the jobs load models through the Auto classes
    from ..convert.check import check_folder

    path = check_model_dir(args.model_dir)
    bar = progress(None, "checking tensors", args.quiet)
    try:
        report = check_folder(path, values=not args.no_values, progress=bar.update)
    finally:
        bar.close()
    for problem in report.problems:
        print_error(f"problem: {problem}")
    if not args.quiet:
        for note in report.notes:
            print_error(f"note: {note}")
        print(report.summary(), flush=True)
    return 0 if report.ok else 1

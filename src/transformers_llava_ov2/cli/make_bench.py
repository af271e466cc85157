"""``llava-ov2 make-bench jumprope --out DIR``: write an offline JumpScore-like benchmark folder.

The folder holds generated jump-rope clips, ``annotations.jsonl`` in the JumpScore format and per-clip
ground truth (see :mod:`transformers_llava_ov2.eval.make_bench`); ``llava-ov2 eval jumpscore --data DIR``
runs on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import CliError, positive_float, positive_int, progress, status

NAME = "make-bench"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``make-bench`` on the ``llava-ov2`` sub-parsers."""
    p = subparsers.add_parser(
        "make-bench",
        help="write an offline benchmark folder of generated clips (jumprope: JumpScore-like)",
        description="Write generated clips with exact ground truth and their annotations in the dataset's "
        "format (annotations.jsonl: id, video_path, question, answer) to --out.",
    )
    p.add_argument("kind", choices=("jumprope",), help="benchmark kind")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--num-clips", type=positive_int, default=8, metavar="N", help="clips (default 8)")
    p.add_argument("--seconds", type=positive_float, default=8.0, metavar="S", help="clip length (default 8)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``llava-ov2 make-bench``: generate the clips and write the annotations."""
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out!r} exists and is not a folder")
    if args.seconds < 1:
        raise CliError(f"--seconds must be >= 1, got {args.seconds}")
    from ..eval.make_bench import write_jumprope_bench

    with (
        status(f"Writing {args.num_clips} jumprope clips to {out}", quiet=args.quiet),
        progress(args.num_clips, "clips", args.quiet) as bar,
    ):
        path = write_jumprope_bench(
            out,
            num_clips=args.num_clips,
            seconds=args.seconds,
            seed=args.seed,
            on_clip=lambda _i: bar.update(1),
        )
    print(f"wrote {path} ({args.num_clips} clips of {args.seconds:g} s)")
    return 0

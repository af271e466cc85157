"""The ``llava-ov2`` command line: one module per command, dispatched from one parser.

Commands (each module exposes ``NAME``, ``add_parser(subparsers)`` and ``run(args) -> int``, and imports
torch, transformers or matplotlib only inside ``run``, so ``--help`` stays fast):

* ``tokenize`` — look at what a video front end keeps (:mod:`.tokenize`);
* ``chat`` — answer a prompt about an image or a video with a checkpoint folder (:mod:`.chat`).

User errors (missing files, unreadable videos, out-of-range budgets, bad arguments) print one clear message
to stderr and exit with status 2; they never show a traceback. See ``docs/cli.md``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

from ._common import PROG, CliError, Parser, print_error

__all__ = ["COMMANDS", "CliError", "build_parser", "main"]

COMMANDS: tuple[str, ...] = ("tokenize", "chat", "make_bench")
"""Command modules of this package, in ``--help`` order."""


def __getattr__(name: str) -> Any:  # names the CLI module exported before it became a package
    if name in ("DEMO_CLIP_NAME", "default_demo_clip"):
        from ..video import demo

        return getattr(demo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> Parser:
    """The ``llava-ov2`` argument parser, with every command of :data:`COMMANDS` registered."""
    from .. import __version__

    parser = Parser(
        prog=PROG,
        description="LLaVA-OneVision-2 tools: look at the video tokenization, chat with a checkpoint.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``llava-ov2`` and ``python -m transformers_llava_ov2``; returns the exit status."""
    from ..errors import VideoDecodeError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and argument errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (CliError, VideoDecodeError) as exc:
        print_error(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130

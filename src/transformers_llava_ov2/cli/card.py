"""``llava-ov2 card MODEL_DIR``: write a Hub-ready ``README.md`` model card into a checkpoint folder."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import CliError, check_model_dir

NAME = "card"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``card`` on the ``llava-ov2`` sub-parsers."""
    p = subparsers.add_parser(
        "card",
        help="write a Hub-ready README.md model card into a checkpoint folder",
        description="Write MODEL_DIR/README.md: YAML front matter, usage, video back ends, limitations, the "
        "parameter count (safetensors headers, no model load) and the figures of MODEL_DIR/eval_results.json.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="checkpoint folder")
    p.add_argument("--repo-id", metavar="ID", help="Hub repository id used in the usage snippets")
    p.add_argument(
        "--base-model",
        default=None,
        metavar="ID",
        help="base_model of the front matter (default: the released 8B checkpoint; 'none' to omit)",
    )
    p.add_argument("--license", default="apache-2.0", help="license of the front matter (default apache-2.0)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="extra tag (repeatable)")
    p.add_argument("--out", metavar="FILE", help="where to write the card (default MODEL_DIR/README.md)")
    p.add_argument("--force", action="store_true", help="overwrite an existing README.md")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``llava-ov2 card``: render and write the card."""
    from pathlib import Path

    from ..eval.card import DEFAULT_BASE_MODEL, write_model_card

    folder = check_model_dir(args.model_dir)
    out = Path(args.out).expanduser() if args.out else folder / "README.md"
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    base = DEFAULT_BASE_MODEL if args.base_model is None else args.base_model
    try:
        path = write_model_card(
            folder,
            out=out,
            repo_id=args.repo_id,
            base_model=None if base.lower() == "none" else base,
            license=args.license,
            tags=args.tag,
        )
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot write the card for {str(folder)!r}: {exc}") from None
    print(f"wrote {path}")
    return 0

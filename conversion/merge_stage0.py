"""Thin script for `llava-ov2 convert merge-stage0` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/merge_stage0.py ...`` or ``python -m conversion.merge_stage0 ...``; ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from transformers_llava_ov2_cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["convert", "merge-stage0", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

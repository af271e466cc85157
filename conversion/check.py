"""Thin script for `llava-ov2 check MODEL_DIR` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/check.py ...`` or ``python -m conversion.check ...``; ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from transformers_llava_ov2_cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["check", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

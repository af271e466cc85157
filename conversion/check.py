"""Thin script for `llava-ov2 check MODEL_DIR` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/check.py ...`` or ``python -m conversion.check ...``; ``--help`` lists the options.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ["TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION"] = "1"  # keeps --help free of torch/transformers
    try:
        from transformers_llava_ov2.cli import main as cli_main
    finally:
        os.environ.pop("TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION", None)
    return cli_main(["check", *argv])


if __name__ == "__main__":
    sys.exit(main())

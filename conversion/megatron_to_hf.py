"""Thin script for `llava-ov2 convert megatron-to-hf` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/megatron_to_hf.py ...`` or ``python -m conversion.megatron_to_hf ...``; ``--help`` lists the options.
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
    return cli_main(["convert", "megatron-to-hf", *argv])


if __name__ == "__main__":
    sys.exit(main())

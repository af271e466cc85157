"""Thin script for `llava-ov2 convert hf-to-megatron` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/hf_to_megatron.py ...`` or ``python -m conversion.hf_to_megatron ...``; ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from transformers_llava_ov2_cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["convert", "hf-to-megatron", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

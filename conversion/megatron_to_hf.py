"""Thin script for `llava-ov2 convert megatron-to-hf` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/megatron_to_hf.py ...`` or ``python -m conversion.megatron_to_hf ...``; ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from transformers_llava_ov2_cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["convert", "megatron-to-hf", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

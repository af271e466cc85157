"""Thin script for `llava-ov2 convert release-to-native` (logic in ``transformers_llava_ov2.convert``).

Run as ``python conversion/release_to_native.py ...`` or ``python -m conversion.release_to_native ...``; ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from transformers_llava_ov2_cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["convert", "release-to-native", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

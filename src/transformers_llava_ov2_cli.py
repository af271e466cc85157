"""Console-script launcher of ``llava-ov2`` (see ``docs/cli.md``).

It marks the process as a command-line run before the package loads, so the package root defers its
``Auto*`` registration (and with it torch and transformers) until a command needs the model:
``llava-ov2 --help`` and ``llava-ov2 COMMAND --help`` then import neither torch, transformers nor
matplotlib. The commands themselves live in :mod:`transformers_llava_ov2.cli`.
"""

from __future__ import annotations

import os
import sys


def run(argv: list[str]) -> int:
    """Runs ``llava-ov2 ARGV...`` with the package's registration deferred; returns the exit status.

    The thin scripts in ``conversion/`` call this with their command prepended.
    """
    os.environ["TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION"] = "1"
    try:
        from transformers_llava_ov2.cli import main as cli_main
    finally:  # child processes (workers of long jobs) start from a normal import
        os.environ.pop("TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION", None)
    return cli_main(argv)


def main() -> int:
    """Runs ``llava-ov2`` with ``sys.argv``; returns the exit status."""
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

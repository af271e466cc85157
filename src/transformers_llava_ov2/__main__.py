"""``python -m transformers_llava_ov2``: the ``llava-ov2`` command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

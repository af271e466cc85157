"""Deprecated: moved to :mod:`transformers_llava_ov2.report.plots` (see ``docs/architecture.md``)."""

import warnings

from .report.plots import *  # noqa: F403

warnings.warn(
    "transformers_llava_ov2.visualize moved to transformers_llava_ov2.report.plots; import it from there "
    "(the old path goes away in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

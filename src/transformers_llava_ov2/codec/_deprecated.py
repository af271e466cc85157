"""Import shims for modules that moved from ``codec/`` to ``video/`` (kept for one release)."""

from __future__ import annotations

import warnings


def warn_moved(old: str, new: str) -> None:
    """Emits the ``DeprecationWarning`` of a moved module, pointing at the caller's import."""
    warnings.warn(
        f"{old} moved to {new}; import it from there (the old path goes away in the next release)",
        DeprecationWarning,
        stacklevel=3,
    )

"""The checks every conversion (and ``llava-ov2 check``) applies, each raising a :class:`ConversionError`
that names the tensor or file and says what was expected."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..errors import LlavaOnevision2Error


class ConversionError(LlavaOnevision2Error, ValueError):
    """A checkpoint cannot be converted (or checked) as it is; the message names the tensor or file."""


_CHUNK = 1 << 22  # 4M elements: fastest here, and an 8-16 MB temporary at most


def has_non_finite(tensor: torch.Tensor) -> bool:
    """True when a floating tensor holds NaN or Inf. ``x·0`` is 0 for finite ``x`` and NaN otherwise, so a
    chunked sum of ``x·0`` is an exact test (no overflow) and 2-4× faster than ``isfinite`` on CPU."""
    flat = tensor.reshape(-1)
    return any(bool((flat[s : s + _CHUNK] * 0).sum() != 0) for s in range(0, flat.numel(), _CHUNK))


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Fails when a floating tensor holds NaN or Inf values."""
    if not tensor.is_floating_point() or tensor.numel() == 0 or not has_non_finite(tensor):
        return
    nan = int(torch.isnan(tensor).sum())
    inf = int(torch.isinf(tensor).sum())
    raise ConversionError(f"tensor {name!r} has {nan} NaN and {inf} Inf values (of {tensor.numel()})")


def check_shape(name: str, shape: Iterable[int], expected: Iterable[int], where: str = "") -> None:
    """Fails when ``shape`` differs from ``expected``."""
    shape, expected = tuple(shape), tuple(expected)
    if shape != expected:
        suffix = f" ({where})" if where else ""
        raise ConversionError(f"tensor {name!r} has shape {list(shape)}, expected {list(expected)}{suffix}")


def check_floating(name: str, dtype: torch.dtype, where: str = "") -> None:
    """Fails on weights stored as integers or booleans."""
    if not dtype.is_floating_point:
        raise ConversionError(
            f"tensor {name!r}{where} is stored as {dtype}; model weights must be floating point"
        )


class DtypeGuard:
    """Remembers the first floating dtype seen and fails on a different one (unless mixing is allowed)."""

    def __init__(self, allow_mixed: bool = False):
        self.allow_mixed = allow_mixed
        self.dtype: torch.dtype | None = None
        self.first: str | None = None

    def __call__(self, name: str, dtype: torch.dtype, where: str = "") -> None:
        """``where`` (e.g. ``" (on tp1)"``) is appended to the tensor's name in messages."""
        check_floating(name, dtype, where)
        if self.dtype is None:
            self.dtype, self.first = dtype, name
        elif dtype != self.dtype and not self.allow_mixed:
            raise ConversionError(
                f"tensor {name!r}{where} is {dtype} but {self.first!r} (and the tensors before it) are {self.dtype}; "
                "pass --dtype to cast everything to one dtype, or --allow-mixed-dtypes to keep them"
            )


def check_coverage(
    actual: Iterable[str], expected: Iterable[str], what: str, dropped: Iterable[str] = ()
) -> None:
    """Fails listing missing and unexpected names (``dropped`` names are allowed extras)."""
    actual, expected = set(actual), set(expected)
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected - set(dropped))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors {_short(unexpected)}")
        raise ConversionError(f"{what}: " + "; ".join(parts))


def check_replicas_agree(name: str, replicas: list[torch.Tensor], ranks: list[str]) -> torch.Tensor:
    """Fails when the copies of a replicated tensor differ between ranks; returns the first."""
    first = replicas[0]
    for tensor, rank in zip(replicas[1:], ranks[1:]):
        if tensor.shape != first.shape or tensor.dtype != first.dtype or not torch.equal(tensor, first):
            raise ConversionError(
                f"tensor {name!r} should be identical on every rank but {rank} differs from {ranks[0]} "
                "(corrupt or mixed checkpoint)"
            )
    return first


def _short(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})"

"""Front-end configurations as the store sees them: which back end, which resolved settings.

A store entry is keyed by the *resolved* configuration of the front end that produced it:

* ``codec``: a :class:`~transformers_llava_ov2.codec.config.CodecConfig` (every field);
* ``frames``: a :class:`FramesConfig`, the arguments of
  :func:`~transformers_llava_ov2.video.uniform.sample_uniform_frames` that change its output.

:func:`canonical_config` turns either into the JSON-ready dict that is hashed (see :mod:`.keys`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..codec.config import CodecConfig, with_overrides
from ..video.frame_count import FRAME_RULES

__all__ = [
    "BACKENDS",
    "NEUTRAL_FIELDS",
    "FramesConfig",
    "FrontEndConfig",
    "backend_of",
    "canonical_config",
    "config_from_canonical",
    "resolve_config",
]

BACKENDS = ("codec", "frames")

NEUTRAL_FIELDS: dict[str, frozenset[str]] = {
    "codec": frozenset({"decode_thread"}),
    "frames": frozenset(),
}
"""Fields left out of the key because they do not change the output (``decode_thread``: the codec
tokenizer's outputs are identical with and without the background decode thread, see ``docs/codec.md``)."""


@dataclass(frozen=True)
class FramesConfig:
    """Settings of the ``frames`` back end (uniform sampling) that determine the sampled frames.

    Defaults are the video processor's (``fps=1.0``, ``min_frames=4``, ``max_frames=32``, an even frame
    count), so an entry computed with ``FramesConfig()`` is the one the processor looks up with its
    defaults. Fields and rules: :func:`~transformers_llava_ov2.video.uniform.sample_uniform_frames`.

    Attributes:
        fps: target sampling rate (``None`` with ``num_frames`` set, as the processor passes it).
        num_frames: fixed frame count, or ``None``.
        min_frames / max_frames / frame_factor: the frame-count bounds and multiple.
        backend: frame decoder, ``"pyav"`` or ``"decord"``.
        apply_rotation: apply the display-matrix rotation.
        on_truncated: ``"resample"`` or ``"error"``.
        strict: strict frame-count rule.
        rule: frame-count rule, ``"qwen"`` or ``"processor"`` (the ``"processor"`` layout's).
        pad: allow padding to the rule's even count (``False`` for the ``"training"`` layout).
    """

    fps: float | None = 1.0
    num_frames: int | None = None
    min_frames: int = 4
    max_frames: int = 32
    frame_factor: int = 2
    backend: str = "pyav"
    apply_rotation: bool = False
    on_truncated: str = "resample"
    strict: bool = False
    rule: str = "qwen"
    pad: bool = True

    def __post_init__(self) -> None:
        if self.fps is not None:
            if (
                isinstance(self.fps, bool)
                or not isinstance(self.fps, int | float)
                or not math.isfinite(self.fps)
            ):
                raise ValueError(f"FramesConfig.fps must be a finite number or None, got {self.fps!r}")
            if self.fps <= 0:
                raise ValueError(f"FramesConfig.fps must be > 0, got {self.fps}")
            object.__setattr__(self, "fps", float(self.fps))
        for name in ("num_frames", "min_frames", "max_frames", "frame_factor"):
            value = getattr(self, name)
            if value is None and name == "num_frames":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FramesConfig.{name} must be an int >= 1, got {value!r}")
        if self.max_frames < self.min_frames:
            raise ValueError(
                f"FramesConfig.max_frames ({self.max_frames}) must be >= min_frames ({self.min_frames})"
            )
        if self.backend not in ("pyav", "decord"):
            raise ValueError(f"FramesConfig.backend must be 'pyav' or 'decord', got {self.backend!r}")
        if self.rule not in FRAME_RULES:
            raise ValueError(f"FramesConfig.rule must be one of {list(FRAME_RULES)}, got {self.rule!r}")
        if self.on_truncated not in ("resample", "error"):
            raise ValueError(
                f"FramesConfig.on_truncated must be 'resample' or 'error', got {self.on_truncated!r}"
            )

    def sampling_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``sample_uniform_frames`` for this configuration."""
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> FramesConfig:
        """A copy with some fields replaced (validated); unknown names raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(FramesConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown FramesConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)


FrontEndConfig = CodecConfig | FramesConfig
"""Either back end's configuration."""


def backend_of(config: FrontEndConfig) -> str:
    """``"codec"`` or ``"frames"``; ``TypeError`` for anything else."""
    if isinstance(config, CodecConfig):
        return "codec"
    if isinstance(config, FramesConfig):
        return "frames"
    raise TypeError(f"expected a CodecConfig or FramesConfig, got {type(config).__name__}")


def resolve_config(
    backend: str, config: FrontEndConfig | dict | None = None, **overrides: Any
) -> FrontEndConfig:
    """The resolved configuration of ``backend``: ``config`` (object, dict of fields or ``None`` = defaults)
    with ``overrides`` applied; unknown field names raise ``ValueError``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(config, dict):
        overrides = {**config, **overrides}
        config = None
    if config is not None and backend_of(config) != backend:
        raise ValueError(f"a {type(config).__name__} cannot configure the {backend!r} back end")
    if backend == "codec":
        return with_overrides(config, **overrides)  # type: ignore[arg-type]
    base = config if config is not None else FramesConfig()
    return base.replace(**overrides) if overrides else base  # type: ignore[union-attr]


def canonical_config(config: FrontEndConfig) -> dict[str, Any]:
    """``{"backend": ..., "config": {field: value}}`` with the output-neutral fields left out.

    Floats are normalised (an int given to a float field becomes a float), so ``bin_seconds=1`` and
    ``bin_seconds=1.0`` give the same key.
    """
    backend = backend_of(config)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if f.name in NEUTRAL_FIELDS[backend]:
            continue
        value = getattr(config, f.name)
        if isinstance(f.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        fields[f.name] = value
    return {"backend": backend, "config": fields}


def config_from_canonical(data: dict[str, Any]) -> FrontEndConfig:
    """The configuration object back from :func:`canonical_config`'s dict (neutral fields at defaults)."""
    backend = data.get("backend")
    if backend == "codec":
        return CodecConfig(**data["config"])
    if backend == "frames":
        return FramesConfig(**data["config"])
    raise ValueError(f"unknown back end {backend!r} in a stored configuration")

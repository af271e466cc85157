"""Typed video options: resolved once per call from the processor's attributes and the call's kwargs.

:class:`VideoOptions` is frozen and validated on construction (every error names the option and what was
expected), then flows down unchanged to the back end that :attr:`VideoOptions.video_backend` selects. The
processor, the CLI and the training code all build it with :meth:`VideoOptions.resolve`, so a budget or a
frame rate is checked by one rule wherever it comes from. See ``docs/processor.md`` for every option.
The module is import-light (no torch, transformers or PIL), so the CLI's help texts read its defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..processing_defaults import (
    DEFAULT_FRAME_MAX_PIXELS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    DEFAULT_TOTAL_PIXELS,
    IMAGE_MEAN,
    IMAGE_STD,
    MERGE_SIZE,
    PATCH_SIZE,
)

__all__ = [
    "CHOICES",
    "DEFAULT_FRAME_MAX_PIXELS",
    "DEFAULT_TOTAL_PIXELS",
    "LAYOUT_DEFAULTS",
    "VideoOptions",
    "check_count",
    "check_number",
]

CHOICES: dict[str, tuple[str, ...]] = {
    "video_backend": ("frames", "codec"),
    "video_layout": ("release", "training", "processor"),
    "timestamp_source": ("index", "pts"),
    "frame_resize": ("torch", "pil"),
    "codec_grid": ("video", "canvas"),
    "decode_backend": ("pyav", "decord"),
}
"""Allowed values of the string options."""

LAYOUT_DEFAULTS: dict[str, dict[str, Any]] = {
    "processor": {"fps": None, "max_frames": 384, "frame_max_pixels": None, "total_pixels": None},
}
"""Defaults a layout brings, unless the call (or the processor's saved attributes) set them: the official HF
video processor samples 8 / 16 / 384 frames by duration (``fps`` is its ``target_fps``) and has no
qwen-vl-utils pixel caps."""


def check_count(owner: str, name: str, value: object, *, minimum: int = 1, optional: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is an int ``>= minimum`` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = type(value).__name__
        raise ValueError(f"{owner}.{name} must be a whole number >= {minimum}, got {value!r} ({kind})")
    if value < minimum:
        raise ValueError(f"{owner}.{name} must be >= {minimum}, got {value}")


def check_number(
    owner: str, name: str, value: object, *, positive: bool = True, optional: bool = False
) -> None:
    """Raises ``ValueError`` unless ``value`` is a finite real number (``> 0`` when ``positive``)."""
    if value is None and optional:
        return
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        want = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"{owner}.{name} must be {want}, got {value!r}")


@dataclass(frozen=True)
class VideoOptions:
    """Every option of the video back ends, for one call.

    Attributes:
        video_backend: ``"frames"`` (uniform sampling) or ``"codec"`` (codec-stream canvases).
        video_layout: ``"release"``, ``"training"`` or ``"processor"`` (``docs/processor.md``, "Video layouts");
            ``"processor"`` also switches to the official HF processor's defaults (:data:`LAYOUT_DEFAULTS`).
        fps / num_frames: frames back end sampling: a rate, or a fixed count (not both).
        min_frames / max_frames: frame-count bounds of the frames back end.
        min_pixels / max_pixels: per-frame pixel budget (frames); ``max_pixels`` also caps codec canvases
            when no ``codec_config`` sets ``max_pixels`` itself.
        frame_max_pixels / total_pixels: ``qwen_vl_utils``' per-frame cap and whole-video budget (0 or
            ``None`` disables them).
        max_visual_tokens: LLM-token budget per video (frames: caps the per-frame pixels; codec: forwarded).
        timestamp_decimals: decimals of the ``<t seconds>`` tags (1; JumpScore uses 2).
        timestamp_source: ``"index"`` (``frame_index / fps``, the release convention) or ``"pts"``.
        frame_resize: ``"torch"`` (bicubic+antialias, = torchvision/qwen_vl_utils) or ``"pil"``.
        codec_grid: ``"video"`` (one ``[N, h, w]`` row per video) or ``"canvas"`` (``[1, h, w]`` each).
        codec_config: a ``CodecConfig``, a dict of its fields, or ``None`` (codec back end).
        decode_backend: frame decoder of the frames back end (``"pyav"`` or ``"decord"``).
        video_store: a store of tokenized videos (``transformers_llava_ov2.store.VideoStore``, or any object
            with its ``tokenize_video`` / ``sample_uniform_frames`` methods): file paths are looked up there
            (and computed + stored on a miss) instead of decoded every time. Per call; never saved.
        do_sample_frames: sample decoded arrays that come with ``video_metadata`` (frames back end).
        patch_size / merge_size / temporal_patch_size: the vision tower's geometry (temporal must be 1).
        resample / do_rescale / rescale_factor / do_normalize / image_mean / image_std: the image
            processor's preprocessing, applied identically to frames and canvases.
    """

    video_backend: Literal["frames", "codec"] = "frames"
    video_layout: Literal["release", "training", "processor"] = "release"
    fps: float | None = 1.0
    num_frames: int | None = None
    min_frames: int = 4
    max_frames: int = 32
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    frame_max_pixels: int | None = DEFAULT_FRAME_MAX_PIXELS
    total_pixels: int | None = DEFAULT_TOTAL_PIXELS
    max_visual_tokens: int | None = None
    timestamp_decimals: int = 1
    timestamp_source: Literal["index", "pts"] = "index"
    frame_resize: Literal["torch", "pil"] = "torch"
    codec_grid: Literal["video", "canvas"] = "video"
    codec_config: Any = None
    decode_backend: Literal["pyav", "decord"] = "pyav"
    video_store: Any = None
    do_sample_frames: bool = True
    patch_size: int = PATCH_SIZE
    merge_size: int = MERGE_SIZE
    temporal_patch_size: int = 1
    resample: Any = 3  # PIL.Image.Resampling.BICUBIC (an int, so this module imports no PIL)
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: Sequence[float] = IMAGE_MEAN
    image_std: Sequence[float] = IMAGE_STD

    def __post_init__(self) -> None:
        owner = "VideoOptions"
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{owner}.{name} must be one of {list(allowed)}, got {value!r}")
        for name in ("min_frames", "max_frames", "min_pixels", "max_pixels", "patch_size", "merge_size"):
            check_count(owner, name, getattr(self, name))
        for name in ("num_frames", "max_visual_tokens"):
            check_count(owner, name, getattr(self, name), optional=True)
        for name in ("frame_max_pixels", "total_pixels"):
            check_count(owner, name, getattr(self, name), minimum=0, optional=True)
        check_count(owner, "timestamp_decimals", self.timestamp_decimals, minimum=0)
        check_number(owner, "fps", self.fps, optional=True)
        check_number(owner, "rescale_factor", self.rescale_factor)
        if self.temporal_patch_size != 1:
            raise ValueError(
                f"{owner}.temporal_patch_size must be 1 (LLaVA-OneVision-2 has a 2-D patch embedding), "
                f"got {self.temporal_patch_size!r}"
            )
        if self.min_frames > self.max_frames:
            raise ValueError(f"{owner}: min_frames={self.min_frames} is above max_frames={self.max_frames}")
        if self.fps is None and self.num_frames is None and self.video_layout != "processor":
            raise ValueError(f"{owner}: set fps or num_frames for the frames back end")
        store = self.video_store
        if store is not None and not all(
            hasattr(store, m) for m in ("tokenize_video", "sample_uniform_frames")
        ):
            raise ValueError(
                f"{owner}.video_store must have tokenize_video() and sample_uniform_frames() (a VideoStore), "
                f"got {type(store).__name__}"
            )
        config = self.codec_config
        if config is not None and not isinstance(config, Mapping) and not dataclasses.is_dataclass(config):
            raise ValueError(
                f"{owner}.codec_config must be a CodecConfig or a dict of its fields, got {type(config).__name__}"
            )

    @property
    def frame_rule(self) -> dict[str, Any]:
        """Keyword arguments of the layout's frame-count rule (``count_frames``, ``sample_uniform_frames``,
        ``plan_uniform_frames``): a fixed ``num_frames`` wins over ``fps``. ``"release"``: qwen-vl-utils with
        frame factor 2, padded to an even count; ``"training"``: the same count, never above the clip's frames
        (no padding); ``"processor"``: the official processor's duration rule."""
        fps = None if self.num_frames is not None else self.fps
        if self.video_layout == "processor":
            return {
                "rule": "processor",
                "fps": fps,
                "num_frames": self.num_frames,
                "max_frames": self.max_frames,
            }
        return {
            "rule": "qwen",
            "fps": fps,
            "num_frames": self.num_frames,
            "min_frames": self.min_frames,
            "max_frames": self.max_frames,
            "frame_factor": 2,
            "pad": self.video_layout == "release",
        }

    @property
    def factor(self) -> int:
        """Side multiple of a frame or canvas: ``patch_size * merge_size`` pixels."""
        return self.patch_size * self.merge_size

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def resolve(
        cls, defaults: object, kwargs: Mapping[str, Any], *, owner: str = "video processor"
    ) -> VideoOptions:
        """Options of one call: ``kwargs`` entries that are not ``None`` win over ``defaults``' attributes.

        ``fps`` and ``num_frames`` are alternatives: passing one in ``kwargs`` clears the other's default;
        passing both raises.

        Args:
            defaults: an object (the video processor) whose same-named attributes give the defaults.
            kwargs: the call's options; unknown names raise ``TypeError`` naming them.
            owner: who receives the options, for error messages.
        """
        names = cls.field_names()
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"{owner} got unexpected keyword arguments: {unknown}")
        given = {k: v for k, v in kwargs.items() if v is not None}
        if "fps" in given and "num_frames" in given:
            raise ValueError(
                f"{owner}: pass either fps={given['fps']!r} or num_frames={given['num_frames']!r}, not both"
            )
        values = {n: getattr(defaults, n) for n in names if getattr(defaults, n, None) is not None}
        values.update(given)
        for name, value in LAYOUT_DEFAULTS.get(values.get("video_layout", cls.video_layout), {}).items():
            if name not in given and values.get(name) == getattr(cls, name):
                values[name] = value
        if "num_frames" in given:
            values["fps"] = None
        elif "fps" in given:
            values["num_frames"] = None
        for seq in ("image_mean", "image_std"):
            if seq in values and not isinstance(values[seq], tuple):
                values[seq] = tuple(float(x) for x in values[seq])
        return cls(**values)

    def replace(self, **changes: Any) -> VideoOptions:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

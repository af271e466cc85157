"""Training stages as data: :class:`StageConfig` (typed, frozen, validated) and the shipped presets.

A stage says which modules train and at which learning rate, the visual budgets (frames, pixels, codec
tokens), the sequence length, packing and the modality mix. Presets ``stage1``..``stage4`` live as YAML files
in ``train/presets/`` (each file cites where its numbers come from). ``StageConfig.load(name_or_path)``
accepts a preset name or a ``.yaml``/``.yml``/``.json`` file; ``with_overrides({"lr_llm": 2e-5})`` applies
``--key=value`` style overrides with the same validation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "MODALITIES",
    "MODULE_GROUPS",
    "OVERLONG_POLICIES",
    "PRESETS_DIR",
    "StageConfig",
    "StageConfigError",
    "preset_names",
]

PRESETS_DIR = Path(__file__).parent / "presets"
MODULE_GROUPS: tuple[str, ...] = ("vision", "merger", "llm")
"""Trainable module groups: ``vision`` = ``model.visual`` minus the merger (patch embed, pre-LN, encoder),
``merger`` = ``model.visual.merger``, ``llm`` = ``model.language_model`` + ``lm_head``."""
MODALITIES: tuple[str, ...] = ("image", "frames", "codec", "text")
"""Sample modalities: images, uniformly sampled video frames, codec-stream video canvases, text only."""
OVERLONG_POLICIES: tuple[str, ...] = ("drop_rounds", "skip")
"""Over-long samples: drop trailing QA rounds until the sample fits (official default), or skip the record."""
VIDEO_LAYOUTS: tuple[str, ...] = ("release", "training")
SCHEDULERS: tuple[str, ...] = ("cosine_with_min_lr", "cosine", "linear", "constant_with_warmup", "constant")


class StageConfigError(ValueError):
    """A stage file or override is invalid; the message names the field and what was expected."""


@dataclass(frozen=True)
class StageConfig:
    """One training stage.

    Attributes:
        name: stage name (shown in logs and the run summary).
        trainable: module groups that train (subset of :data:`MODULE_GROUPS`); the rest is frozen.
        learning_rate: default peak learning rate of every trainable group.
        lr_vision / lr_merger / lr_llm: per-group peak learning rates (``None`` = ``learning_rate``).
        weight_decay: decoupled weight decay; never applied to biases and norm weights.
        warmup_ratio: fraction of the steps with linear warm-up.
        lr_scheduler: a ``transformers`` scheduler name (``cosine_with_min_lr`` decays to ``min_lr``).
        min_lr: floor of ``cosine_with_min_lr``.
        adam_beta1 / adam_beta2 / adam_epsilon / max_grad_norm: optimizer settings.
        max_seq_length: longest packed row / sample in tokens (text + visual).
        packing: pack several samples per row (exact: positions restart, no cross-sample attention).
        modality_mix: sampling weight of each modality of :data:`MODALITIES` (normalised; modalities absent
            from the data are dropped and the rest renormalised).
        num_frames: frames sampled per video by the frames back end.
        frame_pixels: pixels per video frame (e.g. 392*392); also each codec canvas' pixel cap.
        image_min_pixels / image_max_pixels: image pixel budget.
        codec_max_visual_tokens: LLM-token budget of one codec-stream video.
        video_layout: the processor's ``video_layout`` (``release`` or ``training``).
        timestamp_decimals: decimals of the ``<t seconds>`` tags.
        overlong: one of :data:`OVERLONG_POLICIES`.
        length_grouping: batch samples of similar length together.
        gradient_checkpointing: recompute activations in the backward pass.
        init_from: checkpoint folder this stage starts from (``None``: the ``--model`` folder).
        lora_r: LoRA rank (0 = full fine-tuning of ``trainable``).
        lora_alpha / lora_dropout: LoRA scaling and dropout.
        lora_targets: LLM module names that get adapters.
        lora_vision / lora_merger: also adapt the vision encoder (``qkv, proj, fc1, fc2``) / the merger.
        source: where the numbers come from (free text; the preset files cite paper vs scripts).
    """

    name: str
    trainable: tuple[str, ...] = ("vision", "merger", "llm")
    learning_rate: float = 1e-5
    lr_vision: float | None = None
    lr_merger: float | None = None
    lr_llm: float | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.002
    lr_scheduler: str = "cosine_with_min_lr"
    min_lr: float = 1e-6
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    adam_epsilon: float = 1e-5
    max_grad_norm: float = 1.0
    max_seq_length: int = 32768
    packing: bool = True
    modality_mix: dict[str, float] = field(default_factory=dict)
    num_frames: int = 30
    frame_pixels: int = 392 * 392
    image_min_pixels: int = 4 * 28 * 28
    image_max_pixels: int = 16384 * 28 * 28
    codec_max_visual_tokens: int | None = None
    video_layout: str = "release"
    timestamp_decimals: int = 1
    overlong: str = "drop_rounds"
    length_grouping: bool = True
    gradient_checkpointing: bool = True
    init_from: str | None = None
    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    lora_vision: bool = False
    lora_merger: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f, getattr(self, f.name)))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def bad(name: str, expected: str) -> None:
            raise StageConfigError(
                f"stage {self.name!r}: {name}={getattr(self, name)!r}; expected {expected}"
            )

        if not self.name:
            bad("name", "a non-empty string")
        unknown = [g for g in self.trainable if g not in MODULE_GROUPS]
        if unknown or not self.trainable:
            bad("trainable", f"a non-empty subset of {list(MODULE_GROUPS)}")
        for name in ("learning_rate", "lr_vision", "lr_merger", "lr_llm", "min_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                bad(name, "a finite number >= 0")
        if self.learning_rate <= 0:
            bad("learning_rate", "a number > 0")
        if not 0 <= self.weight_decay < 1:
            bad("weight_decay", "a number in [0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            bad("warmup_ratio", "a fraction in [0, 1)")
        if self.lr_scheduler not in SCHEDULERS:
            bad("lr_scheduler", f"one of {list(SCHEDULERS)}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                bad(name, "a number in [0, 1)")
        if self.adam_epsilon <= 0 or self.max_grad_norm < 0:
            bad("adam_epsilon" if self.adam_epsilon <= 0 else "max_grad_norm", "a positive number")
        for name in ("max_seq_length", "num_frames", "frame_pixels", "image_min_pixels", "image_max_pixels"):
            if getattr(self, name) <= 0:
                bad(name, "a positive integer")
        if self.image_min_pixels > self.image_max_pixels:
            bad("image_min_pixels", f"<= image_max_pixels ({self.image_max_pixels})")
        if self.codec_max_visual_tokens is not None and self.codec_max_visual_tokens <= 0:
            bad("codec_max_visual_tokens", "a positive integer or null")
        mix = self.modality_mix
        if any(k not in MODALITIES for k in mix) or any(not v >= 0 for v in mix.values()):
            bad("modality_mix", f"a mapping of {list(MODALITIES)} to weights >= 0")
        if mix and sum(mix.values()) <= 0:
            bad("modality_mix", "at least one weight > 0 (or {} for the data's natural proportions)")
        if self.video_layout not in VIDEO_LAYOUTS:
            bad("video_layout", f"one of {list(VIDEO_LAYOUTS)}")
        if self.timestamp_decimals not in (0, 1, 2, 3):
            bad("timestamp_decimals", "0..3")
        if self.overlong not in OVERLONG_POLICIES:
            bad("overlong", f"one of {list(OVERLONG_POLICIES)}")
        if self.lora_r < 0:
            bad("lora_r", "an integer >= 0 (0 = no LoRA)")
        if self.lora_r and (self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1):
            bad("lora_alpha" if self.lora_alpha <= 0 else "lora_dropout", "alpha > 0 and dropout in [0, 1)")

    # ------------------------------------------------------------------ derived values
    def group_lr(self, group: str) -> float:
        """Peak learning rate of a module group of :data:`MODULE_GROUPS`."""
        value = {"vision": self.lr_vision, "merger": self.lr_merger, "llm": self.lr_llm}[group]
        return self.learning_rate if value is None else float(value)

    def normalized_mix(self, available: set[str] | None = None) -> dict[str, float]:
        """Modality weights summing to 1 over ``available`` modalities (all when ``None``)."""
        mix = {k: v for k, v in self.modality_mix.items() if v > 0 and (available is None or k in available)}
        total = sum(mix.values())
        return {k: v / total for k, v in mix.items()} if total > 0 else {}

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<dict>") -> StageConfig:
        if not isinstance(data, dict):
            raise StageConfigError(
                f"{origin}: a stage must be a mapping of fields, got {type(data).__name__}"
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise StageConfigError(
                f"{origin}: unknown stage field(s) {unknown}; known fields: {sorted(names)}"
            )
        if "name" not in data:
            raise StageConfigError(f"{origin}: the stage has no 'name' field")
        return cls(**data)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> StageConfig:
        """A preset by name (``stage1``..``stage4``) or a YAML/JSON stage file."""
        text = str(name_or_path)
        path = Path(text)
        if not path.suffix and (PRESETS_DIR / f"{text}.yaml").is_file():
            path = PRESETS_DIR / f"{text}.yaml"
        if not path.is_file():
            raise StageConfigError(
                f"stage {text!r}: no such preset ({', '.join(preset_names())}) or stage file"
            )
        raw = path.read_text(encoding="utf-8")
        try:
            data = json.loads(raw) if path.suffix == ".json" else _yaml().safe_load(raw)
        except Exception as exc:
            raise StageConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'yaml'}: {exc}") from exc
        return cls.from_dict(data, origin=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write as YAML (``.yaml``/``.yml``) or JSON (anything else), atomically."""
        path = Path(path)
        data = self.to_dict()
        if path.suffix in (".yaml", ".yml"):
            text = _yaml().safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return path

    def with_overrides(self, overrides: dict[str, Any]) -> StageConfig:
        """A copy with fields replaced; string values (from ``--key=value``) are parsed as YAML scalars."""
        names = {f.name for f in fields(self)}
        updates = {}
        for key, value in overrides.items():
            if key not in names:
                raise StageConfigError(f"unknown stage field {key!r}; known fields: {sorted(names)}")
            updates[key] = _yaml().safe_load(value) if isinstance(value, str) else value
        return dataclasses.replace(self, **updates)


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _yaml() -> Any:
    import yaml

    return yaml


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Cast a loaded value to the field's type (lists → tuples, ints → floats), naming the field on failure."""
    hint = str(f.type)
    try:
        if value is None:
            if "None" in hint:
                return None
            raise TypeError("null is not allowed")
        if hint.startswith("tuple"):
            items = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(v, str) for v in items):
                raise TypeError("expected a list of strings")
            return tuple(items)
        if hint.startswith("dict"):
            if not isinstance(value, dict):
                raise TypeError("expected a mapping")
            return {str(k): float(v) for k, v in value.items()}
        if hint.startswith("bool"):
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if hint.startswith("float"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError("expected a number")
            return float(value)
        if hint.startswith("int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise TypeError("expected an integer")
            return int(value)
        if hint.startswith("str"):
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
    except (TypeError, ValueError) as exc:
        raise StageConfigError(f"stage field {f.name}={value!r}: {exc} ({hint})") from exc
    return value

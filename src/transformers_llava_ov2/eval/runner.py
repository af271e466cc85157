"""Batched greedy generation over benchmark records, with a resumable predictions file.

* :class:`GenerationSettings` — the task's generation settings (JumpScore: ``max_new_tokens=1024``,
  temperature 0, ``top_p=1.0``, one beam, no sampling); ``from_task`` reads lmms-eval ``gen_kwargs`` the way
  the official wrapper does (sampling only when ``temperature > 0``).
* :class:`VideoSettings` — the video front end of a run (``codec`` or ``frames``, token budget,
  ``timestamp_decimals``: 2 for JumpScore, explicitly, since the official wrapper's switch never fires).
* :func:`generate_batch` — one batched ``generate`` over several conversations (left padding, every
  sample's own visuals; the official wrapper passes only the first document's images when batching);
  :func:`generate_with_fallback` retries a failing batch one sample at a time. Used by the CLI and the
  lmms-eval plugin alike.
* :class:`PredictionStore` — ``{"id", "prediction"}`` JSON lines appended (and flushed) as they are produced,
  reloaded on restart; a torn last line from a killed run is dropped. A settings file beside it refuses to
  mix predictions made with different settings.
* :func:`run_predictions` — the loop: pending records in batches, per-video fallback when a batch fails,
  errors recorded (scored as empty answers, never silently dropped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import LlavaOnevision2Error
from .annotations import Annotation

__all__ = [
    "JUMPSCORE_GENERATION",
    "GenerationSettings",
    "PredictionStore",
    "VideoSettings",
    "generate_batch",
    "generate_with_fallback",
    "input_device",
    "load_model",
    "read_predictions",
    "run_predictions",
    "settings_record",
    "user_turn",
]


@dataclass(frozen=True)
class GenerationSettings:
    """Generation settings of a task (greedy unless ``temperature > 0``)."""

    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    num_beams: int = 1

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    @classmethod
    def from_task(cls, gen_kwargs: dict[str, Any], default_max_new_tokens: int = 128) -> GenerationSettings:
        """From lmms-eval ``gen_kwargs`` (``until`` and unknown keys are ignored; missing keys: defaults)."""
        return cls(
            max_new_tokens=int(gen_kwargs.get("max_new_tokens", default_max_new_tokens)),
            temperature=float(gen_kwargs.get("temperature", 0.0) or 0.0),
            top_p=float(gen_kwargs.get("top_p", 1.0) if gen_kwargs.get("top_p") is not None else 1.0),
            num_beams=int(gen_kwargs.get("num_beams", 1) or 1),
        )

    def generate_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "do_sample": self.do_sample,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


JUMPSCORE_GENERATION = GenerationSettings(max_new_tokens=1024, temperature=0.0, top_p=1.0, num_beams=1)
"""The JumpScore task's ``generation_kwargs``."""


@dataclass(frozen=True)
class VideoSettings:
    """The video front end of a run; ``None`` fields keep the processor's defaults."""

    backend: Literal["codec", "frames"] = "codec"
    max_visual_tokens: int | None = None
    timestamp_decimals: int = 2
    fps: float | None = None
    max_frames: int | None = None
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("codec", "frames"):
            raise ValueError(f"backend must be 'codec' or 'frames', got {self.backend!r}")
        if self.timestamp_decimals < 0:
            raise ValueError(f"timestamp_decimals must be >= 0, got {self.timestamp_decimals}")

    def processor_kwargs(self) -> dict[str, Any]:
        """Per-call processor options (video back end, budget, decimals, frame sampling, pixels)."""
        kwargs: dict[str, Any] = {
            "video_backend": self.backend,
            "timestamp_decimals": self.timestamp_decimals,
        }
        if self.max_visual_tokens is not None:
            kwargs["max_visual_tokens"] = self.max_visual_tokens
        if self.backend == "frames":
            if self.fps is not None:
                kwargs["fps"] = self.fps
            if self.max_frames is not None:
                kwargs["max_frames"] = self.max_frames
        if self.max_pixels is not None:
            from ..image_processing_llava_onevision2 import DEFAULT_MIN_PIXELS

            kwargs["max_pixels"] = self.max_pixels
            kwargs["min_pixels"] = min(self.max_pixels, DEFAULT_MIN_PIXELS)
        return kwargs


def load_model(
    model_dir: str | os.PathLike,
    *,
    dtype: Any = "auto",
    device: str | None = None,
    device_map: Any = None,
    attn_implementation: str | None = None,
) -> tuple[Any, Any]:
    """``(model, processor)`` of a checkpoint folder; ``device_map`` (e.g. ``"auto"``) shards the model,
    otherwise it goes to ``device`` (default: CUDA when available, else CPU). Eval mode."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..registration import register_auto_classes

    register_auto_classes()
    processor = AutoProcessor.from_pretrained(str(model_dir))
    kwargs: dict[str, Any] = {"dtype": dtype}
    if device_map is not None:
        kwargs["device_map"] = device_map
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), **kwargs)
    if device_map is None:
        model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.eval(), processor


def input_device(model: Any) -> Any:
    """Where inputs go: the token embedding's device (right for sharded ``device_map`` models too)."""
    return model.get_input_embeddings().weight.device


def _collect_visuals(messages: Sequence[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    images, videos = [], []
    for message in messages:
        content = message.get("content")
        for item in content if isinstance(content, list) else ():
            kind = item.get("type")
            if kind == "image":
                images.append(item["image"])
            elif kind == "video":
                videos.append(item["video"])
    return images, videos


def user_turn(content: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A one-message conversation: the user turn with ``content``."""
    return [{"role": "user", "content": [dict(item) for item in content]}]


def generate_batch(
    model: Any,
    processor: Any,
    conversations: Sequence[Sequence[dict[str, Any]]],
    video: VideoSettings,
    generation: GenerationSettings,
) -> list[str]:
    """Answers of a batch of conversations, in order, from one left-padded ``generate`` call.

    Args:
        conversations: one message list per sample (``{"role", "content"}``); content items are
            ``{"type": "video", "video": path}``, ``{"type": "image", "image": PIL/array/path}`` or
            ``{"type": "text", "text": str}``, in prompt order. Without a system message the chat template's
            default system turn is used (the official wrapper's system prompt, "You are a helpful assistant.").
        video / generation: front-end and generation settings.

    Returns:
        the decoded new tokens of each sample (special tokens skipped, stripped).
    """
    import torch

    prompts, images, videos = [], [], []
    for messages in conversations:
        prompts.append(
            processor.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        )
        sample_images, sample_videos = _collect_visuals(messages)
        images.extend(sample_images)
        videos.extend(sample_videos)
    inputs = processor(
        text=prompts,
        images=images or None,
        videos=[str(v) for v in videos] or None,
        return_tensors="pt",
        padding=True,
        **video.processor_kwargs(),
    )
    device = input_device(model)
    inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items() if k != "video_metadata"}
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    with torch.inference_mode():
        out = model.generate(**inputs, **generation.generate_kwargs(processor.tokenizer))
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    return [t.strip() for t in processor.batch_decode(new_tokens, skip_special_tokens=True)]


_ITEM_ERRORS = (LlavaOnevision2Error, ValueError, OSError)  # input problems; model bugs still raise


def generate_with_fallback(
    model: Any,
    processor: Any,
    conversations: Sequence[Sequence[dict[str, Any]]],
    video: VideoSettings,
    generation: GenerationSettings,
) -> list[str | Exception]:
    """:func:`generate_batch`, retried one sample at a time when the batch raises an input error; a sample
    that still fails gets its exception in place of an answer."""
    try:
        return list(generate_batch(model, processor, conversations, video, generation))
    except _ITEM_ERRORS as exc:
        if len(conversations) == 1:
            return [exc]
    answers: list[str | Exception] = []
    for conv in conversations:
        try:
            answers.extend(generate_batch(model, processor, [conv], video, generation))
        except _ITEM_ERRORS as exc:
            answers.append(exc)
    return answers


class PredictionStore:
    """A resumable predictions file (JSON lines ``{"id", "prediction"[, "error"]}``) and its settings file.

    ``settings`` (JSON-ready dict) is written to ``<file>.settings.json`` on first use; reopening the store
    with different settings raises ``ValueError`` (delete the file, or pass ``overwrite=True``, to start over).
    """

    def __init__(self, path: str | os.PathLike, settings: dict[str, Any], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.settings_path = self.path.with_name(self.path.name + ".settings.json")
        self.done: dict[str, dict[str, Any]] = {}
        self.dropped_lines = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for p in (self.path, self.settings_path):
                p.unlink(missing_ok=True)
        if self.settings_path.is_file():
            saved = json.loads(self.settings_path.read_text())
            if saved != settings:
                changed = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
                raise ValueError(
                    f"{self.path} holds predictions made with other settings ({', '.join(changed)} differ); "
                    "use another predictions file or --overwrite"
                )
        else:
            tmp = self.settings_path.with_name(self.settings_path.name + ".partial")
            tmp.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.settings_path)
        self.done, self.dropped_lines = read_predictions(self.path, repair=True)

    def append(self, record: dict[str, Any]) -> None:
        """Append one prediction and flush it to disk."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[str(record["id"])] = record


def read_predictions(
    path: str | os.PathLike, *, repair: bool = False
) -> tuple[dict[str, dict[str, Any]], int]:
    """``({id: record}, bad_lines)`` of a predictions JSONL file (missing file: empty). The last record of an
    id wins. ``repair=True`` cuts a torn last line (no newline: the run was killed mid-write) off the file."""
    path = Path(path)
    if not path.is_file():
        return {}, 0
    data = path.read_bytes()
    if repair and data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    records: dict[str, dict[str, Any]] = {}
    bad = 0 if data.endswith(b"\n") or not data else 1
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get("prediction", ""), str):
            bad += 1
            continue
        records[str(rec["id"])] = rec
    return records, bad


def _conversation(record: Annotation) -> list[dict[str, Any]]:
    """The official task's message: one user turn with the video, then the question (stripped)."""
    return user_turn(
        [{"type": "video", "video": str(record.video)}, {"type": "text", "text": record.question.strip()}]
    )


def run_predictions(
    model: Any,
    processor: Any,
    records: Iterable[Annotation],
    store: PredictionStore,
    *,
    video: VideoSettings,
    generation: GenerationSettings = JUMPSCORE_GENERATION,
    batch_size: int = 1,
    on_item: Callable[[str], None] | None = None,
) -> int:
    """Generate answers for the records the store does not hold yet; returns how many failed.

    A batch that raises is retried one video at a time; a video that still fails (missing or undecodable
    file, too small a budget) is stored with ``"prediction": ""`` and ``"error"`` (it then scores as an empty
    answer). ``on_item(id)`` is called once per stored record.
    """
    pending = [r for r in records if r.id not in store.done]
    failures = 0
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        answers = generate_with_fallback(
            model, processor, [_conversation(r) for r in batch], video, generation
        )
        for r, answer in zip(batch, answers):
            if isinstance(answer, Exception):
                failures += 1
                store.append({"id": r.id, "prediction": "", "error": f"{type(answer).__name__}: {answer}"})
            else:
                store.append({"id": r.id, "prediction": answer})
            if on_item is not None:
                on_item(r.id)
    return failures


def settings_record(
    video: VideoSettings, generation: GenerationSettings, model: str | None
) -> dict[str, Any]:
    """The JSON-ready settings that identify a run (stored beside its predictions)."""
    return {"model": model, "video": asdict(video), "generation": asdict(generation)}

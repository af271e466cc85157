"""One record → model inputs with official-style labels (``encode_record``).

Text follows the official ``qwen2-vl`` training template (spec ``training_conversion.md`` §2.3): a system turn
(default "You are a helpful assistant." when the record has none), ``<|im_start|>user\\n{c}<|im_end|>\\n``,
``<|im_start|>assistant\\n`` then the target ``{c}<|im_end|>``; the ``\\n`` after an assistant turn is emitted
before the next user turn (masked) and there is none after the last turn. Each round's source and target are
tokenized separately, as the official ``encode_multiturn`` does. Labels are the target tokens only; every
other token, and every ``<|vision_start|>``/``<|image_pad|>``/``<|vision_end|>`` wherever it sits, is ``-100``.

Over-long samples (``StageConfig.overlong``): ``drop_rounds`` removes trailing QA rounds until the sample fits
(their images/videos go with them), ``skip`` rejects the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..video_types import CodecTokens
from .records import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, BadRecord, Record, Turn
from .stage import StageConfig

__all__ = [
    "DEFAULT_SYSTEM",
    "IGNORE_INDEX",
    "Segment",
    "build_segments",
    "encode_record",
    "processor_options",
]

IGNORE_INDEX = -100
DEFAULT_SYSTEM = "You are a helpful assistant."
IMAGE_SPAN = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_SPAN = "<|vision_start|><|video_pad|><|vision_end|>"
_OFFLINE_RUN = re.compile(r"(?:<image>\s*)+")


@dataclass(frozen=True)
class Segment:
    """A piece of the rendered conversation: ``round`` index and whether it is a learning target."""

    text: str
    target: bool
    round: int


def build_segments(turns: tuple[Turn, ...], system: str = DEFAULT_SYSTEM) -> list[Segment]:
    """Render turns as alternating source/target segments (one pair per assistant turn).

    Trailing user turns without an answer are dropped (nothing to learn from them).
    """
    segments: list[Segment] = []
    source, rnd = "", 0
    if not turns or turns[0].role != "system":
        source = f"<|im_start|>system\n{system}<|im_end|>\n"
    for turn in turns:
        if turn.role == "assistant":
            segments.append(Segment(source + "<|im_start|>assistant\n", False, rnd))
            segments.append(Segment(turn.text + "<|im_end|>", True, rnd))
            source, rnd = "\n", rnd + 1
        else:
            source += f"<|im_start|>{turn.role}\n{turn.text}<|im_end|>\n"
    return segments


def processor_options(
    stage: StageConfig, modality: str, timestamp_decimals: int | None = None
) -> dict[str, Any]:
    """Processor keyword options of a stage for one sample's modality."""
    opts: dict[str, Any] = {
        "min_pixels": stage.image_min_pixels,
        "max_pixels": stage.image_max_pixels,
        "video_layout": stage.video_layout,
        "timestamp_decimals": stage.timestamp_decimals if timestamp_decimals is None else timestamp_decimals,
    }
    if modality == "codec":
        opts.update(
            video_backend="codec", codec_grid="video", codec_config={"max_pixels": stage.frame_pixels}
        )
        if stage.codec_max_visual_tokens is not None:
            opts["max_visual_tokens"] = stage.codec_max_visual_tokens
    else:
        opts.update(
            video_backend="frames",
            num_frames=stage.num_frames,
            frame_max_pixels=stage.frame_pixels,
            total_pixels=0,
        )
    return opts


def _load_image(path: Any) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as exc:
        raise BadRecord("bad_image", f"{path}: {exc}") from exc


def offline_codec_tokens(record: Record, patch_size: int, merge_size: int) -> CodecTokens:
    """The images + ``patch_positions`` of an official offline record as one video's ``CodecTokens``.

    Images must share one size, a multiple of ``patch_size * merge_size``; each ``.npy`` holds the image's
    ``[h*w, 3]`` row-major ``(t, h, w)`` source positions (converted to block order by the processor).
    """
    canvases = [np.asarray(_load_image(p), dtype=np.uint8) for p in record.images]
    shapes = {c.shape for c in canvases}
    if len(shapes) != 1:
        raise BadRecord("bad_format", f"offline images differ in size: {sorted(shapes)}")
    h, w, _ = canvases[0].shape
    factor = patch_size * merge_size
    if h % factor or w % factor:
        raise BadRecord("bad_image", f"offline image size {w}x{h} is not a multiple of patch*merge={factor}")
    per_image = (h // patch_size) * (w // patch_size)
    rows = []
    for path in record.patch_positions or ():
        try:
            pos = np.asarray(np.load(path), dtype=np.int64)
        except Exception as exc:
            raise BadRecord("bad_patch_positions", f"{path}: {exc}") from exc
        if pos.shape != (per_image, 3):
            raise BadRecord("bad_patch_positions", f"{path}: shape {pos.shape}, expected ({per_image}, 3)")
        rows.append(pos)
    positions = np.concatenate(rows)
    if int(positions[:, 0].min()) < 0:
        raise BadRecord("bad_patch_positions", "padding positions (t < 0) in an offline record")
    n, n_c = len(positions), len(canvases)
    fps = float(record.fps or 1.0)
    return CodecTokens(
        canvases=np.stack(canvases),
        patch_size=patch_size,
        merge_size=merge_size,
        source_positions=positions,
        token_canvas=np.repeat(np.arange(n_c), per_image),
        token_timestamps=positions[:, 0] / fps,
        token_group=np.zeros(n, np.int64),
        token_role=np.zeros(n, np.int8),
        canvas_roles=np.zeros(n_c, np.int8),
        canvas_groups=np.zeros(n_c, np.int64),
        groups=(),
        fps=fps,
        duration=float(positions[:, 0].max() + 1) / fps,
        total_frames=int(positions[:, 0].max()) + 1,
        source_frame_size=(h, w),
        source=str(record.images[0].parent),
    )


def _media(record: Record, modality: str, processor: Any, stage: StageConfig, video_store: Any) -> tuple:
    """``(turns, images, videos)`` ready for the processor."""
    ip = processor.image_processor
    if record.is_offline:
        ct = offline_codec_tokens(record, int(ip.patch_size), int(ip.merge_size))
        turns = tuple(Turn(t.role, _OFFLINE_RUN.sub(VIDEO_PLACEHOLDER, t.text)) for t in record.turns)
        return turns, [], [ct]
    images = [_load_image(p) for p in record.images]
    videos: list[Any] = []
    for path in record.videos:
        item: Any = str(path)
        if video_store is not None:
            config = processor_options(stage, modality)
            try:
                stored = video_store.get(str(path), config)
            except Exception as exc:
                raise BadRecord("video_store_error", f"{path}: {exc}") from exc
            item = stored if stored is not None else item
        videos.append(item)
    return record.turns, images, videos


def _run_processor(processor: Any, text: str, images: list, videos: list, opts: dict[str, Any]) -> Any:
    from ..errors import VideoDecodeError

    try:
        return processor(
            text=[text],
            images=images or None,
            videos=videos or None,
            return_text_replacement_offsets=True,
            return_metadata=True,
            **opts,
        )
    except VideoDecodeError as exc:
        raise BadRecord("bad_video", str(exc)) from exc
    except (OSError, RuntimeError) as exc:
        raise BadRecord("bad_video" if videos else "bad_image", str(exc)) from exc


def encode_record(
    record: Record,
    processor: Any,
    stage: StageConfig,
    modality: str | None = None,
    video_store: Any = None,
) -> dict[str, Any]:
    """Encode one record for training.

    Returns:
        ``input_ids``/``labels`` ``int64 [L]``, and when visual inputs remain ``pixel_values [N, 3·p·p]``,
        ``image_grid_thw [R, 3]``, ``patch_positions [N, 3]`` (prompt order); plus ``modality``,
        ``num_visual_tokens`` and ``dropped_rounds``.
    """
    modality = modality or record.modality
    turns, images, videos = _media(record, modality, processor, stage, video_store)
    segments = build_segments(turns)
    texts = [
        s.text.replace(IMAGE_PLACEHOLDER, IMAGE_SPAN).replace(VIDEO_PLACEHOLDER, VIDEO_SPAN) for s in segments
    ]
    opts = processor_options(stage, modality, record.timestamp_decimals)
    out = _run_processor(processor, "".join(texts), images, videos, opts)
    items = _visual_items(out, texts)
    tokenizer = processor.tokenizer
    expanded = _expand(texts, items)
    seg_ids = tokenizer(expanded, add_special_tokens=False)["input_ids"] if expanded else []

    keep, dropped = _fit(segments, [len(x) for x in seg_ids], stage)
    kept_items = [it for it in items if it["segment"] < keep]
    if items and not kept_items:
        raise BadRecord(
            "no_visual_tokens_left", f"record {record.index}: every visual input was in a dropped round"
        )
    ids = [t for s in range(keep) for t in seg_ids[s]]
    labels = [t if segments[s].target else IGNORE_INDEX for s in range(keep) for t in seg_ids[s]]
    visual_ids = {processor.image_token_id, processor.vision_start_token_id, processor.vision_end_token_id}
    labels = [IGNORE_INDEX if t in visual_ids else lab for t, lab in zip(ids, labels)]
    sample: dict[str, Any] = {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "modality": modality if (images or videos) else "text",
        "num_visual_tokens": int(sum(1 for t in ids if t == processor.image_token_id)),
        "dropped_rounds": dropped,
    }
    if kept_items:
        rows = sum(it["rows"] for it in kept_items)
        patches = sum(it["patches"] for it in kept_items)
        sample["pixel_values"] = torch.as_tensor(
            np.asarray(out["pixel_values"][:patches]), dtype=torch.float32
        )
        sample["image_grid_thw"] = torch.as_tensor(np.asarray(out["image_grid_thw"][:rows]), dtype=torch.long)
        sample["patch_positions"] = torch.as_tensor(
            np.asarray(out["patch_positions"][:patches]), dtype=torch.long
        )
        if sample["num_visual_tokens"] * processor.image_processor.merge_size**2 != patches:
            raise BadRecord("token_mismatch", f"record {record.index}: visual tokens do not match pixel rows")
    return sample


def _visual_items(out: Any, texts: list[str]) -> list[dict[str, Any]]:
    """Each visual placeholder in prompt order: its segment, replacement text, grid rows and patches."""
    bounds = np.cumsum([0, *[len(t) for t in texts]])
    grids = np.asarray(out.get("image_grid_thw", np.zeros((0, 3), np.int64))).reshape(-1, 3)
    infos = list(out.get("video_metadata") or [])
    items, row, vid = [], 0, 0
    for off in sorted(out["text_replacement_offsets"][0], key=lambda o: o["span"][0]):
        start, end = off["span"]
        seg = int(np.searchsorted(bounds, start, side="right") - 1)
        n_rows = 1 if off["type"] == "image" else len(infos[vid].grid_thw)
        vid += off["type"] == "video"
        patches = int(grids[row : row + n_rows].prod(-1).sum())
        items.append(
            {
                "segment": seg,
                "start": start - bounds[seg],
                "end": end - bounds[seg],
                "rows": n_rows,
                "patches": patches,
                "replacement": off["replacement"],
            }
        )
        row += n_rows
    return items


def _expand(texts: list[str], items: list[dict[str, Any]]) -> list[str]:
    """Segment texts with each visual span replaced by the processor's expansion."""
    out = []
    for s, text in enumerate(texts):
        parts, last = [], 0
        for it in (i for i in items if i["segment"] == s):
            parts += [text[last : it["start"]], it["replacement"]]
            last = it["end"]
        out.append("".join(parts) + text[last:])
    return out


def _fit(segments: list[Segment], lengths: list[int], stage: StageConfig) -> tuple[int, int]:
    """Number of segments kept and of rounds dropped so the sample fits ``stage.max_seq_length``."""
    total = sum(lengths)
    n_rounds = segments[-1].round + 1 if segments else 0
    if total <= stage.max_seq_length:
        return len(segments), 0
    if stage.overlong == "skip":
        raise BadRecord("too_long", f"{total} tokens > max_seq_length {stage.max_seq_length}")
    keep = len(segments)
    while keep > 0 and sum(lengths[:keep]) > stage.max_seq_length:
        keep -= 2  # one (source, target) pair = one round
    if keep <= 0:
        raise BadRecord("too_long", f"the first round alone exceeds max_seq_length {stage.max_seq_length}")
    return keep, n_rounds - segments[keep - 1].round - 1

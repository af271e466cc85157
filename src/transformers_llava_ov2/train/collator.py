"""``MultimodalCollator``: right-padded batches or exact packing, visual rows concatenated in prompt order.

Unpacked: ``input_ids``/``labels``/``attention_mask`` ``[B, L]`` right-padded (labels ``-100`` on padding).

Packed (``packing=True``): samples are placed first-fit-decreasing into rows of ``max_seq_length`` tokens;
``position_ids`` restart at 0 for every sample and **no** ``attention_mask`` is returned, which makes the
library's Qwen3 mask builder (sdpa / eager / flex) build a block-diagonal causal mask from the position
restarts (``find_packed_sequence_indices``), and the flash-attention path derive varlen ``cu_seqlens`` from
them (one row: ``flatten=True``). Row padding gets its own restarting positions, so it is a separate block
whose labels are ``-100``. The result is exact: no token attends across samples and every sample sees the
positions it would see alone. (The model must run with ``use_cache=False`` — a cache disables the detection;
the trainer does this.)

``pixel_values``/``image_grid_thw``/``patch_positions`` are concatenated in the order the samples' placeholders
appear in the batch (row by row, left to right). Every batch carries ``batch_stats``: samples/tokens per
modality, visual and text tokens, skipped-record reasons and the packing efficiency (real tokens / tokens the
tensors hold).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from .encode import IGNORE_INDEX

__all__ = ["MultimodalCollator", "pack_rows"]


def pack_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit-decreasing bin packing of sample ``lengths`` into rows of ``capacity`` tokens.

    Returns rows of sample indices; inside a row samples keep their batch order. A sample longer than
    ``capacity`` gets a row of its own.
    """
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        for r, space in enumerate(free):
            if lengths[i] <= space:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(capacity - lengths[i])
    return [sorted(r) for r in rows]


class MultimodalCollator:
    """Collate encoded samples (see :func:`~.encode.encode_record`) into model inputs.

    Args:
        pad_token_id: id written on padding positions.
        packing: pack several samples per row (exact, see the module docstring).
        max_seq_length: row capacity when packing.
        flatten: with packing, put the whole batch in one row (flash-attention varlen path).
        pad_to_multiple_of: round the padded length up.
        with_stats: add ``batch_stats`` (read by :class:`~.trainer.LlavaOnevision2Trainer`); turn off for
            trainers that pass every batch key to the model (e.g. ``trl.SFTTrainer``).
    """

    def __init__(
        self,
        pad_token_id: int,
        packing: bool = False,
        max_seq_length: int = 32768,
        flatten: bool = False,
        pad_to_multiple_of: int | None = None,
        with_stats: bool = True,
    ) -> None:
        self.pad_token_id = int(pad_token_id)
        self.packing = packing
        self.max_seq_length = int(max_seq_length)
        self.flatten = flatten
        self.pad_to_multiple_of = pad_to_multiple_of
        self.with_stats = with_stats

    def _padded(self, n: int) -> int:
        m = self.pad_to_multiple_of
        return -(-n // m) * m if m else n

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        features = [f for f in features if f is not None]
        if not features:
            raise ValueError("empty batch: every sample of the batch was None")
        lengths = [int(f["input_ids"].numel()) for f in features]
        if self.packing:
            capacity = sum(lengths) if self.flatten else self.max_seq_length
            rows = pack_rows(lengths, capacity)
        else:
            rows = [[i] for i in range(len(features))]
        width = self._padded(max(sum(lengths[i] for i in r) for r in rows))
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        order: list[int] = []
        for r, row in enumerate(rows):
            col = 0
            for i in row:
                n = lengths[i]
                ids[r, col : col + n] = features[i]["input_ids"]
                labels[r, col : col + n] = features[i]["labels"]
                positions[r, col : col + n] = torch.arange(n)
                col += n
                order.append(i)
            positions[r, col:] = torch.arange(width - col)
        batch: dict[str, Any] = {"input_ids": ids, "labels": labels}
        if self.packing:
            batch["position_ids"] = positions
        else:
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, n in enumerate(lengths):
                mask[r, :n] = 1
            batch["attention_mask"] = mask
        visual = [features[i] for i in order if "pixel_values" in features[i]]
        if visual:
            batch["pixel_values"] = torch.cat([f["pixel_values"] for f in visual])
            batch["image_grid_thw"] = torch.cat([f["image_grid_thw"] for f in visual])
            batch["patch_positions"] = torch.cat([f["patch_positions"] for f in visual])
        if self.with_stats:
            batch["batch_stats"] = self._stats(features, lengths, ids.numel())
        return batch

    @staticmethod
    def _stats(features: list[dict[str, Any]], lengths: list[int], slots: int) -> dict[str, Any]:
        samples: Counter[str] = Counter()
        tokens: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        visual = 0
        for f, n in zip(features, lengths):
            modality = f.get("modality", "text")
            samples[modality] += 1
            tokens[modality] += n
            visual += int(f.get("num_visual_tokens", 0))
            skipped.update(f.get("skipped", ()))
        total = sum(lengths)
        return {
            "samples": dict(samples),
            "tokens": dict(tokens),
            "visual_tokens": visual,
            "text_tokens": total - visual,
            "skipped": dict(skipped),
            "real_tokens": total,
            "slots": int(slots),
        }

"""``ConversationDataset``: records → processed samples, lazily, with bad records skipped and counted.

Keys are ``(record_index, modality)`` tuples (what :class:`~.sampler.ModalityMixSampler` yields) or plain record
indices (the record's own modality; videos then use the frames back end). A record that fails (missing file,
undecodable video, placeholder mismatch, too long, no visual tokens left...) is counted under its reason and
replaced by the next record of the same modality pool, so a run never crashes on data; each returned sample
lists the reasons of the records it skipped past under ``"skipped"`` (the collator and trainer add them up,
across workers). A bad record is counted once per process (a DataLoader worker that meets a record another
worker already rejected counts it again).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .encode import encode_record
from .records import BadRecord, classify, iter_raw_records, parse_record
from .stage import StageConfig

__all__ = ["VIDEO_MODALITIES", "ConversationDataset"]

logger = logging.getLogger(__name__)
VIDEO_MODALITIES = ("frames", "codec")


class ConversationDataset(Dataset):
    """LLaVA-style / official-offline records processed through the package processor per stage.

    Args:
        data_file: ``.json`` (a list) or ``.jsonl`` records (see :mod:`.records`).
        processor: a ``LlavaOnevision2Processor``.
        stage: the :class:`StageConfig` (budgets, sequence length, over-long policy).
        media_root: folder relative media paths start from (default: the data file's folder).
        video_store: optional object with ``get(video_path, options) -> CodecTokens | SampledFrames | None``
            (a pre-tokenized video cache); ``None`` results fall back to decoding the file.
        max_retries: consecutive bad records tolerated before giving up with an error.
        cache: keep encoded samples in memory (tiny datasets, notebooks, tests; not for real data).
    """

    def __init__(
        self,
        data_file: str | os.PathLike,
        processor: Any,
        stage: StageConfig,
        media_root: str | os.PathLike | None = None,
        video_store: Any = None,
        max_retries: int = 64,
        cache: bool = False,
    ) -> None:
        self.data_file = Path(data_file)
        self.media_root = Path(media_root) if media_root is not None else self.data_file.parent
        self.processor = processor
        self.stage = stage
        self.video_store = video_store
        self.max_retries = max_retries
        self.raw: list[Any] = []
        self.skipped: Counter[str] = Counter()
        for _, raw in iter_raw_records(self.data_file):
            self.raw.append(raw)
        self.kinds = [classify(r) for r in self.raw]
        self.pools: dict[str, list[int]] = {}
        for i, kind in enumerate(self.kinds):
            for modality in VIDEO_MODALITIES if kind == "video" else (kind,):
                self.pools.setdefault(modality, []).append(i)
        self._pool_pos = {m: {idx: k for k, idx in enumerate(p)} for m, p in self.pools.items()}
        self._size_cache: dict[int, int] = {}
        self._bad: dict[int, str] = {}
        self._cache: dict[tuple[int, str], dict[str, Any]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.raw)

    def default_modality(self, index: int) -> str:
        kind = self.kinds[index]
        return "frames" if kind == "video" else kind

    def __getitem__(self, key: int | tuple[int, str]) -> dict[str, Any]:
        index, modality = (key, None) if isinstance(key, int) else (int(key[0]), str(key[1]))
        modality = modality or self.default_modality(index)
        if self._cache is not None and (index, modality) in self._cache:
            return dict(self._cache[(index, modality)], skipped=[])
        first = index
        reasons: list[str] = []
        for _ in range(self.max_retries):
            if index in self._bad:  # known bad: counted when first seen
                index = self._next_in_pool(index, modality)
                continue
            try:
                record = parse_record(index, self.raw[index], self.media_root)
                sample = encode_record(record, self.processor, self.stage, modality, self.video_store)
                if self._cache is not None:
                    self._cache[(first, modality)] = sample
                return dict(sample, skipped=reasons)
            except BadRecord as exc:
                reasons.append(exc.reason)
                self.skipped[exc.reason] += 1
                self._bad[index] = exc.reason
                logger.warning("skipping record %d of %s (%s)", index, self.data_file, exc)
                index = self._next_in_pool(index, modality)
        raise RuntimeError(
            f"{self.max_retries} consecutive bad records in {self.data_file} (last reasons: {reasons[-5:]}); "
            "check the media root and the data file"
        )

    def _next_in_pool(self, index: int, modality: str) -> int:
        pool = self.pools.get(modality) or list(range(len(self.raw)))
        pos = self._pool_pos.get(modality, {}).get(index, -1)
        return pool[(pos + 1) % len(pool)]

    # ------------------------------------------------------------------ cheap length estimates
    def estimate_length(self, index: int, modality: str | None = None) -> int:
        """Rough token count of a record without processing it (for length-grouped batching)."""
        raw = self.raw[index]
        modality = modality or self.default_modality(index)
        text = 0
        if isinstance(raw, dict):
            turns = raw.get("messages") or raw.get("conversations") or []
            for t in turns if isinstance(turns, list) else []:
                value = t.get("content", t.get("value", "")) if isinstance(t, dict) else ""
                text += len(value) if isinstance(value, str) else 64
        tokens = 24 + text // 4
        st = self.stage
        if modality == "image":
            tokens += self._image_tokens(index)
        elif modality == "frames":
            tokens += st.num_frames * max(1, st.frame_pixels // 784)
        elif modality == "codec":
            tokens += st.codec_max_visual_tokens or 32 * max(1, st.frame_pixels // 784)
        return tokens

    def _image_tokens(self, index: int) -> int:
        if index not in self._size_cache:
            from PIL import Image

            raw, total = self.raw[index], 0
            paths = []
            for key in ("image", "images"):
                value = raw.get(key) if isinstance(raw, dict) else None
                paths += value if isinstance(value, list) else [value] if value else []
            for p in paths:
                path = Path(p) if Path(str(p)).is_absolute() else self.media_root / str(p)
                try:
                    with Image.open(path) as img:
                        w, h = img.size
                except Exception:
                    w = h = 448
                px = min(max(w * h, self.stage.image_min_pixels), self.stage.image_max_pixels)
                total += max(1, px // 784)
            self._size_cache[index] = total
        return self._size_cache[index]

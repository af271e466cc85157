"""``RecordCollator``: raw records in, model inputs out — for trainers that own the dataset (``trl.SFTTrainer``).

TRL's ``SFTTrainer`` wants a ``datasets.Dataset`` and collates it itself; pass it the raw records
(``datasets.Dataset.from_json(...)``) and this collator (with ``dataset_kwargs={"skip_prepare_dataset": True}``
and ``remove_unused_columns=False``). Each record is encoded like :class:`~.dataset.ConversationDataset` does
(official labels, the stage's budgets; a ``"modality": "codec"`` record uses the codec back end), bad records
are dropped from the batch and counted in :attr:`skipped`, and the batch is collated by
:class:`~.collator.MultimodalCollator` without ``batch_stats`` (TRL passes every key to the model).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

from .collator import MultimodalCollator
from .encode import encode_record
from .records import BadRecord, parse_record
from .stage import StageConfig

__all__ = ["RecordCollator"]

logger = logging.getLogger(__name__)


class RecordCollator:
    """Encode and collate raw records.

    Args:
        processor: a ``LlavaOnevision2Processor``.
        stage: budgets, sequence length and over-long policy (packing is not used here).
        media_root: folder relative media paths start from.
        video_store: optional pre-tokenized video cache (see :class:`~.dataset.ConversationDataset`).
    """

    def __init__(
        self, processor: Any, stage: StageConfig, media_root: str | os.PathLike = ".", video_store: Any = None
    ) -> None:
        self.processor = processor
        self.stage = stage
        self.media_root = media_root
        self.video_store = video_store
        self.skipped: Counter[str] = Counter()
        pad = processor.tokenizer.pad_token_id
        self.collate = MultimodalCollator(pad_token_id=pad if pad is not None else 0, with_stats=False)

    def __call__(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        samples = []
        for i, raw in enumerate(records):
            try:
                record = parse_record(i, raw, self.media_root)
                samples.append(encode_record(record, self.processor, self.stage, None, self.video_store))
            except BadRecord as exc:
                self.skipped[exc.reason] += 1
                logger.warning("dropping a record from the batch (%s)", exc)
        if not samples:
            raise ValueError(f"every record of the batch was bad (skipped so far: {dict(self.skipped)})")
        return self.collate(samples)

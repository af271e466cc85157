"""``ModalityMixSampler``: draws ``(record, modality)`` keys following a stage's modality mix, length-grouped.

Each draw picks a modality with the stage weights (renormalised over the modalities the data has; an empty
mix means the data's natural proportions, i.e. a shuffled pass over the records), then the next record of that
modality's shuffled pool (pools cycle, so small pools repeat). With length grouping, every window of
``batch_size * group_batches`` draws is sorted by estimated length and cut into batches whose order is then
shuffled, so one batch holds samples of similar length. Deterministic for a given ``seed`` and epoch
(``set_epoch``), so a resumed run sees the same stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from .dataset import ConversationDataset

__all__ = ["ModalityMixSampler"]


class ModalityMixSampler(Sampler):
    """Sampler of ``(record_index, modality)`` keys for :class:`ConversationDataset`.

    Args:
        dataset: the dataset (its pools and length estimates are used).
        mix: modality weights (``{}``/``None``: natural proportions).
        num_samples: draws per epoch (default: number of records).
        batch_size: samples per batch (for length grouping).
        group_by_length: sort windows of draws by estimated length.
        group_batches: batches per sorting window.
        shuffle: ``False`` keeps file order (natural mix only; used for controlled tests).
        seed: base seed (the epoch is added).
    """

    def __init__(
        self,
        dataset: ConversationDataset,
        mix: dict[str, float] | None = None,
        num_samples: int | None = None,
        batch_size: int = 1,
        group_by_length: bool = True,
        group_batches: int = 16,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        available = {m for m, p in dataset.pools.items() if p}
        weights = {m: w for m, w in (mix or {}).items() if w > 0 and m in available}
        if mix and not weights:
            raise ValueError(
                f"the modality mix {dict(mix)} has no modality present in {dataset.data_file} "
                f"(the data has {sorted(available)})"
            )
        total = sum(weights.values())
        self.mix = {m: w / total for m, w in weights.items()}
        self.num_samples = int(num_samples or len(dataset))
        self.batch_size = max(1, int(batch_size))
        self.group_by_length = group_by_length
        self.group_batches = max(1, int(group_batches))
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def draws(self) -> list[tuple[int, str]]:
        """The epoch's keys before length grouping."""
        rng = np.random.default_rng([self.seed, self.epoch])
        ds = self.dataset
        if not self.mix:
            order = rng.permutation(len(ds)) if self.shuffle else np.arange(len(ds))
            reps = -(-self.num_samples // max(len(ds), 1))
            order = np.concatenate([order] * reps)[: self.num_samples]
            return [(int(i), ds.default_modality(int(i))) for i in order]
        names = sorted(self.mix)
        chosen = rng.choice(len(names), size=self.num_samples, p=[self.mix[n] for n in names])
        cursors = {n: 0 for n in names}
        perms = {n: rng.permutation(ds.pools[n]) for n in names}
        keys = []
        for c in chosen:
            name = names[int(c)]
            pool = perms[name]
            keys.append((int(pool[cursors[name] % len(pool)]), name))
            cursors[name] += 1
        return keys

    def __iter__(self) -> Iterator[tuple[int, str]]:
        keys = self.draws()
        if not self.group_by_length or self.batch_size == 1:
            yield from keys
            return
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        window = self.batch_size * self.group_batches
        for start in range(0, len(keys), window):
            chunk = keys[start : start + window]
            chunk.sort(key=lambda k: -self.dataset.estimate_length(*k))
            batches = [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
            for b in rng.permutation(len(batches)):
                yield from batches[int(b)]

"""Worker of ``test_distributed.py``: 2 CPU processes (gloo) train a few DDP steps; rank 1 sees only text.

Run by ``torch.distributed.run``; writes ``rank{r}.json`` (modalities seen, weight checksum) and
``rank{r}.pt`` (final weights) into the folder given as the first argument.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from tests.train.conftest import synthetic_sample
from transformers_llava_ov2.testing import small_config, tiny_model
from transformers_llava_ov2.train.collator import MultimodalCollator
from transformers_llava_ov2.train.run import training_arguments
from transformers_llava_ov2.train.stage import StageConfig
from transformers_llava_ov2.train.trainer import LlavaOnevision2Trainer


def main(out: Path) -> None:
    rank = int(os.environ.get("RANK", "0"))
    # sequential batches of 2 go to ranks round-robin: rank 0 gets the image batches, rank 1 the text ones
    samples = []
    for k in range(4):
        samples += [synthetic_sample(10 * k + j, 6 + j, [(1, 2, 2)]) for j in range(2)]
        samples += [synthetic_sample(10 * k + 5 + j, 7 + j, []) for j in range(2)]
    stage = StageConfig(
        name="ddp",
        learning_rate=1e-2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        gradient_checkpointing=False,
        packing=False,
    )
    model = tiny_model(small_config(), seed=0).train()
    args = training_arguments(
        stage,
        out / "run",
        max_steps=3,
        per_device_train_batch_size=2,
        use_cpu=True,
        ddp_backend="gloo",
        train_sampling_strategy="sequential",
        logging_steps=1,
        dataloader_drop_last=True,
    )
    trainer = LlavaOnevision2Trainer(
        model=model,
        args=args,
        stage=stage,
        train_dataset=samples,
        data_collator=MultimodalCollator(pad_token_id=0),
    )
    trainer.train()
    state = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    torch.save(state, out / f"rank{rank}.pt")
    (out / f"rank{rank}.json").write_text(json.dumps({"samples": dict(trainer.run_stats.samples)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

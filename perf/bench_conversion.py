"""Peak memory and throughput of the checkpoint conversions on a synthetic few-hundred-MB model (CPU).

Builds one random bf16 model folder (``--text-layers``/``--text-hidden``/``--vocab`` set its size), then runs
each job in a fresh subprocess and reports, per job: bytes of weights moved, wall time, GB/s, the peak RSS
of the process (``VmHWM``; it includes memory-mapped file pages touched while reading) and the peak
anonymous RSS (sampled every 10 ms: the memory the job itself allocated), each next to the model size and
to the RSS of a process that only imports the package.

Run: ``python perf/bench_conversion.py [--text-layers 12] [--out DIR] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, threading, time
peak = {"anon": 0}
def sample():
    while True:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    peak["anon"] = max(peak["anon"], int(line.split()[1]) * 1024)
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
import torch, transformers_llava_ov2
from transformers_llava_ov2.convert.hf_to_megatron import HfToMegatronOptions, hf_to_megatron
from transformers_llava_ov2.convert.megatron_to_hf import MegatronToHfOptions, megatron_to_hf
from transformers_llava_ov2.convert.check import check_folder
from transformers_llava_ov2.convert.layout import load_config
job, src, out, hf = sys.argv[1:5]
quiet = lambda _: None
t0 = time.perf_counter()
if job == "import":
    moved = 0
elif job == "hf-to-megatron":
    moved = hf_to_megatron(src, out, HfToMegatronOptions(tp=2, pp=2), log=quiet).bytes
elif job == "hf-to-torch_dist":
    moved = hf_to_megatron(src, out, HfToMegatronOptions(target_format="torch_dist"), log=quiet).bytes
elif job.startswith("megatron-to-hf"):
    opts = MegatronToHfOptions(max_shard_bytes=100 * 10**6)
    moved = megatron_to_hf(src, out, load_config(hf), opts, log=quiet).bytes
elif job == "check":
    moved = check_folder(src).bytes
seconds = time.perf_counter() - t0
time.sleep(0.03)
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"job": job, "bytes": moved, "seconds": seconds, "maxrss": hwm, "anon": peak["anon"]}))
"""


def build_model(folder: Path, text_layers: int, text_hidden: int, vocab: int) -> int:
    import torch

    from transformers_llava_ov2 import LlavaOnevision2ForConditionalGeneration, tiny_config

    config = tiny_config(
        vocab_size=vocab, vision_hidden_size=512, vision_layers=8, vision_heads=8, text_hidden_size=text_hidden,
        text_layers=text_layers, image_token_id=500, video_token_id=501, vision_start_token_id=502,
        vision_end_token_id=503,
    )  # fmt: skip
    config.text_config.intermediate_size = 4 * text_hidden
    config.text_config.num_attention_heads, config.text_config.num_key_value_heads = 8, 4
    config.text_config.head_dim = text_hidden // 8
    torch.manual_seed(0)
    model = LlavaOnevision2ForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="100MB")
    return sum(p.numel() * p.element_size() for p in model.parameters())


def run_child(job: str, src: Path, out: Path, hf: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", _CHILD, job, str(src), str(out), str(hf)], capture_output=True,
                            text=True, check=False)  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"{job} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-layers", type=int, default=12)
    parser.add_argument("--text-hidden", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--out", help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="bench_conversion_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        size = build_model(work / "hf", args.text_layers, args.text_hidden, args.vocab)
        print(f"model: {size / 1e6:.0f} MB of bf16 weights")
        base = run_child("import", work / "hf", work / "none", work / "hf")
        jobs = [
            ("hf-to-megatron", work / "hf", work / "mg"),
            ("megatron-to-hf", work / "mg", work / "hf2"),
            ("hf-to-torch_dist", work / "hf", work / "dist"),
            ("megatron-to-hf (torch_dist)", work / "dist", work / "hf3"),
            ("check", work / "hf2", work / "none"),
        ]
        print(
            f"{'job':30s} {'GB':>6s} {'s':>6s} {'GB/s':>6s} {'maxRSS-import':>14s} {'anon-import':>12s}  (x model)"
        )
        for job, src, out in jobs:
            r = run_child(job, src, out, work / "hf")
            rss, anon = r["maxrss"] - base["maxrss"], r["anon"] - base["anon"]
            print(f"{job:30s} {r['bytes'] / 1e9:6.3f} {r['seconds']:6.2f} {r['bytes'] / 1e9 / r['seconds']:6.2f} "
                  f"{rss / 1e6:10.0f} MB {anon / 1e6:8.0f} MB  ({rss / size:.2f} / {anon / size:.2f})")  # fmt: skip
        print(
            f"(import-only process: maxRSS {base['maxrss'] / 1e6:.0f} MB, anon {base['anon'] / 1e6:.0f} MB)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

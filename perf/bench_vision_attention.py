"""Grouped vision attention vs the released per-segment loop vs one dense masked call (CPU).

Cases (OneVision-Encoder-L attention: 16 heads × 64):
  * ``canvases``: 64 codec canvases of 16×16 patches in one ``[64,16,16]`` row → 16 segments of 4 canvases.
  * ``frames``: 512 frames of 8×8 patches, one ``[1,8,8]`` row each → 512 segments of 64 tokens.

Times are medians of interleaved repetitions in this process (the machine is noisy: read the ratios).
Peak memory is the peak RSS growth of a fresh subprocess running one method once. The dense call needs an
``N×N`` mask and ``H×N×N`` scores; it is only run where that fits in ``--dense-limit-gib``, otherwise its
predicted footprint is printed.

``--background-load N`` runs N CPU-bound processes while timing, to reproduce a shared/busy host (CI runners,
servers): there the loop's hundreds of small calls each pay a thread-pool hand-off that an idle machine hides.

Run: ``python perf/bench_vision_attention.py [--repeats 5] [--quick] [--background-load 2]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import time

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from transformers_llava_ov2.vision_segments import block_diagonal_mask, segment_attention, segments_from_grid

HEADS, HEAD_DIM = 16, 64
CASES = {
    "canvases": {"grid": [[64, 16, 16]], "window": 4},
    "frames": {"grid": [[1, 8, 8]] * 512, "window": 4},
}
QUICK_CASES = {
    "canvases": {"grid": [[16, 16, 16]], "window": 4},
    "frames": {"grid": [[1, 8, 8]] * 128, "window": 4},
}


class _Module(torch.nn.Module):
    num_key_value_groups = 1
    is_causal = False


def make_inputs(case: dict, seed: int = 0):
    segments = segments_from_grid(torch.tensor(case["grid"]), case["window"])
    n = segments.num_tokens
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, HEADS, HEAD_DIM, generator=g) for _ in range(3))
    return q, k, v, segments


def grouped(q, k, v, segments):
    return segment_attention(
        sdpa_attention_forward, _Module(), q, k, v, segments, varlen=False, scaling=HEAD_DIM**-0.5
    )


def per_segment_loop(q, k, v, segments):
    """The released non-flash path: split by segment lengths, one attention call per segment, concatenate."""
    lengths = segments.lengths.tolist()
    chunks = [torch.split(t.transpose(0, 1).unsqueeze(0), lengths, dim=2) for t in (q, k, v)]
    outs = [
        sdpa_attention_forward(_Module(), a, b, c, None, scaling=HEAD_DIM**-0.5, is_causal=False)[0]
        for a, b, c in zip(*chunks)
    ]
    return torch.cat(outs, dim=1)[0]


def dense_masked(q, k, v, segments):
    mask = block_diagonal_mask(segments, q.dtype)
    out, _ = sdpa_attention_forward(
        _Module(),
        *(t.transpose(0, 1).unsqueeze(0) for t in (q, k, v)),
        mask,
        scaling=HEAD_DIM**-0.5,
        is_causal=False,
    )
    return out[0]


METHODS = {"grouped": grouped, "loop": per_segment_loop, "dense": dense_masked}


def dense_bytes(n: int) -> int:
    return 4 * n * n * (1 + HEADS)  # fp32 mask + scores


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(case_name: str, method: str, quick: bool) -> None:
    """Peak RSS growth of one call: reset the kernel's high-water mark, run, read it back (Linux)."""
    torch.set_num_threads(2)
    q, k, v, segments = make_inputs((QUICK_CASES if quick else CASES)[case_name])
    with torch.no_grad():
        METHODS[method](q[:64], k[:64], v[:64], segments_from_grid(torch.tensor([[1, 8, 8]]), 4))  # warm-up
    baseline = _status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    with torch.no_grad():
        METHODS[method](q, k, v, segments)
    print(json.dumps({"peak_mib": _status_mib("VmHWM") - baseline}))


def measure_memory(case_name: str, method: str, quick: bool) -> float:
    cmd = [sys.executable, __file__, "--child", case_name, method] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def _burn(stop) -> None:
    """A CPU-bound background process (matrix products) until ``stop`` is set."""
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def start_background_load(n: int):
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    workers = [ctx.Process(target=_burn, args=(stop,), daemon=True) for _ in range(n)]
    for w in workers:
        w.start()
    return stop, workers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller cases (CI-sized)")
    parser.add_argument("--dense-limit-gib", type=float, default=6.0)
    parser.add_argument(
        "--background-load", type=int, default=0, help="CPU-bound processes running while timing"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.quick)
        return
    torch.set_num_threads(2)
    cases = QUICK_CASES if args.quick else CASES
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, heads {HEADS}x{HEAD_DIM}, fp32, sdpa backend"
    )
    for name, case in cases.items():
        q, k, v, segments = make_inputs(case)
        n, s = segments.num_tokens, segments.lengths.numel()
        methods = ["grouped", "loop"]
        if dense_bytes(n) <= args.dense_limit_gib * 2**30:
            methods.append("dense")
        with torch.no_grad():
            reference = per_segment_loop(q, k, v, segments)
            for m in methods:
                torch.testing.assert_close(METHODS[m](q, k, v, segments), reference, rtol=1e-4, atol=1e-4)
            times = {m: [] for m in methods}
            stop, workers = start_background_load(args.background_load)
            try:
                for _ in range(args.repeats):
                    for m in methods:
                        start = time.perf_counter()
                        METHODS[m](q, k, v, segments)
                        times[m].append(time.perf_counter() - start)
            finally:
                stop.set()
                for w in workers:
                    w.join()
        medians = {m: statistics.median(t) for m, t in times.items()}
        memory = {m: measure_memory(name, m, args.quick) for m in methods}
        print(f"\n[{name}] N={n} tokens, {s} segments of {int(segments.lengths[0])} tokens")
        for m in methods:
            print(f"  {m:8s} median {medians[m] * 1e3:9.1f} ms   peak RSS +{memory[m]:8.1f} MiB")
        if "dense" not in methods:
            print(f"  dense    skipped: needs ~{dense_bytes(n) / 2**30:.1f} GiB for the N×N mask and scores")
        print(f"  speed-up grouped vs loop: {medians['loop'] / medians['grouped']:.2f}x")
        print(f"  memory grouped / loop:    {memory['grouped'] / max(memory['loop'], 1e-9):.2f}x")
        if "dense" in methods:
            print(f"  speed-up grouped vs dense: {medians['dense'] / medians['grouped']:.2f}x")


if __name__ == "__main__":
    main()

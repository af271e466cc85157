"""GPU figures: vision-tower attention back ends and one generate step, on CUDA (skips cleanly without it).

Randomly initialised weights at the released 8B shapes (bf16), so no checkpoint is needed:

* **vision tower** (OneVision-Encoder-L: 24 layers, 1024 hidden, 16 heads; ``--vision-layers`` to shorten),
  forward time per ``attn_implementation`` (``eager``, ``sdpa``, ``flex_attention``, and
  ``flash_attention_2`` when ``flash_attn`` is installed) on two inputs: 64 codec canvases of 16x16 patches
  in one ``[64,16,16]`` row (16 segments of 4 canvases) and 256 frames of 16x16 patches as ``[1,16,16]``
  rows (one segment each); ratios against ``sdpa``;
* **generate step** of the full model (Qwen3-8B decoder shapes with ``--text-layers`` layers, default 4, so
  per-layer cost can be scaled to 36): prefill of the visual tokens of the canvases input plus a short prompt,
  then the mean time per decoded token with the KV cache.

Medians of ``--repeats`` timed runs after a warm-up, ``torch.cuda.synchronize`` around each; peak memory from
``torch.cuda.max_memory_allocated``. Without CUDA it prints why and exits 0 (``make bench`` stays green on
CPU machines); ``--device cpu --tiny`` runs the same code on a tiny config (a smoke test of this script).

Usage::

    python perf/bench_gpu.py [--repeats 10] [--vision-layers 24] [--text-layers 4] [--new-tokens 32]
    python perf/bench_gpu.py --device cpu --tiny     # smoke run, numbers meaningless
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

INPUTS = {
    "canvases": [[64, 16, 16]],  # codec: one video row of 64 canvases -> 16 segments of 4 canvases
    "frames": [[1, 16, 16]] * 256,  # frames: 256 one-frame rows -> 256 segments of 256 patches
}
TINY_INPUTS = {"canvases": [[8, 4, 4]], "frames": [[1, 4, 4]] * 8}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def backends(device: torch.device) -> list[str]:
    names = ["eager", "sdpa", "flex_attention"]
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        names.append("flash_attention_2")
    return names


def _config(tiny: bool, vision_layers: int, text_layers: int):
    from transformers_llava_ov2.configuration_llava_onevision2 import LlavaOnevision2Config, tiny_config

    if tiny:
        return tiny_config()
    config = LlavaOnevision2Config.from_variant("8b")
    config.vision_config.num_hidden_layers = vision_layers
    config.text_config.num_hidden_layers = text_layers
    return config


def vision_inputs(grid: list[list[int]], patch_dim: int, merge: int, device, dtype):
    from transformers_llava_ov2.image_processing_llava_onevision2 import build_patch_positions

    grid_t = torch.tensor(grid, dtype=torch.long)
    n = int(grid_t.prod(-1).sum())
    pixels = torch.randn(n, patch_dim, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    positions = torch.as_tensor(build_patch_positions(grid_t.numpy(), merge), device=device)
    return pixels, grid_t.to(device), positions


def bench_vision(args, device, dtype) -> list[tuple]:
    from transformers_llava_ov2.modeling_llava_onevision2 import LlavaOnevision2VisionModel

    cfg = _config(args.tiny, args.vision_layers, args.text_layers).vision_config
    patch_dim = getattr(cfg, "num_channels", 3) * cfg.patch_size**2
    rows = []
    for name, grid in (TINY_INPUTS if args.tiny else INPUTS).items():
        pixels, grid_t, positions = vision_inputs(grid, patch_dim, cfg.spatial_merge_size, device, dtype)
        print(f"vision {name}: {pixels.shape[0]} patches, {len(grid)} rows", flush=True)
        found: dict[str, tuple[float, float]] = {}
        for impl in backends(device):
            try:
                model = LlavaOnevision2VisionModel._from_config(cfg, attn_implementation=impl, dtype=dtype)
                model = model.to(device).eval()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                with torch.inference_mode():
                    t = timed(lambda m=model, x=(pixels, grid_t, positions): m(*x), device, args.repeats)
            except (ImportError, ValueError, RuntimeError, NotImplementedError) as exc:  # backend unavailable
                rows.append((name, impl, None, None, f"unavailable: {exc}"[:80]))
                continue
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
            found[impl] = (t, peak)
            del model
        base = found.get("sdpa", (None,))[0]
        for impl, (t, peak) in found.items():
            rows.append((name, impl, t, peak, f"sdpa / this = {base / t:.2f}x" if base else ""))
    return rows


def bench_generate(args, device, dtype) -> dict[str, float]:
    from transformers_llava_ov2.modeling_llava_onevision2 import LlavaOnevision2ForConditionalGeneration

    config = _config(args.tiny, args.vision_layers, args.text_layers)
    model = LlavaOnevision2ForConditionalGeneration._from_config(
        config, attn_implementation="sdpa", dtype=dtype
    )
    model = model.to(device).eval()
    vc = config.vision_config
    grid = (TINY_INPUTS if args.tiny else INPUTS)["canvases"]
    pixels, grid_t, positions = vision_inputs(
        grid, 3 * vc.patch_size**2, vc.spatial_merge_size, device, dtype
    )
    n_visual = pixels.shape[0] // vc.spatial_merge_size**2
    prompt = torch.full((1, n_visual + 32), 100, dtype=torch.long, device=device)
    prompt[0, 16 : 16 + n_visual] = config.image_token_id
    inputs = {"input_ids": prompt, "attention_mask": torch.ones_like(prompt), "pixel_values": pixels,
              "image_grid_thw": grid_t, "patch_positions": positions}  # fmt: skip

    def run(new_tokens: int):
        return model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)

    with torch.inference_mode():
        prefill = timed(lambda: run(1), device, args.repeats)
        full = timed(lambda: run(args.new_tokens + 1), device, max(1, args.repeats // 2))
    return {
        "decoder_layers": float(config.text_config.num_hidden_layers),
        "prompt_tokens": float(prompt.shape[1]),
        "visual_tokens": float(n_visual),
        "prefill_s": prefill,
        "per_token_ms": 1000 * (full - prefill) / args.new_tokens,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny: smoke run)")
    parser.add_argument("--tiny", action="store_true", help="tiny config (checks the script, not the GPU)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--vision-layers", type=int, default=24)
    parser.add_argument("--text-layers", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "bench_gpu: no CUDA device here; skipped (run it on a GPU machine to fill in docs/perf figures)"
        )
        return 0
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name} | torch {torch.__version__} | dtype {dtype} | repeats {args.repeats}", flush=True)
    rows = bench_vision(args, device, dtype)
    print(f"\n{'input':<10} {'attention':<18} {'median ms':>10} {'peak GiB':>9}  note")
    for inp, impl, t, peak, note in rows:
        ms = "-" if t is None else f"{1000 * t:.2f}"
        gib = "-" if peak is None or peak != peak else f"{peak:.2f}"
        print(f"{inp:<10} {impl:<18} {ms:>10} {gib:>9}  {note}")
    gen = bench_generate(args, device, dtype)
    print(
        f"\ngenerate ({gen['decoder_layers']:.0f} decoder layers, sdpa): prompt {gen['prompt_tokens']:.0f} tokens "
        f"({gen['visual_tokens']:.0f} visual), prefill incl. vision {1000 * gen['prefill_s']:.1f} ms, "
        f"decode {gen['per_token_ms']:.2f} ms/token"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

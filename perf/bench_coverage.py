"""Coverage benchmark: where do the visual tokens go? Codec tokenizer (each option) vs uniform frames.

Model-free, on generated jump-rope clips with exact ground truth (``video.synthetic_events``: known cycle
starts and subject boxes, camera jitter / drift, a distractor, a static stretch). For budgets of
``B`` frames' worth of tokens (one frame's worth = the tokens of one canvas at the codec's default
geometry for that clip, the same size a uniform frame gets), every method reports

* ``spent``: tokens spent / budget;
* ``ev@0.1/0.2/0.3``: share of cycle starts with a token from a frame within 0.1 / 0.2 / 0.3 s;
* ``subj``: share of P-tokens (patches) whose centre lies in the subject box of their source frame
  (uniform frames: share of all tokens, i.e. the box's share of the frame);
* ``still/act``: tokens per second inside the static stretch / tokens per second outside it.

Methods: ``uniform`` (``B`` evenly spaced frames) and the codec variants of ``VARIANTS`` (``official`` =
the official-like behaviour before issue 8: ceiling budget, fixed 1 + 3 canvases, no camera compensation,
legacy candidates, no per-second candidate floor, no activity weighting, planned anchors, no normalisation
floors, index tie-break; ``default`` =
the current defaults; ``-x`` = the defaults with option ``x`` back at its official value; variants with
the same resolved configuration are measured once). One table is printed (per clip and budget), a summary table (mean over clips) and one PNG
plot; the machine's load average is printed before and after (the benchmark measures coverage, not time).

Usage::

    python perf/bench_coverage.py --quick            # 3 clips (60 s 720p jitter, 60 s portrait drift,
                                                     # 30 s steady camera), budgets 4/8/32/128
    python perf/bench_coverage.py                    # + 90 s 720p and 180 s clips, budgets 4..128
    python perf/bench_coverage.py --out /tmp/cov     # JSON + PNG there
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from transformers_llava_ov2.codec.canvas import smart_resize  # noqa: E402
from transformers_llava_ov2.codec.config import CodecConfig  # noqa: E402
from transformers_llava_ov2.codec.pipeline import tokenize_video  # noqa: E402
from transformers_llava_ov2.video.synthetic_events import JumpClip, JumpClipSpec, write_jump_clip  # noqa: E402
from transformers_llava_ov2.video_types import ROLE_P  # noqa: E402

#: the options issue 8 added, at their official / pre-issue-8 values (each variant below turns some off)
OFFICIAL: dict[str, object] = {
    "budget_policy": "ceiling",
    "p_allocation": "fixed",
    "mv_compensate": "none",
    "candidate_rule": "legacy",
    "candidates_per_second": 0.0,
    "activity_frame_power": 0.0,
    "anchor_still_fraction": 0.0,
    "mv_norm_floor": 0.0,
    "res_norm_floor": 1.0,
    "tie_break": "index",
}

#: codec variants: name -> CodecConfig overrides (measured against each other and against uniform frames).
#: ``official`` = the behaviour before issue 8; ``default`` = the current defaults; every ``-x`` variant is
#: the defaults with one option back at its official value (an ablation), ``affine`` / ``+12cand`` /
#: ``mv_floor2`` / ``mv_floor2.5`` / ``mv_floor3`` / ``mv_floor4`` / ``res_floor8`` the alternatives that
#: are not defaults.
VARIANTS: dict[str, dict] = {
    "official": OFFICIAL,
    "default": {},
    "-target": {"budget_policy": "ceiling"},
    "-content": {"p_allocation": "fixed"},
    "-median": {"mv_compensate": "none"},
    "affine": {"mv_compensate": "affine"},
    "-centered": {"candidate_rule": "official"},
    "-per_second": {"candidates_per_second": 0.0},
    "-frame_power": {"activity_frame_power": 0.0},
    "-still_anchor": {"anchor_still_fraction": 0.0},
    "+12cand": {"candidates_per_canvas": 12},
    "4cand": {"candidates_per_canvas": 4},  # the speed trade of docs/codec.md § Performance
    "-mv_floor": {"mv_norm_floor": 0.0},
    "-res_floor": {"res_norm_floor": 1.0},
    "-tie_break": {"tie_break": "index"},
    "mv_floor2": {"mv_norm_floor": 2.0},  # the default before the steady-camera fix
    "mv_floor2.5": {"mv_norm_floor": 2.5},
    "mv_floor3": {"mv_norm_floor": 3.0},
    "mv_floor4": {"mv_norm_floor": 4.0},
    "res_floor8": {"res_norm_floor": 8.0},
}


def clip_specs(quick: bool) -> dict[str, JumpClipSpec]:
    """The benchmark clips (name -> spec); every clip has a static stretch and a distractor."""
    specs = {
        "720p-jitter-60s": JumpClipSpec(
            seconds=60,
            size=(1280, 720),
            camera_jitter=1,
            distractor=True,
            static=((20.0, 35.0),),
            period_jitter=0.1,
            seed=3,
        ),
        "portrait-drift-60s": JumpClipSpec(
            seconds=60,
            size=(360, 640),
            camera_drift=(4.0, 2.0),
            distractor=True,
            static=((30.0, 42.0),),
            period=0.5,
            period_jitter=0.1,
            seed=5,
        ),
        "steady-30s": JumpClipSpec(
            seconds=30,
            size=(640, 360),
            distractor=True,
            static=((10.0, 16.0),),
            period=0.7,
            seed=7,
        ),
    }
    if not quick:
        specs["720p-jitter-drift-90s"] = JumpClipSpec(
            seconds=90,
            size=(1280, 720),
            camera_jitter=1,
            camera_drift=(4.0, 0.0),
            distractor=True,
            static=((40.0, 58.0),),
            period_jitter=0.15,
            seed=11,
        )
        specs["jitter-180s"] = JumpClipSpec(
            seconds=180,
            size=(640, 360),
            camera_jitter=2,
            distractor=True,
            static=((60.0, 100.0),),
            period=0.8,
            period_jitter=0.1,
            seed=13,
        )
    return specs


def cached_clip(name: str, spec: JumpClipSpec, cache: Path) -> JumpClip:
    """Render the clip once (cached by its spec) and keep its ground truth next to it."""
    key = hashlib.sha1(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:10]
    path = cache / f"{name}-{key}.mp4"
    truth = cache / f"{name}-{key}.npz"
    if path.exists() and truth.exists():
        z = np.load(truth)
        return JumpClip(
            path=path,
            spec=spec,
            num_frames=int(z["n"]),
            cycle_start_frames=tuple(z["starts"].tolist()),
            subject_boxes=z["boxes"],
            heights=z["heights"],
            camera_offsets=z["offsets"],
        )
    clip = write_jump_clip(path, spec)
    tmp = truth.with_suffix(".partial.npz")
    np.savez(
        tmp,
        n=clip.num_frames,
        starts=np.asarray(clip.cycle_start_frames),
        boxes=clip.subject_boxes,
        heights=clip.heights,
        offsets=clip.camera_offsets,
    )
    os.replace(tmp, truth)
    return clip


def frame_tokens(spec: JumpClipSpec, cfg: CodecConfig) -> int:
    """LLM tokens of one frame at the codec's default geometry (one 'frame's worth')."""
    w, h = spec.size
    hh, ww = smart_resize(h, w, cfg.factor, cfg.min_pixels, cfg.max_pixels)
    return (hh // cfg.patch_size) * (ww // cfg.patch_size) // cfg.merge_size**2


def _static_mask(times: np.ndarray, spec: JumpClipSpec) -> np.ndarray:
    m = np.zeros(len(times), dtype=bool)
    for t0, t1 in spec.static:
        m |= (times >= t0) & (times < t1)
    return m


def _rates(times: np.ndarray, weights: np.ndarray, spec: JumpClipSpec) -> float:
    """still tokens/s divided by active tokens/s."""
    still_s = sum(t1 - t0 for t0, t1 in spec.static)
    active_s = spec.seconds - still_s
    m = _static_mask(times, spec)
    still = weights[m].sum() / max(still_s, 1e-9)
    active = weights[~m].sum() / max(active_s, 1e-9)
    return float(still / active) if active > 0 else float("nan")


def _coverage(frame_times: np.ndarray, events: np.ndarray) -> list[float]:
    u = np.unique(frame_times)
    idx = np.clip(np.searchsorted(u, events), 1, len(u) - 1) if len(u) > 1 else np.zeros(len(events), int)
    near = np.minimum(np.abs(u[idx] - events), np.abs(u[np.maximum(idx - 1, 0)] - events))
    return [float((near <= d + 1e-9).mean()) for d in (0.1, 0.2, 0.3)]


def measure_uniform(clip: JumpClip, n_frames: int, tau: int) -> dict:
    n = clip.num_frames
    idx = np.unique(np.round(np.linspace(0, n - 1, n_frames)).astype(np.int64))
    times = idx / clip.fps
    events = np.asarray(clip.cycle_start_frames) / clip.fps
    w, h = clip.spec.size
    b = clip.subject_boxes[idx]
    area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).astype(np.float64) / (w * h)
    return {
        "tokens": int(len(idx) * tau),
        "ev": _coverage(times, events),
        "subj": float(area.mean()),
        "still_act": _rates(times, np.full(len(idx), float(tau)), clip.spec),
    }


def measure_codec(clip: JumpClip, budget: int, overrides: dict) -> dict:
    t0 = time.perf_counter()
    tok = tokenize_video(clip.path, max_visual_tokens=budget, **overrides)
    seconds = time.perf_counter() - t0
    pos = tok.source_positions
    frames = pos[:, 0]
    times = frames / clip.fps
    events = np.asarray(clip.cycle_start_frames) / clip.fps
    w, h = clip.spec.size
    hc, wc = tok.source_frame_size
    p = tok.patch_size
    is_p = tok.token_role == ROLE_P
    ys = (pos[is_p, 1] + 0.5) * p * (h / hc)
    xs = (pos[is_p, 2] + 0.5) * p * (w / wc)
    box = clip.subject_boxes[frames[is_p]]
    inside = (xs >= box[:, 0]) & (xs < box[:, 2]) & (ys >= box[:, 1]) & (ys < box[:, 3])
    m2 = tok.merge_size**2
    return {
        "tokens": int(tok.num_tokens),
        "ev": _coverage(times, events),
        "subj": float(inside.mean()) if inside.size else float("nan"),
        "still_act": _rates(times, np.full(len(times), 1.0 / m2), clip.spec),
        "canvases": int(tok.num_canvases),
        "groups": len(tok.groups),
        "seconds": seconds,
        "reason": (tok.backend_info.get("budget") or {}).get("reason"),
    }


def _fmt(r: dict, budget: int) -> list[str]:
    ev = r["ev"]
    return [
        f"{r['tokens']}",
        f"{r['tokens'] / budget:.2f}",
        f"{ev[0]:.2f}",
        f"{ev[1]:.2f}",
        f"{ev[2]:.2f}",
        f"{r['subj']:.2f}",
        f"{r['still_act']:.2f}",
    ]


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(f"{h:>{w}}" for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(f"{c:>{w}}" for c, w in zip(row, widths)))


def plot(results: list[dict], methods: list[str], budgets: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        ("spent", "tokens spent / budget"),
        ("ev0.2", "events with a token within 0.2 s"),
        ("ev0.1", "events within 0.1 s"),
        ("subj", "P-tokens on the subject"),
        ("still_act", "still / active token rate"),
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6))
    # uniform / official / default bold and solid, the ablations thin and dashed, one colour each
    main = {"uniform": "black", "official": "tab:red", "default": "tab:blue"}
    others = [m for m in methods if m not in main]
    palette = plt.get_cmap("tab10" if len(others) <= 10 else "tab20")
    for ax, (key, title) in zip(axes, metrics):
        for m in methods:
            ys = []
            for b in budgets:
                rs = [r for r in results if r["method"] == m and r["budget_frames"] == b]
                ys.append(float(np.nanmean([_metric(r, key) for r in rs])) if rs else np.nan)
            if m in main:
                ax.plot(budgets, ys, marker="o", lw=2.2, color=main[m], label=m, zorder=3)
            else:
                color = palette(others.index(m) % palette.N)
                ax.plot(budgets, ys, marker=".", lw=1.0, ls="--", color=color, label=m)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget (frames' worth)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".partial.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def _metric(r: dict, key: str) -> float:
    if key == "spent":
        return r["tokens"] / r["budget"]
    if key.startswith("ev"):
        return r["ev"][{"ev0.1": 0, "ev0.2": 1, "ev0.3": 2}[key]]
    return r[key]


def method_names(values: list[str] | None) -> list[str]:
    """``--methods`` values (space- and/or comma-separated) as a list; all of ``VARIANTS`` when empty."""
    return [m for arg in values or [] for m in arg.split(",") if m] or list(VARIANTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 clips, budgets 4/8/32/128 (a few minutes)")
    ap.add_argument("--budgets", type=int, nargs="*", help="budgets in frames' worth")
    ap.add_argument(
        "--methods",
        nargs="*",
        help=f"codec variants, space- or comma-separated (ablations start with '-', so write them "
        f"--methods=default,-mv_floor); default: all of {list(VARIANTS)}",
    )
    ap.add_argument("--clips", nargs="*", help="only these clips (names as printed)")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "llava_ov2_bench_cov")
    ap.add_argument("--out", type=Path, default=None, help="folder for results.json and coverage.png")
    ap.add_argument("--replot", type=Path, metavar="RESULTS", help="only redraw the plot of a results.json")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads(args.replot.read_text())
        saved_methods = list(dict.fromkeys(r["method"] for r in saved))
        saved_budgets = sorted({r["budget_frames"] for r in saved})
        target = (args.out or args.replot.parent) / "coverage.png"
        plot(saved, saved_methods, saved_budgets, target)
        print(f"plot: {target}")
        return
    budgets = args.budgets or ([4, 8, 32, 128] if args.quick else [4, 8, 16, 32, 64, 128])
    methods = method_names(args.methods)
    unknown = sorted(set(methods) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {list(VARIANTS)}")
    out = args.out or args.cache_dir
    out.mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    resolved = {m: CodecConfig(**VARIANTS[m]) for m in methods}
    same_as = {m: next(o for o in methods if resolved[o] == resolved[m]) for m in methods}
    for m, o in same_as.items():
        if o != m:
            print(f"{m} = {o} (same configuration; measured once)")
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)",
        flush=True,
    )
    cfg = CodecConfig()
    results: list[dict] = []
    header = [
        "clip",
        "budget",
        "method",
        "tokens",
        "spent",
        "ev@0.1",
        "ev@0.2",
        "ev@0.3",
        "subj",
        "still/act",
    ]
    rows: list[list[str]] = []
    t_start = time.perf_counter()
    specs = clip_specs(args.quick)
    if args.clips:
        unknown_clips = sorted(set(args.clips) - set(specs))
        if unknown_clips:
            ap.error(f"unknown clip(s) {unknown_clips}; choose from {list(specs)}")
        specs = {k: v for k, v in specs.items() if k in args.clips}
    for name, spec in specs.items():
        clip = cached_clip(name, spec, args.cache_dir)
        tau = frame_tokens(spec, cfg)
        for bf in budgets:
            budget = bf * tau
            for method in ["uniform", *methods]:
                if method == "uniform":
                    r = measure_uniform(clip, bf, tau)
                elif same_as[method] != method:
                    prev = next(
                        x
                        for x in results
                        if x["clip"] == name and x["budget_frames"] == bf and x["method"] == same_as[method]
                    )
                    r = dict(prev)
                else:
                    r = measure_codec(clip, budget, VARIANTS[method])
                r.update(clip=name, method=method, budget_frames=bf, budget=budget)
                results.append(r)
                rows.append([name, str(bf), method, *_fmt(r, budget)])
                print(f"  {name} {bf:>3} {method:<24} " + " ".join(_fmt(r, budget)), flush=True)
    print()
    print_table(rows, header)
    print("\nMean over clips:")
    mean_rows = []
    for bf in budgets:
        for method in ["uniform", *methods]:
            rs = [r for r in results if r["method"] == method and r["budget_frames"] == bf]
            mean_rows.append(
                [str(bf), method]
                + [
                    f"{np.nanmean([_metric(r, k) for r in rs]):.2f}"
                    for k in ("spent", "ev0.1", "ev0.2", "subj", "still_act")
                ]
            )
    print_table(mean_rows, ["budget", "method", "spent", "ev@0.1", "ev@0.2", "subj", "still/act"])
    print(
        f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"wall {time.perf_counter() - t_start:.0f} s"
    )
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    plot(results, ["uniform", *methods], budgets, out / "coverage.png")
    print(f"results: {out / 'results.json'}, plot: {out / 'coverage.png'}")


if __name__ == "__main__":
    main()

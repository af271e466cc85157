"""Text and JSON reports of a video front end's result: the tables ``llava-ov2 tokenize`` prints.

:func:`codec_summary` and :func:`frames_summary` return ``(text, summary)``: the printed table and a
JSON-ready dict (the CLI writes it as ``summary.json``). Pure functions of the typed results; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..video_types import ROLE_I

__all__ = ["budget_line", "codec_summary", "frames_summary", "jsonable", "stage_line", "table"]


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table; ``align`` holds one ``<``/``>`` per column (default: right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ">" * len(headers)
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stage_line(stages: dict[str, float]) -> str:
    """``stage t | ... | total t``; a reported ``total`` wins (stages may overlap, e.g. the decode thread)."""
    parts = [f"{k} {v:.3f}s" for k, v in stages.items() if k != "total"]
    total = stages.get("total", sum(stages.values()))
    return " | ".join(parts) + f" | total {total:.3f}s"


def budget_line(budget: Any) -> str:
    """``requested R, spent S (P %), policy X[; why not]`` of a :class:`~..video_types.CodecBudget`
    (empty without one or without a requested budget)."""
    if budget is None or budget.requested_tokens is None:
        return ""
    text = (
        f"requested {budget.requested_tokens}, planned {budget.planned_tokens}, spent {budget.spent_tokens} "
        f"({100 * budget.spent_fraction:.0f}%), policy {budget.policy}"
    )
    return text + (f"; not spent: {budget.reason}" if budget.reason else "")


def codec_summary(tokens: Any, budget: int | None) -> tuple[str, dict[str, Any]]:
    m2 = tokens.merge_size**2
    rows, groups = [], []
    for g in tokens.groups:
        n_tok = int((tokens.token_group == g.index).sum()) // m2
        anchor_s = g.anchor_frame / tokens.fps if tokens.fps else float("nan")
        rows.append(
            [
                g.index,
                f"{g.start:.2f}",
                f"{g.end:.2f}",
                f"{g.end - g.start:.2f}",
                f"{g.anchor_frame} @ {anchor_s:.2f}s",
                f"{g.bit_cost:.4g}",
                g.num_canvases,
                n_tok,
            ]
        )
        groups.append(
            {
                "index": g.index,
                "start": g.start,
                "end": g.end,
                "anchor_frame": g.anchor_frame,
                "anchor_time": anchor_s,
                "bit_cost": g.bit_cost,
                "num_canvases": g.num_canvases,
                "num_tokens": n_tok,
            }
        )
    covered = float(sum(g.end - g.start for g in tokens.groups))
    n_i = int((tokens.canvas_roles == ROLE_I).sum())
    hc, wc = tokens.canvases.shape[1:3]
    gh, gw = tokens.grid_hw
    src_frames = len(np.unique(tokens.source_positions[:, 0]))
    duration = float(tokens.duration)
    lines = [
        f"Codec tokenization of {tokens.source}",
        f"  stream: {duration:.2f} s, {tokens.fps:.2f} fps, {tokens.total_frames} frames; "
        f"source frames resized to {tokens.source_frame_size[0]}x{tokens.source_frame_size[1]} px",
        "",
        table(
            [
                "group",
                "start s",
                "end s",
                "span s",
                "anchor (frame @ time)",
                "bit cost",
                "canvases",
                "tokens",
            ],
            rows,
            ">>>><>>>",
        ),
        "",
        f"  canvases : {tokens.num_canvases} ({n_i} I + {tokens.num_canvases - n_i} P), {hc}x{wc} px, "
        f"{gh}x{gw} patches of {tokens.patch_size} px, merge {tokens.merge_size}",
        f"  tokens   : {tokens.num_tokens} LLM tokens ({tokens.num_patches} patches)"
        + (f", budget {budget}" if budget is not None else ""),
        f"  coverage : {covered:.2f} of {duration:.2f} s in groups"
        + (f" ({100 * covered / duration:.0f}%)" if duration else "")
        + f"; {src_frames} of {tokens.total_frames} source frames contribute tokens",
        f"  stages   : {stage_line(dict(tokens.stage_seconds))}",
    ]
    spend = budget_line(getattr(tokens, "budget", None))
    if spend:
        lines.insert(-2, f"  budget   : {spend}")
    facts = [f"{k}={v}" for k, v in tokens.backend_info.items() if isinstance(v, (str, int, float, bool))]
    if facts:
        lines.append(f"  signals  : {', '.join(facts[:8])}" + (" ..." if len(facts) > 8 else ""))
    summary = {
        "backend": "codec",
        "source": str(tokens.source),
        "duration": duration,
        "fps": float(tokens.fps),
        "total_frames": int(tokens.total_frames),
        "source_frame_size": list(tokens.source_frame_size),
        "max_visual_tokens": budget,
        "num_canvases": tokens.num_canvases,
        "num_i_canvases": n_i,
        "canvas_size": [int(hc), int(wc)],
        "grid_hw": [int(gh), int(gw)],
        "patch_size": tokens.patch_size,
        "merge_size": tokens.merge_size,
        "num_patches": tokens.num_patches,
        "num_tokens": tokens.num_tokens,
        "seconds_covered": covered,
        "source_frames_used": src_frames,
        "groups": groups,
        "canvases": [
            {"index": i, "role": "I" if int(r) == ROLE_I else "P", "group": int(g)}
            for i, (r, g) in enumerate(zip(tokens.canvas_roles, tokens.canvas_groups))
        ],
        "stage_seconds": dict(tokens.stage_seconds),
        "backend_info": dict(tokens.backend_info),
    }
    if getattr(tokens, "budget", None) is not None:
        b = tokens.budget
        summary["budget"] = {
            "policy": b.policy,
            "requested_tokens": b.requested_tokens,
            "planned_tokens": b.planned_tokens,
            "spent_tokens": b.spent_tokens,
            "reason": b.reason,
        }
    if tokens.timeline is not None:
        tl = tokens.timeline
        summary["timeline"] = {
            "bin_seconds": tl.bin_seconds,
            "quota": tl.quota,
            "boundaries": tl.boundaries,
            "anchor_times": tl.anchor_times,
            "energy": tl.energy,
            "smoothed": tl.smoothed,
        }
    return "\n".join(lines), summary


def frames_summary(
    sampled: Any, info: Any, stages: dict[str, float], budget: int | None
) -> tuple[str, dict[str, Any]]:
    h, w = info.extra.get("frame_size", (0, 0))
    rows = [
        [k, idx, f"{ts:.2f}", n]
        for k, (idx, ts, n) in enumerate(zip(info.frame_indices, info.timestamps, info.block_tokens))
    ]
    duration = float(sampled.duration)
    step = duration / max(len(rows), 1)
    lines = [
        f"Uniform frames of {sampled.source}",
        f"  stream: {duration:.2f} s, {sampled.fps:.2f} fps, {sampled.total_frames} frames",
        "",
        table(["#", "frame", "time s", "tokens"], rows),
        "",
        f"  frames   : {len(rows)} sampled (every {step:.2f} s), resized to {h}x{w} px"
        + (
            f", {info.extra['padded_frames']} repeated to reach an even count"
            if info.extra.get("padded_frames")
            else ""
        ),
        f"  tokens   : {info.num_tokens} LLM tokens ({info.num_patches} patches)"
        + (f", budget {budget}" if budget is not None else ""),
        f"  coverage : one frame per {step:.2f} s over {duration:.2f} s",
        f"  stages   : {stage_line(stages)}",
    ]
    summary = {
        "backend": "frames",
        "source": str(sampled.source),
        "duration": duration,
        "fps": float(sampled.fps),
        "total_frames": int(sampled.total_frames),
        "max_visual_tokens": budget,
        "num_frames": len(rows),
        "frame_size": [int(h), int(w)],
        "num_patches": int(info.num_patches),
        "num_tokens": int(info.num_tokens),
        "seconds_covered": duration,
        "frames": [
            {"index": int(i), "time": float(t), "tokens": int(n)}
            for i, t, n in zip(info.frame_indices, info.timestamps, info.block_tokens)
        ],
        "grid_thw": info.grid_thw,
        "stage_seconds": stages,
    }
    return "\n".join(lines), summary

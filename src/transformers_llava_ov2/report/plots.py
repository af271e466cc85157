"""Pictures of what the video front ends keep: bit-cost timeline, canvases, kept-region heat maps, frames.

Every ``plot_*`` function takes a :class:`~transformers_llava_ov2.video_types.CodecTokens` or
:class:`~transformers_llava_ov2.video_types.SampledFrames` and returns a matplotlib ``Figure`` (created with
the object-oriented API, so no display and no global ``pyplot`` state is needed); :func:`save_figure`
writes it as a PNG and closes it. The CLI (``llava-ov2 tokenize``) and the notebooks share these functions.

Only numpy, pillow and matplotlib are used. The figures are built with ``matplotlib.figure.Figure`` and
the Agg canvas, so they work on headless machines whatever ``MPLBACKEND`` says.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..video_types import ROLE_I, ROLE_P, CodecTokens, SampledFrames

__all__ = [
    "kept_patch_counts",
    "plot_bitcost_timeline",
    "plot_canvases",
    "plot_contact_sheet",
    "plot_kept_heatmap",
    "plot_token_coverage",
    "save_figure",
    "token_counts_per_frame",
]

_ROLE_COLORS = {0: "#d62728", 1: "#1f77b4"}  # I: red, P: blue
_GROUP_SHADES = ("#f2f2f2", "#ffffff")


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", facecolor="white")
    return path


def _fmt_time(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def _source_grid(tokens: CodecTokens) -> tuple[int, int]:
    """Patch grid ``(h, w)`` of a source frame (covers every recorded source position)."""
    sh, sw = tokens.source_frame_size
    gh, gw = max(1, sh // tokens.patch_size), max(1, sw // tokens.patch_size)
    if len(tokens.source_positions):
        gh = max(gh, int(tokens.source_positions[:, 1].max()) + 1)
        gw = max(gw, int(tokens.source_positions[:, 2].max()) + 1)
    return gh, gw


def token_counts_per_frame(tokens: CodecTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept patches per source frame.

    Returns:
        ``(frame_ids, timestamps, patch_counts)``: sorted unique source frame ids, their timestamps in
        seconds and how many patches each contributed.
    """
    t = tokens.source_positions[:, 0]
    frames, first, counts = np.unique(t, return_index=True, return_counts=True)
    return frames, tokens.token_timestamps[first].astype(np.float64), counts


def plot_bitcost_timeline(tokens: CodecTokens, *, title: str | None = None) -> Figure:
    """The bit-cost timeline the GOP plan was cut from, with group boundaries, anchors and kept tokens.

    Top panel: per-bin energy as bars, the smoothed energy as a line, shaded alternating groups with
    vertical lines at the boundaries, and a marker at each anchor (I-canvas) time. Bottom panel: how many
    patches each source frame contributed (I-canvas frames in red, P frames in blue).
    """
    fig = _new_figure(11, 5.2)
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    duration = float(tokens.duration) or 1.0
    tl = tokens.timeline
    if tl is not None and len(tl.energy):
        nb = len(tl.energy)
        x = (np.arange(nb) + 0.5) * tl.bin_seconds
        bounds = np.asarray(tl.boundaries, dtype=np.float64)
        for k in range(len(bounds) - 1):
            ax.axvspan(bounds[k], bounds[k + 1], color=_GROUP_SHADES[k % 2], zorder=0)
        ax.bar(x, tl.energy, width=tl.bin_seconds * 0.9, color="#9ecae1", label="bin energy", zorder=1)
        ax.plot(x, tl.smoothed, color="#08519c", lw=1.8, label="smoothed", zorder=2)
        for b in bounds:
            ax.axvline(b, color="#444444", lw=1.0, ls="--", zorder=3)
        if len(tl.anchor_times):
            ya = np.interp(tl.anchor_times, x, tl.smoothed)
            ax.scatter(
                tl.anchor_times,
                ya,
                marker="v",
                s=70,
                color=_ROLE_COLORS[ROLE_I],
                zorder=4,
                label="anchor (I)",
            )
        top = float(max(np.max(tl.energy), np.max(tl.smoothed), 1e-9))
        for g in tokens.groups:
            ax.text(
                (g.start + g.end) / 2,
                top * 1.02,
                f"G{g.index}\n{g.num_canvases}c",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_ylim(0, top * 1.22)
        ax.set_ylabel("energy per bin")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        subtitle = f"bin {tl.bin_seconds:.2f}s, quota {tl.quota:.3g} per group"
    else:
        ax.text(0.5, 0.5, "no bit-cost timeline recorded", ha="center", va="center", transform=ax.transAxes)
        for g in tokens.groups:
            ax.axvline(g.start, color="#444444", lw=1.0, ls="--")
        subtitle = "no timeline"
    ax.set_title(title or f"Bit-cost timeline and GOP groups — {Path(tokens.source).name} ({subtitle})")

    frames, ts, counts = token_counts_per_frame(tokens)
    anchor_frames = {g.anchor_frame for g in tokens.groups}
    colors = [_ROLE_COLORS[ROLE_I] if f in anchor_frames else _ROLE_COLORS[1] for f in frames]
    if len(frames):
        ax2.vlines(ts, 0, counts, colors=colors, lw=1.5)
        ax2.scatter(ts, counts, c=colors, s=10, zorder=3)
    for g in tokens.groups:
        ax2.axvline(g.start, color="#444444", lw=1.0, ls="--")
    ax2.set_ylabel("kept patches")
    ax2.set_xlabel("time (s)")
    ax2.set_xlim(0, duration)
    ax2.set_ylim(bottom=0)
    return fig


def plot_canvases(tokens: CodecTokens, *, max_canvases: int = 48, cols: int | None = None) -> Figure:
    """The canvases in a grid, each labelled with its index, role (I/P), group and source time span."""
    n = min(tokens.num_canvases, max_canvases)
    cols = cols or min(max(n, 1), 4 if n <= 16 else 6)
    rows = max(1, math.ceil(n / cols))
    hc, wc = tokens.canvases.shape[1:3]
    cell_w = 3.2
    cell_h = cell_w * hc / max(wc, 1) + 0.45
    fig = _new_figure(cell_w * cols, cell_h * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        ax.imshow(tokens.canvases[i], interpolation="nearest")
        role = int(tokens.canvas_roles[i])
        sel = tokens.token_canvas == i
        ts = tokens.token_timestamps[sel]
        span = f"{_fmt_time(ts.min())}" if len(ts) and ts.min() == ts.max() else ""
        if len(ts) and not span:
            span = f"{_fmt_time(ts.min())}–{_fmt_time(ts.max())}"
        nsrc = len(np.unique(tokens.source_positions[sel, 0])) if sel.any() else 0
        label = "I" if role == ROLE_I else "P"
        ax.set_title(
            f"#{i} {label}  G{int(tokens.canvas_groups[i])}  {span}  ({nsrc} fr)",
            fontsize=9,
            color=_ROLE_COLORS.get(role, "black"),
        )
        for spine in ax.spines.values():
            spine.set_edgecolor(_ROLE_COLORS.get(role, "black"))
            spine.set_linewidth(2.5)
    more = f" (first {n} of {tokens.num_canvases})" if tokens.num_canvases > n else ""
    fig.suptitle(
        f"{tokens.num_canvases} canvases{more}, {hc}x{wc} px, {tokens.num_tokens} tokens — "
        "I = full anchor frame, P = salient 2x2 blocks from several frames",
        fontsize=10,
    )
    return fig


def kept_patch_counts(tokens: CodecTokens, *, by_group: bool = False, role: int | None = None) -> np.ndarray:
    """How often each source patch location was kept.

    Args:
        tokens: the codec tokenization.
        by_group: one map per GOP group.
        role: count only tokens of this role (``ROLE_I`` or ``ROLE_P``); ``None`` counts all.

    Returns:
        ``int64 [gh, gw]`` over the source patch grid, or ``[G, gh, gw]`` per GOP group with ``by_group``.
    """
    gh, gw = _source_grid(tokens)
    keep = slice(None) if role is None else tokens.token_role == role
    pos = tokens.source_positions[keep]
    if by_group:
        ng = max([g.index for g in tokens.groups] + [int(tokens.token_group.max(initial=-1))]) + 1
        out = np.zeros((max(ng, 1), gh, gw), dtype=np.int64)
        np.add.at(out, (tokens.token_group[keep], pos[:, 1], pos[:, 2]), 1)
        return out
    out = np.zeros((gh, gw), dtype=np.int64)
    np.add.at(out, (pos[:, 1], pos[:, 2]), 1)
    return out


def _background(tokens: CodecTokens) -> np.ndarray | None:
    """A grey version of the first I-canvas when it is a full source frame (for heat-map overlays)."""
    idx = np.flatnonzero(tokens.canvas_roles == ROLE_I)
    if not len(idx):
        return None
    canvas = tokens.canvases[idx[0]]
    if tuple(canvas.shape[:2]) != tuple(tokens.source_frame_size):
        return None
    return canvas.astype(np.float32).mean(axis=-1) / 255.0


def plot_kept_heatmap(tokens: CodecTokens, *, max_groups: int = 12) -> Figure:
    """Which source regions were kept: overall heat map, one small map per group, and time x columns.

    Left: kept-patch count over the source patch grid (overlaid on the first anchor frame when available).
    Middle: the same per GOP group (P tokens only, so the always-full anchor does not flatten the map).
    Bottom: a space-time slice, kept patches per (source time, patch column), summed over rows.
    """
    gh, gw = _source_grid(tokens)
    total = kept_patch_counts(tokens)
    has_p = bool((tokens.token_role == ROLE_P).any())
    per_group = kept_patch_counts(tokens, by_group=True, role=ROLE_P if has_p else None)
    ng = min(per_group.shape[0], max_groups)
    gcols = min(max(ng, 1), 4)
    grows = max(1, math.ceil(ng / gcols))
    fig = _new_figure(13, 4.0 + 2.0 * grows)
    sub = fig.subfigures(2, 1, height_ratios=(2.0 * grows + 1.2, 2.6))
    top = sub[0].subfigures(1, 2, width_ratios=(1.1, 1.4))
    ax = top[0].subplots()
    extent = (0, gw, gh, 0)
    bg = _background(tokens)
    if bg is not None:
        ax.imshow(bg, cmap="gray", extent=extent, vmin=0, vmax=1)
        im = ax.imshow(total, cmap="inferno", alpha=0.6, extent=extent, interpolation="nearest")
    else:
        im = ax.imshow(total, cmap="inferno", extent=extent, interpolation="nearest")
    top[0].colorbar(im, ax=ax, shrink=0.8, label="times kept")
    ax.set_title(f"kept patches over the source grid ({gh}x{gw}), all tokens", fontsize=10)
    ax.set_xlabel("patch column")
    ax.set_ylabel("patch row")

    gaxes = np.atleast_1d(top[1].subplots(grows, gcols, squeeze=False)).ravel()
    vmax = max(int(per_group[:ng].max(initial=0)), 1)
    gim = None
    for k, gax in enumerate(gaxes):
        gax.set_xticks([])
        gax.set_yticks([])
        if k >= ng:
            gax.set_axis_off()
            continue
        gim = gax.imshow(per_group[k], cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        span = next((g for g in tokens.groups if g.index == k), None)
        label = f"G{k}" + (f" {_fmt_time(span.start)}–{_fmt_time(span.end)}" if span else "")
        gax.set_title(label, fontsize=8)
    if gim is not None:
        top[1].colorbar(gim, ax=list(gaxes), shrink=0.8, label="P patches kept")
    top[1].suptitle("per group (" + ("P-canvas tokens" if has_p else "all tokens") + ")", fontsize=10)

    ax3 = sub[1].subplots()
    duration = float(tokens.duration) or 1.0
    total_frames = max(int(tokens.total_frames), int(tokens.source_positions[:, 0].max(initial=0)) + 1, 1)
    nbins = min(total_frames, 600)
    sel = tokens.token_role == ROLE_P if has_p else slice(None)
    pos = tokens.source_positions[sel]
    slice_ = np.zeros((gw, nbins), dtype=np.int64)
    cols = np.minimum(pos[:, 0] * nbins // total_frames, nbins - 1)
    np.add.at(slice_, (pos[:, 2], cols), 1)
    img = ax3.imshow(
        slice_,
        cmap="magma",
        aspect="auto",
        interpolation="nearest",
        extent=(0, total_frames / tokens.fps if tokens.fps else duration, gw, 0),
    )
    sub[1].colorbar(img, ax=ax3, label="patches kept")
    for g in tokens.groups:
        ax3.axvline(g.start, color="#00bcd4", lw=1.0, ls="--")
        if tokens.fps:
            ax3.plot(
                [g.anchor_frame / tokens.fps],
                [0],
                marker="v",
                color=_ROLE_COLORS[ROLE_I],
                ms=8,
                clip_on=False,
            )
    ax3.set_xlim(0, duration)
    ax3.set_xlabel("source time (s)")
    ax3.set_ylabel("patch column")
    what = "P patches" if has_p else "patches"
    ax3.set_title(
        f"space-time slice: {what} kept per source frame and patch column, summed over rows "
        "(dashed: group starts, \u25bc anchors)",
        fontsize=10,
    )
    return fig


def plot_contact_sheet(
    frames: SampledFrames, *, max_frames: int = 64, cols: int | None = None, title: str | None = None
) -> Figure:
    """Sampled frames in a grid, each labelled with its source frame index and timestamp."""
    n = min(frames.num_frames, max_frames)
    pick = np.linspace(0, frames.num_frames - 1, n).round().astype(int) if n else np.zeros(0, int)
    cols = cols or min(max(n, 1), 4 if n <= 16 else 8)
    rows = max(1, math.ceil(n / cols))
    h, w = frames.frames.shape[1:3]
    cell_w = 2.6 if cols > 4 else 3.2
    fig = _new_figure(cell_w * cols, (cell_w * h / max(w, 1) + 0.35) * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= n:
            continue
        i = pick[k]
        ax.imshow(frames.frames[i])
        ax.set_title(f"#{int(frames.frame_indices[i])}  {frames.timestamps[i]:.2f}s", fontsize=8)
    shown = f" (showing {n})" if n < frames.num_frames else ""
    fig.suptitle(
        title
        or f"{frames.num_frames} uniformly sampled frames{shown} of {Path(frames.source).name} "
        f"({frames.duration:.1f}s, {frames.fps:.2f} fps)",
        fontsize=10,
    )
    return fig


def plot_token_coverage(
    tokens: CodecTokens,
    frames: SampledFrames,
    frame_tokens: int | np.ndarray,
    *,
    title: str | None = None,
) -> Figure:
    """Where in time each back end spends its tokens: codec (per source frame) vs uniform frames.

    Args:
        tokens: the codec tokenization.
        frames: the uniformly sampled frames of the same video.
        frame_tokens: LLM tokens per sampled frame (one number for all, or one per frame).
    """
    fig = _new_figure(11, 3.8)
    ax = fig.subplots()
    m2 = tokens.merge_size**2
    ids, ts, counts = token_counts_per_frame(tokens)
    anchor_frames = {g.anchor_frame for g in tokens.groups}
    colors = [_ROLE_COLORS[ROLE_I] if f in anchor_frames else _ROLE_COLORS[ROLE_P] for f in ids]
    ax.vlines(ts, 0, counts / m2, colors=colors, lw=2, label=f"codec: {tokens.num_tokens} tokens")
    per = np.broadcast_to(np.asarray(frame_tokens, dtype=np.float64), (frames.num_frames,))
    ax.vlines(
        frames.timestamps,
        0,
        -per,
        colors="#2ca02c",
        lw=2,
        label=f"uniform frames: {int(per.sum())} tokens",
    )
    for g in tokens.groups:
        ax.axvline(g.start, color="#444444", lw=0.8, ls="--")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlim(0, float(tokens.duration) or 1.0)
    ax.set_xlabel("source time (s)")
    ax.set_ylabel("LLM tokens (codec up, frames down)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        title
        or "Token spend over time at the same budget: codec (red = anchor, blue = P) vs uniform frames (green)",
        fontsize=10,
    )
    return fig

"""Codec-stream tokenization of a video: probe -> GOP plan -> signals -> saliency -> selection -> canvases.

:func:`tokenize_video` is the entry point; every stage is a function of its own module and can be used
alone (:func:`~.probe.probe_video`, :func:`~.gop.plan_gops`, ...). See ``docs/codec.md``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from ..errors import VideoDecodeError
from ..video.container import AV_ERRORS
from ..video_types import ROLE_I, ROLE_P, BitCostTimeline, CodecTokens, GopGroup
from .candidates import candidate_count, sample_candidates
from .canvas import CanvasLayout, choose_layout, i_canvas_positions, pack_p_canvas
from .config import CodecConfig, with_overrides
from .gop import GopPlan, GroupSpec, plan_gops, plan_groups
from .probe import StreamProbe, probe_video
from .saliency import FrameQuality, block_scores, frame_quality, letterbox_mask, saliency_map
from .selection import select_blocks
from .signals import DecodeReport, FrameSignals, iter_frame_signals

__all__ = ["tokenize_video"]


@dataclass
class _Candidate:
    index: int
    time: float
    bits: int
    blocks: np.ndarray  # float64 [NB] block scores (display orientation)
    quality: FrameQuality
    rgb: np.ndarray  # uint8 [H, W, 3] canvas-size RGB (display orientation)


@dataclass
class _GroupOutput:
    spec: GroupSpec
    anchor: int
    canvases: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``0`` leaves it alone)."""
    old = torch.get_num_threads()
    change = n > 0 and n != old
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def _rot_k(rotation: int) -> int:
    return (int(rotation) // 90) % 4


def tokenize_video(
    video: str | os.PathLike, config: CodecConfig | None = None, **overrides: Any
) -> CodecTokens:
    """Codec-stream tokenization of one video file.

    Args:
        video: path (or ``file://`` URL) of a local video file.
        config: a :class:`CodecConfig`; keyword ``overrides`` replace its fields
            (``tokenize_video(p, max_visual_tokens=4096)``).

    Returns:
        :class:`~transformers_llava_ov2.video_types.CodecTokens`: per group one I-canvas (the anchor
        frame) and up to ``m_g`` P-canvases of salient 2x2 blocks, with per-patch source positions.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, has no video stream, or no frame of it
            could be decoded.
        ValueError: invalid configuration values (the message names the field).
    """
    cfg = with_overrides(config, **overrides)
    t_start = time.perf_counter()
    stages: dict[str, float] = {}
    source = os.fspath(video) if isinstance(video, os.PathLike) else str(video)

    probe = probe_video(video)
    stages["probe"] = probe.probe_seconds

    t0 = time.perf_counter()
    plan = plan_gops(probe, cfg)
    planned = plan_groups(plan, probe, cfg)
    k = _rot_k(probe.rotation)
    display_hw = (probe.height, probe.width) if k % 2 == 0 else (probe.width, probe.height)
    layout = choose_layout(display_hw, len(planned), cfg)
    groups = (
        planned
        if layout.num_groups >= len(planned)
        else plan_groups(plan, probe, cfg, max_groups=layout.num_groups)
    )
    n_canvases = len(groups) * (1 + layout.p_per_group)
    candidates = sample_candidates(
        probe, plan, groups, candidate_count(n_canvases, probe.total_frames, cfg), cfg
    )
    stages["gop"] = time.perf_counter() - t0

    backend: dict[str, Any] = {
        "codec": probe.codec_name,
        "frames_in_stream": probe.total_frames,
        "rotation": probe.rotation,
        "anchor_mode": cfg.anchor_mode,
        "energy": cfg.energy,
        "static_timeline": plan.static,
        "energy_segments": [[s.start, s.end] for s in plan.segments],
        "scene_cuts": list(plan.scene_cuts),
        "k_target": plan.k_target,
        "layout": layout.reason,
        "candidates": len(candidates),
    }
    if probe.notes:
        backend["probe_notes"] = list(probe.notes)

    # ------------------------------------------------------------------ motion source
    use_mvs = probe.has_motion_vectors if cfg.motion == "auto" else cfg.motion == "mv"
    decode_path: str = source
    decode_probe = probe
    tmpdir: tempfile.TemporaryDirectory | None = None
    motion = "mv" if use_mvs else "residual-only"
    if not probe.has_motion_vectors and cfg.motion != "residual-only" and cfg.reencode_without_mvs:
        t0 = time.perf_counter()
        tmpdir = tempfile.TemporaryDirectory(prefix="llava_ov2_codec_")
        coded_hw = layout.canvas_hw if k % 2 == 0 else layout.canvas_hw[::-1]
        try:
            out = Path(tmpdir.name) / "reencoded.mp4"
            _reencode_h264(source, out, coded_hw, cfg)
            re_probe = probe_video(out)
            unique_pts = len(np.unique(re_probe.pts)) == re_probe.total_frames
            if re_probe.total_frames == probe.total_frames and unique_pts:
                decode_path, decode_probe, use_mvs = str(out), re_probe, True
                motion = "mv (re-encoded to h264)"
            else:
                backend["reencode_error"] = (
                    f"re-encode produced {re_probe.total_frames} frames, expected {probe.total_frames}"
                )
        except (*AV_ERRORS, VideoDecodeError) as exc:
            backend["reencode_error"] = str(exc)
        stages["reencode"] = time.perf_counter() - t0
    elif use_mvs and not probe.has_motion_vectors:
        backend["motion_note"] = f"motion='mv' requested but {probe.codec_name} exports no motion vectors"

    try:
        with _torch_threads(cfg.torch_threads):
            result = _run(
                source,
                decode_path,
                probe,
                decode_probe,
                plan,
                groups,
                layout,
                candidates,
                cfg,
                use_mvs=use_mvs,
                rot_k=k,
                stages=stages,
                backend=backend,
                motion=motion,
            )
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
    result.stage_seconds["total"] = time.perf_counter() - t_start
    return result


def _run(
    source: str,
    decode_path: str,
    probe: StreamProbe,
    decode_probe: StreamProbe,
    plan: GopPlan,
    groups: list[GroupSpec],
    layout: CanvasLayout,
    candidates: np.ndarray,
    cfg: CodecConfig,
    *,
    use_mvs: bool,
    rot_k: int,
    stages: dict[str, float],
    backend: dict[str, Any],
    motion: str,
) -> CodecTokens:
    H, W = layout.canvas_hw
    ds = cfg.analysis_downsample
    coded_canvas = (H, W) if rot_k % 2 == 0 else (W, H)
    analysis_hw = (coded_canvas[0] // ds, coded_canvas[1] // ds)
    report = DecodeReport()
    rgb_fmt = VideoReformatter()
    t_sal = 0.0
    t_sel = 0.0
    t_canvas = 0.0
    t_loop = time.perf_counter()
    outputs: list[_GroupOutput] = []
    pending: list[_Candidate] = []
    group_idx = 0
    mask: np.ndarray | None = None
    letterbox_bbox: list[int] | None = None
    bad_frames = 0
    mv_seen = False

    def to_rgb(frame: Any) -> np.ndarray:
        # one swscale thread: the decode thread has the other core (the output does not depend on it)
        img = rgb_fmt.reformat(
            frame,
            width=coded_canvas[1],
            height=coded_canvas[0],
            format="rgb24",
            interpolation="AREA",
            threads=1,
        )
        arr = img.to_ndarray()
        return np.ascontiguousarray(np.rot90(arr, rot_k)) if rot_k else arr

    def finalize(g: GroupSpec, members: list[_Candidate]) -> None:
        nonlocal t_sel, t_canvas
        if not members:
            return
        t0 = time.perf_counter()
        members.sort(key=lambda c: c.index)
        anchor = next((c for c in members if c.index == g.anchor_frame and c.quality.good), None)
        if anchor is None:
            anchor = next((c for c in members if c.quality.good), None)
        if anchor is None:
            anchor = next((c for c in members if c.index == g.anchor_frame), members[0])
        pool = [c for c in members if c is not anchor and c.quality.good and c.index > anchor.index]
        B = layout.blocks_per_canvas
        chosen_frames = np.zeros(0, dtype=np.int64)
        chosen_blocks = np.zeros(0, dtype=np.int64)
        if pool and layout.p_per_group > 0:
            scores = np.stack([c.blocks for c in pool])
            if cfg.bitcost_prior_beta > 0:
                bits = np.asarray([c.bits for c in pool], dtype=np.float64)
                b_hat = bits / max(bits.max(), 1.0)
                scores = scores * (1.0 + cfg.bitcost_prior_beta * b_hat)[:, None]
            sel = select_blocks(
                scores,
                layout.p_per_group,
                B,
                penalty=cfg.rank_penalty,
                mode=cfg.rank_attenuation,
                alpha_peak=cfg.alpha_peak,
            )
            n_full = len(sel) // B
            if n_full:
                keep = np.sort(np.argsort(-sel.score, kind="stable")[: n_full * B])
                fpos, blk, sc = sel.frame_pos[keep], sel.block[keep], sel.score[keep]
                frame_ids = np.asarray([pool[i].index for i in fpos], dtype=np.int64)
                bh = blk // layout.blocks_hw[1]
                bw = blk % layout.blocks_hw[1]
                order = np.lexsort((-sc, bw, bh, frame_ids))
                chosen_frames, chosen_blocks = frame_ids[order], blk[order]
        t1 = time.perf_counter()
        t_sel += t1 - t0
        by_index = {c.index: c for c in members}
        needed = {anchor.index, *chosen_frames.tolist()}
        rgbs = {i: by_index[i].rgb for i in needed}
        out = _GroupOutput(spec=g, anchor=anchor.index)
        out.canvases.append(rgbs[anchor.index])
        out.positions.append(i_canvas_positions(anchor.index, layout.grid_hw))
        out.roles.append(ROLE_I)
        for p in range(len(chosen_blocks) // B):
            sl = slice(p * B, (p + 1) * B)
            canvas, pos = pack_p_canvas(rgbs, chosen_frames[sl], chosen_blocks[sl], layout)
            out.canvases.append(canvas)
            out.positions.append(pos)
            out.roles.append(ROLE_P)
        outputs.append(out)
        t_canvas += time.perf_counter() - t1

    has_motion = use_mvs
    sig: FrameSignals
    signals = iter_frame_signals(
        decode_path,
        decode_probe,
        candidates,
        analysis_hw,
        use_mvs=use_mvs,
        report=report,
        thread_type=cfg.thread_type,
        decode_thread=cfg.decode_thread,
        convert_rgb=to_rgb,  # canvas-size RGB on arrival: ~0.4 MB per pending candidate, not the frame
    )
    with closing(signals):  # stops the decode thread if anything below raises
        for sig in signals:
            t0 = time.perf_counter()
            while group_idx < len(groups) and sig.index >= groups[group_idx].frame_end:
                t_sal += time.perf_counter() - t0
                finalize(groups[group_idx], pending)
                pending = []
                t0 = time.perf_counter()
                group_idx += 1
            quality = frame_quality(sig.luma, sig.thumb_rgb, cfg)
            if not quality.good:
                bad_frames += 1
            if cfg.letterbox and mask is None and not quality.black:
                mask = letterbox_mask(sig.luma, cfg.letterbox_dark_threshold)
                ys, xs = np.nonzero(mask)
                if len(ys) and mask.min() == 0:
                    letterbox_bbox = [int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1]
            if sig.flow is not None:
                mv_seen = True
            smap = saliency_map(sig.flow, sig.residual, cfg, has_motion=has_motion)
            if mask is not None:
                smap = smap * mask
            if rot_k:
                smap = np.rot90(smap, rot_k)
            blocks = block_scores(np.ascontiguousarray(smap), cfg.patch_size // ds, cfg.merge_size).reshape(
                -1
            )
            bits = int(8 * probe.sizes[sig.index]) if sig.index < probe.total_frames else sig.bits
            assert sig.rgb is not None
            pending.append(_Candidate(sig.index, sig.time, bits, blocks, quality, sig.rgb))
            t_sal += time.perf_counter() - t0
    while group_idx < len(groups):
        members = [
            c for c in pending if groups[group_idx].frame_start <= c.index < groups[group_idx].frame_end
        ]
        finalize(groups[group_idx], members)
        group_idx += 1
    loop = time.perf_counter() - t_loop

    if not outputs:
        reason = "no frame could be decoded"
        if report.errors:
            reason += f" ({report.errors[0]})"
        raise VideoDecodeError(source, reason)

    # decode: the time this thread waited for decoded frames (decode not hidden behind the signal work);
    # decode_thread: the decode thread's own busy time (overlapped with everything else)
    stages["decode"] = max(0.0, loop - t_sal - t_sel - t_canvas - report.convert_seconds)
    if cfg.decode_thread:
        stages["decode_thread"] = report.decode_seconds
        stages["decode_thread_idle"] = report.ledger_wait_seconds
    stages["signals"] = report.convert_seconds
    stages["saliency"] = t_sal
    stages["selection"] = t_sel
    stages["canvas"] = t_canvas

    if use_mvs and not mv_seen:
        motion = "residual-only"
        backend["motion_note"] = "no motion vectors were exported; zero motion was used"
    backend.update(
        {
            "motion": motion,
            "frames_decoded": report.frames_decoded,
            "frames_skipped": report.frames_skipped,
            "candidates_decoded": report.candidates_emitted,
            "frames_with_mvs": report.frames_with_mvs,
            "bad_frames": bad_frames,
            "analysis_hw": list(analysis_hw),
            "canvas_hw": [H, W],
            "groups_planned": len(groups),
        }
    )
    if letterbox_bbox is not None:
        backend["letterbox_bbox"] = letterbox_bbox
    if report.errors:
        backend["decode_errors"] = len(report.errors)
        backend["decode_error_samples"] = report.errors[:5]
    done = report.frames_decoded + report.frames_skipped
    if done < decode_probe.total_frames and not report.stopped_early:
        backend["truncated"] = (
            f"only {report.frames_decoded} of {decode_probe.total_frames} frames could be decoded "
            f"({report.frames_skipped} unneeded non-reference frames skipped)"
        )
    return _assemble(source, probe, plan, layout, outputs, cfg, stages, backend)


def _assemble(
    source: str,
    probe: StreamProbe,
    plan: GopPlan,
    layout: CanvasLayout,
    outputs: list[_GroupOutput],
    cfg: CodecConfig,
    stages: dict[str, float],
    backend: dict[str, Any],
) -> CodecTokens:
    canvases: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    canvas_roles: list[int] = []
    canvas_groups: list[int] = []
    gop_groups: list[GopGroup] = []
    S = layout.grid_hw[0] * layout.grid_hw[1]
    for gi, out in enumerate(outputs):
        canvases.extend(out.canvases)
        positions.extend(out.positions)
        canvas_roles.extend(out.roles)
        canvas_groups.extend([gi] * len(out.canvases))
        gop_groups.append(
            GopGroup(
                index=gi,
                start=float(out.spec.start),
                end=float(out.spec.end),
                anchor_frame=int(out.anchor),
                bit_cost=float(out.spec.bit_cost),
                num_canvases=len(out.canvases),
            )
        )
    pos = np.concatenate(positions).astype(np.int64)
    roles = np.asarray(canvas_roles, dtype=np.int8)
    cgroups = np.asarray(canvas_groups, dtype=np.int64)
    n_canvas = len(canvases)
    token_canvas = np.repeat(np.arange(n_canvas, dtype=np.int64), S)
    times = probe.times[np.clip(pos[:, 0], 0, probe.total_frames - 1)].astype(np.float64)
    timeline = BitCostTimeline(
        bin_seconds=plan.bin_seconds,
        energy=plan.energy,
        smoothed=plan.smoothed,
        quota=plan.quota,
        boundaries=np.asarray([g.start for g in gop_groups] + [gop_groups[-1].end], dtype=np.float64),
        anchor_times=np.asarray([probe.times[g.anchor_frame] for g in gop_groups], dtype=np.float64),
    )
    stages_out = {k: float(v) for k, v in stages.items()}
    return CodecTokens(
        canvases=np.stack(canvases).astype(np.uint8, copy=False),
        patch_size=cfg.patch_size,
        merge_size=cfg.merge_size,
        source_positions=pos,
        token_canvas=token_canvas,
        token_timestamps=times,
        token_group=cgroups[token_canvas],
        token_role=roles[token_canvas],
        canvas_roles=roles,
        canvas_groups=cgroups,
        groups=tuple(gop_groups),
        fps=float(probe.fps),
        duration=float(probe.duration),
        total_frames=int(probe.total_frames),
        source_frame_size=(int(layout.canvas_hw[0]), int(layout.canvas_hw[1])),
        source=source,
        timeline=timeline,
        stage_seconds=stages_out,
        backend_info=backend,
    )


def _reencode_h264(source: str, out: Path, coded_hw: tuple[int, int], cfg: CodecConfig) -> None:
    """Re-encode ``source`` to H.264 (P-frames only, one reference) at ``coded_hw``, keeping every frame.

    Frames keep their order; pts are renumbered ``0, 1, 2, ...`` in a ``1/fps``-like time base (the
    pipeline maps frames by count, and checks that the frame count matches).
    """
    h, w = coded_hw
    with av.open(source) as inp, av.open(str(out), mode="w") as dst:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
        enc.codec_context.time_base = Fraction(1) / Fraction(rate)
        enc.codec_context.options = {
            "preset": cfg.reencode_preset,
            "crf": str(cfg.reencode_crf),
            "x264-params": "bframes=0:ref=1:scenecut=0:keyint=100000",
        }
        fmt = VideoReformatter()
        for n, frame in enumerate(inp.decode(vin)):
            small = fmt.reformat(frame, width=w, height=h, format="yuv420p", interpolation="AREA")
            small.pts = n
            small.time_base = enc.codec_context.time_base
            for packet in enc.encode(small):
                dst.mux(packet)
        for packet in enc.encode(None):
            dst.mux(packet)

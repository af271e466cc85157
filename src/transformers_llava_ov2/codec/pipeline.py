"""Codec-stream tokenization of a video: probe -> GOP plan -> signals -> saliency -> selection -> canvases.

:func:`tokenize_video` is the entry point; every stage is a function of its own module and can be used
alone (:func:`~.probe.probe_video`, :func:`~.gop.plan_gops`, ...). Here each stage of the run is one
helper: :func:`_plan` (GOP plan, layout, candidates) -> :func:`_motion_source` (motion vectors or the
opt-in re-encode) -> :func:`_run` (one decode pass: :class:`_SignalConsumer` scores candidates,
:class:`GroupBuilder` selects blocks and packs canvases) -> :func:`_assemble`. See ``docs/codec.md``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, VideoReformatter

from ..errors import VideoDecodeError
from ..video.container import AV_ERRORS
from ..video.kernels import torch_threads
from ..video_types import BitCostTimeline, CodecBudget, CodecTokens, GopGroup
from .candidates import candidate_count, official_image_estimate, sample_candidates
from .canvas import CanvasLayout, choose_layout, fixed_p_counts, grown_layout, target_canvases
from .config import CodecConfig, with_overrides
from .gop import GopPlan, GroupSpec, plan_gops, plan_groups
from .groups import Candidate, GroupBuilder, GroupOutput
from .kernels import use_numba
from .probe import StreamProbe, probe_video
from .saliency import frame_block_scores, frame_quality, letterbox_mask
from .signals import DecodeReport, FrameSignals, iter_frame_signals

__all__ = ["tokenize_video"]


@dataclass(frozen=True)
class _Context:
    """What the run fixed before decoding: the input, its plan, layout and candidates, the config.

    ``rot_k`` is the display rotation in quarter turns; canvases are in display orientation, the decoded
    frames (and the analysis maps) in the coded one.
    """

    source: str
    probe: StreamProbe
    plan: GopPlan
    groups: list[GroupSpec]
    layout: CanvasLayout
    candidates: np.ndarray
    cfg: CodecConfig
    rot_k: int
    p_counts: np.ndarray | None = None  # fixed rule: P-canvases of each group

    @property
    def coded_canvas(self) -> tuple[int, int]:
        """``(h, w)`` of a canvas in the coded orientation."""
        H, W = self.layout.canvas_hw
        return (H, W) if self.rot_k % 2 == 0 else (W, H)

    @property
    def analysis_hw(self) -> tuple[int, int]:
        """``(h, w)`` of the analysis maps: the coded canvas divided by ``analysis_downsample``."""
        ds = self.cfg.analysis_downsample
        return (self.coded_canvas[0] // ds, self.coded_canvas[1] // ds)


@dataclass(frozen=True)
class _MotionSource:
    """The file the signals are decoded from, its probe, and where motion comes from."""

    path: str
    probe: StreamProbe
    use_mvs: bool
    motion: str  # backend_info["motion"] unless no vector shows up


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
    ctx = _plan(source, probe, cfg)
    stages["gop"] = time.perf_counter() - t0

    backend = _plan_facts(ctx)
    with _motion_source(ctx, stages, backend) as motion, torch_threads(cfg.torch_threads):
        result = _run(ctx, motion, stages, backend)
    result.stage_seconds["total"] = time.perf_counter() - t_start
    return result


def _plan(source: str, probe: StreamProbe, cfg: CodecConfig) -> _Context:
    """Stages 2, 2b and the layout: GOP plan, groups under the budget, candidate frames."""
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
    want = target_canvases(display_hw, layout, cfg)
    if want is not None:  # budget_policy="target": full-resolution canvases that spend the budget
        if want > layout.num_canvases:
            plan, groups = _grown_groups(probe, cfg, want, plan, groups)
        else:  # fewer groups at full resolution instead of shrunk canvases
            fit = max(1, want // (1 + cfg.p_canvases_per_group))
            if fit < len(groups):
                groups = plan_groups(plan, probe, cfg, max_groups=fit)
        layout = grown_layout(display_hw, len(groups), want, cfg)
    p_counts = None
    if cfg.p_allocation == "fixed":
        p_counts = fixed_p_counts(layout, np.asarray([g.bit_cost for g in groups]))
    official = official_image_estimate(probe.duration, layout.grid_hw[0] * layout.grid_hw[1], plan.k_target)
    count = candidate_count(
        layout.num_canvases, probe.total_frames, cfg, official_estimate=official, duration=probe.duration
    )
    candidates = sample_candidates(probe, plan, groups, count, cfg)
    return _Context(source, probe, plan, groups, layout, candidates, cfg, k, p_counts)


def _grown_groups(
    probe: StreamProbe, cfg: CodecConfig, canvases: int, plan: GopPlan, groups: list[GroupSpec]
) -> tuple[GopPlan, list[GroupSpec]]:
    """Re-plan with ``ceil(canvases / (1 + m_g))`` target groups (shorter energy segments, at least
    ``min_span_seconds`` each); keeps the given plan when that yields no more groups."""
    want = max(len(groups), -(-canvases // (1 + cfg.p_canvases_per_group)))
    grown = cfg.replace(
        num_groups=want, max_auto_groups=max(cfg.max_auto_groups, want), max_groups=max(cfg.max_groups, want)
    )
    plan2 = plan_gops(probe, grown)
    groups2 = plan_groups(plan2, probe, grown)
    return (plan2, groups2) if len(groups2) > len(groups) else (plan, groups)


def _plan_facts(ctx: _Context) -> dict[str, Any]:
    """The first entries of ``backend_info``: stream, plan and layout facts."""
    probe, plan, cfg = ctx.probe, ctx.plan, ctx.cfg
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
        "layout": ctx.layout.reason,
        "candidates": len(ctx.candidates),
    }
    if probe.notes:
        backend["probe_notes"] = list(probe.notes)
    return backend


@contextmanager
def _motion_source(
    ctx: _Context, stages: dict[str, float], backend: dict[str, Any]
) -> Iterator[_MotionSource]:
    """Where motion comes from: the stream's vectors, none, or an opt-in H.264 re-encode (temp dir)."""
    probe, cfg = ctx.probe, ctx.cfg
    use_mvs = probe.has_motion_vectors if cfg.motion == "auto" else cfg.motion == "mv"
    plain = _MotionSource(ctx.source, probe, use_mvs, "mv" if use_mvs else "residual-only")
    if not probe.has_motion_vectors and cfg.motion != "residual-only" and cfg.reencode_without_mvs:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="llava_ov2_codec_") as tmp:
            reencoded = _reencoded_source(ctx, Path(tmp) / "reencoded.mp4", backend)
            stages["reencode"] = time.perf_counter() - t0
            yield reencoded or plain
        return
    if use_mvs and not probe.has_motion_vectors:
        backend["motion_note"] = f"motion='mv' requested but {probe.codec_name} exports no motion vectors"
    yield plain


def _reencoded_source(ctx: _Context, out: Path, backend: dict[str, Any]) -> _MotionSource | None:
    """Re-encode to H.264 at canvas size; ``None`` (and ``backend["reencode_error"]``) when it fails."""
    probe = ctx.probe
    try:
        _reencode_h264(ctx.source, out, ctx.coded_canvas, ctx.cfg)
        re_probe = probe_video(out)
        unique_pts = len(np.unique(re_probe.pts)) == re_probe.total_frames
        if re_probe.total_frames == probe.total_frames and unique_pts:
            return _MotionSource(str(out), re_probe, True, "mv (re-encoded to h264)")
        backend["reencode_error"] = (
            f"re-encode produced {re_probe.total_frames} frames, expected {probe.total_frames}"
        )
    except (*AV_ERRORS, VideoDecodeError) as exc:
        backend["reencode_error"] = str(exc)
    return None


def _rgb_converter(ctx: _Context) -> Callable[[av.VideoFrame], np.ndarray]:
    """``canvas-size frame -> uint8 [H, W, 3]`` RGB in display orientation: a no-scale swscale conversion
    of the working copy the signal pass already made (one swscale context per calling thread: the decode
    thread converts too while the consumer is behind)."""
    local = threading.local()
    rot_k = ctx.rot_k

    def to_rgb(small: av.VideoFrame) -> np.ndarray:
        rgb_fmt = getattr(local, "fmt", None)
        if rgb_fmt is None:
            rgb_fmt = local.fmt = VideoReformatter()
        # the working copy is full range (signals.scale_to_work); one swscale thread (the other decodes)
        img = rgb_fmt.reformat(small, format="rgb24", src_color_range=ColorRange.JPEG, threads=1)
        arr = img.to_ndarray()
        return np.ascontiguousarray(np.rot90(arr, rot_k)) if rot_k else arr

    return to_rgb


def _run(ctx: _Context, src: _MotionSource, stages: dict[str, float], backend: dict[str, Any]) -> CodecTokens:
    """Stages 3-5: one decode pass feeding saliency, selection and canvases group by group."""
    cfg = ctx.cfg
    report = DecodeReport()
    consumer = _SignalConsumer(ctx, has_motion=src.use_mvs)
    t_loop = time.perf_counter()
    signals = iter_frame_signals(
        src.path,
        src.probe,
        ctx.candidates,
        ctx.analysis_hw,
        use_mvs=src.use_mvs,
        report=report,
        thread_type=cfg.thread_type,
        decode_thread=cfg.decode_thread,
        # canvas-size RGB on arrival instead of the decoded frame (memory: docs/codec.md, "3. Signals")
        convert_rgb=_rgb_converter(ctx),
        work_hw=ctx.coded_canvas,  # one area scale per frame: luma, thumbnail and RGB all come from it
        kernels=cfg.kernels,
        decode_workers=cfg.decode_workers,
    )
    with closing(signals):  # stops the decode thread if anything below raises
        for sig in signals:
            consumer.add(sig)
    consumer.finish()
    builder = consumer.builder
    builder.close()
    loop = time.perf_counter() - t_loop
    if not builder.outputs:
        reason = "no frame could be decoded"
        if report.errors:
            reason += f" ({report.errors[0]})"
        raise VideoDecodeError(ctx.source, reason)

    # decode: the time this thread waited for decoded frames (decode not hidden behind the signal work);
    # decode_thread: the decode thread's own busy time (overlapped with everything else)
    stages["decode"] = max(
        0.0, loop - consumer.t_sal - builder.t_sel - builder.t_canvas - report.convert_seconds
    )
    if cfg.decode_thread:
        stages["decode_thread"] = report.decode_seconds
        stages["decode_thread_idle"] = report.ledger_wait_seconds
    stages["signals"] = report.convert_seconds
    stages["saliency"] = consumer.t_sal
    stages["selection"] = builder.t_sel
    stages["canvas"] = builder.t_canvas
    _decode_facts(backend, ctx, src, consumer, report)
    return _assemble(ctx, builder.outputs, stages, backend)


def _decode_facts(
    backend: dict[str, Any],
    ctx: _Context,
    src: _MotionSource,
    consumer: _SignalConsumer,
    report: DecodeReport,
) -> None:
    """The rest of ``backend_info``: motion actually used, decode counts and errors, letterbox."""
    motion = src.motion
    if src.use_mvs and not consumer.mv_seen:
        motion = "residual-only"
        backend["motion_note"] = "no motion vectors were exported; zero motion was used"
    backend.update(
        {
            "motion": motion,
            "frames_decoded": report.frames_decoded,
            "frames_skipped": report.frames_skipped,
            "candidates_decoded": report.candidates_emitted,
            "frames_with_mvs": report.frames_with_mvs,
            "bad_frames": consumer.bad_frames,
            "analysis_hw": list(ctx.analysis_hw),
            "canvas_hw": list(ctx.layout.canvas_hw),
            "groups_planned": len(ctx.groups),
            "kernels": "numba" if use_numba(ctx.cfg.kernels) else "numpy",
        }
    )
    if consumer.letterbox_bbox is not None:
        backend["letterbox_bbox"] = consumer.letterbox_bbox
    if report.errors:
        backend["decode_errors"] = len(report.errors)
        backend["decode_error_samples"] = report.errors[:5]
    done = report.frames_decoded + report.frames_skipped
    total = src.probe.total_frames
    if done < total and not report.stopped_early:
        backend["truncated"] = (
            f"only {report.frames_decoded} of {total} frames could be decoded "
            f"({report.frames_skipped} unneeded non-reference frames skipped)"
        )


class _SignalConsumer:
    """Stage 4a per candidate (quality, letterbox, saliency, block scores), finishing each group as
    soon as the signals (display order) pass its end."""

    def __init__(self, ctx: _Context, *, has_motion: bool):
        self.ctx = ctx
        self.has_motion = has_motion
        self.builder = GroupBuilder(ctx.layout, ctx.cfg, ctx.p_counts)
        self.pending: list[Candidate] = []
        self.group_idx = 0
        self.mask: np.ndarray | None = None
        self.letterbox_bbox: list[int] | None = None
        self.bad_frames = 0
        self.mv_seen = False
        self.t_sal = 0.0

    def add(self, sig: FrameSignals) -> None:
        """Finish the groups that end before ``sig``, then score it."""
        groups = self.ctx.groups
        t0 = time.perf_counter()
        while self.group_idx < len(groups) and sig.index >= groups[self.group_idx].frame_end:
            self.t_sal += time.perf_counter() - t0
            self.builder.finalize(groups[self.group_idx], self.pending)
            self.pending = []
            t0 = time.perf_counter()
            self.group_idx += 1
        self.pending.append(self._score(sig))
        self.t_sal += time.perf_counter() - t0

    def _score(self, sig: FrameSignals) -> Candidate:
        ctx, cfg = self.ctx, self.ctx.cfg
        quality = frame_quality(sig.luma, sig.thumb_rgb, cfg)
        if not quality.good:
            self.bad_frames += 1
        if cfg.letterbox and self.mask is None and not quality.black:
            self.mask = mask = letterbox_mask(sig.luma, cfg.letterbox_dark_threshold)
            ys, xs = np.nonzero(mask)
            if len(ys) and mask.min() == 0:
                self.letterbox_bbox = [int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1]
        if sig.motion is not None:
            self.mv_seen = True
        blocks, activity = frame_block_scores(
            sig.motion, sig.residual, cfg, has_motion=self.has_motion, mask=self.mask
        )
        if ctx.rot_k:  # block sums commute with the rotation (blocks are whole patches in both)
            blocks = np.rot90(blocks, ctx.rot_k)
        blocks = np.ascontiguousarray(blocks).reshape(-1)
        probe = ctx.probe
        bits = int(8 * probe.sizes[sig.index]) if sig.index < probe.total_frames else sig.bits
        assert sig.rgb is not None
        return Candidate(sig.index, sig.time, bits, blocks, quality, sig.rgb, activity)

    def finish(self) -> None:
        """Finish the groups still open after the last signal."""
        groups = self.ctx.groups
        while self.group_idx < len(groups):
            g = groups[self.group_idx]
            self.builder.finalize(g, [c for c in self.pending if g.frame_start <= c.index < g.frame_end])
            self.group_idx += 1


def _assemble(
    ctx: _Context, outputs: list[GroupOutput], stages: dict[str, float], backend: dict[str, Any]
) -> CodecTokens:
    """Stage 5 output: the groups' canvases and per-token metadata as :class:`CodecTokens`."""
    source, probe, plan, layout, cfg = ctx.source, ctx.probe, ctx.plan, ctx.layout, ctx.cfg
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
    m2 = cfg.merge_size**2
    budget = _budget(ctx, len(pos) // m2)
    backend["budget"] = {
        "policy": budget.policy,
        "requested_tokens": budget.requested_tokens,
        "planned_tokens": budget.planned_tokens,
        "spent_tokens": budget.spent_tokens,
        "reason": budget.reason,
    }
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
        budget=budget,
    )


#: share of ``max_visual_tokens`` below which the result says why the budget was not used
BUDGET_TOLERANCE = 0.9


def _budget(ctx: _Context, spent: int) -> CodecBudget:
    """Requested vs planned vs spent tokens, and why when less than ``BUDGET_TOLERANCE`` was spent."""
    cfg, layout = ctx.cfg, ctx.layout
    requested = cfg.max_visual_tokens
    planned = layout.max_tokens
    reason = None
    if requested is not None and spent < BUDGET_TOLERANCE * requested:
        if cfg.num_canvases is not None:
            reason = f"num_canvases={cfg.num_canvases} limits the canvases"
        elif cfg.budget_policy == "ceiling":
            reason = (
                f"budget_policy='ceiling': the default layout ({layout.num_groups} groups, "
                f"{layout.num_canvases} canvases) needs only {planned} tokens"
            )
        elif planned < BUDGET_TOLERANCE * requested:
            reason = (
                f"the clip ({ctx.probe.duration:.1f} s) holds {layout.num_groups} groups (energy segments "
                f"of at least {cfg.min_span_seconds:g} s) of at most 1 + {cfg.max_p_canvases_per_group} canvases"
            )
        else:
            reason = (
                f"{spent // max(1, layout.tokens_per_canvas)} of {layout.num_canvases} planned canvases were "
                "filled: the groups have too few distinct frames or blocks (short, static or undecodable clip)"
            )
    return CodecBudget(
        policy=cfg.budget_policy,
        requested_tokens=requested,
        planned_tokens=int(planned),
        spent_tokens=int(spent),
        reason=reason,
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

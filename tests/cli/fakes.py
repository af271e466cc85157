"""Hand-built ``CodecTokens`` / ``SampledFrames`` for exercising the pictures without the codec tokenizer."""

from __future__ import annotations

import numpy as np

from transformers_llava_ov2.video_types import (
    ROLE_I,
    ROLE_P,
    BitCostTimeline,
    CodecTokens,
    GopGroup,
    SampledFrames,
)


def fake_codec_tokens(
    *, groups: int = 3, p_per_group: int = 3, grid: tuple[int, int] = (8, 14), patch: int = 14, seed: int = 0
) -> CodecTokens:
    """A consistent codec tokenization of a made-up 6 s, 25 fps clip with a square moving left to right.

    Each group has one I-canvas (a full source frame) and ``p_per_group`` P-canvases filled with 2x2 blocks
    around the moving square, taken from several frames of the group.
    """
    rng = np.random.default_rng(seed)
    gh, gw = grid
    fps, duration = 25.0, 6.0
    total = int(fps * duration)
    hpx, wpx = gh * patch, gw * patch
    bounds = np.linspace(0.0, duration, groups + 1)
    canvases, roles, cgroups, pos, tcan, tts, tgrp, trole = [], [], [], [], [], [], [], []
    table = []
    m = 2

    def frame_image(f: int) -> np.ndarray:
        img = np.full((hpx, wpx, 3), 60, np.uint8)
        img[..., 1] = np.linspace(40, 200, wpx, dtype=np.uint8)[None, :]
        x0 = int(f / total * (wpx - 3 * patch))
        img[2 * patch : 5 * patch, x0 : x0 + 3 * patch] = (240, 200, 40)
        return img

    for g in range(groups):
        f0 = int(bounds[g] * fps)
        f1 = int(bounds[g + 1] * fps)
        anchor = f0
        ci = len(canvases)
        canvases.append(frame_image(anchor))
        roles.append(ROLE_I)
        cgroups.append(g)
        hh, ww = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        pos.append(np.stack([np.full(gh * gw, anchor), hh.ravel(), ww.ravel()], 1))
        tcan.append(np.full(gh * gw, ci))
        tts.append(np.full(gh * gw, anchor / fps))
        tgrp.append(np.full(gh * gw, g))
        trole.append(np.full(gh * gw, ROLE_I))
        for _ in range(p_per_group):
            ci = len(canvases)
            canvas = np.zeros((hpx, wpx, 3), np.uint8)
            cpos = np.zeros((gh, gw, 3), np.int64)
            cts = np.zeros((gh, gw))
            for bh in range(0, gh, m):
                for bw in range(0, gw, m):
                    f = int(rng.integers(f0 + 1, max(f0 + 2, f1)))
                    x_obj = int(f / total * (gw - 3))
                    sh = int(np.clip(rng.normal(3, 1.5), 0, gh - m)) // m * m
                    sw = int(np.clip(rng.normal(x_obj + 1, 2.0), 0, gw - m)) // m * m
                    src = frame_image(f)
                    canvas[bh * patch : (bh + m) * patch, bw * patch : (bw + m) * patch] = src[
                        sh * patch : (sh + m) * patch, sw * patch : (sw + m) * patch
                    ]
                    for dh in range(m):
                        for dw in range(m):
                            cpos[bh + dh, bw + dw] = (f, sh + dh, sw + dw)
                            cts[bh + dh, bw + dw] = f / fps
            canvases.append(canvas)
            roles.append(ROLE_P)
            cgroups.append(g)
            pos.append(cpos.reshape(-1, 3))
            tcan.append(np.full(gh * gw, ci))
            tts.append(cts.ravel())
            tgrp.append(np.full(gh * gw, g))
            trole.append(np.full(gh * gw, ROLE_P))
        table.append(
            GopGroup(
                index=g,
                start=float(bounds[g]),
                end=float(bounds[g + 1]),
                anchor_frame=anchor,
                bit_cost=float(10 + g),
                num_canvases=1 + p_per_group,
            )
        )
    bin_s = 0.25
    nb = int(duration / bin_s)
    energy = 5 + 3 * np.abs(np.sin(np.arange(nb) / 3.0)) + rng.random(nb)
    smoothed = np.convolve(energy, np.ones(3) / 3, mode="same")
    timeline = BitCostTimeline(
        bin_seconds=bin_s,
        energy=energy,
        smoothed=smoothed,
        quota=float(energy.sum() / groups),
        boundaries=bounds,
        anchor_times=np.array([t.anchor_frame / fps for t in table]),
    )
    return CodecTokens(
        canvases=np.stack(canvases),
        patch_size=patch,
        merge_size=m,
        source_positions=np.concatenate(pos).astype(np.int64),
        token_canvas=np.concatenate(tcan).astype(np.int64),
        token_timestamps=np.concatenate(tts).astype(np.float64),
        token_group=np.concatenate(tgrp).astype(np.int64),
        token_role=np.concatenate(trole).astype(np.int8),
        canvas_roles=np.array(roles, np.int8),
        canvas_groups=np.array(cgroups, np.int64),
        groups=tuple(table),
        fps=fps,
        duration=duration,
        total_frames=total,
        source_frame_size=(hpx, wpx),
        source="fake_clip.mp4",
        timeline=timeline,
        stage_seconds={"probe": 0.01, "gop": 0.02, "decode": 0.3, "saliency": 0.1, "canvases": 0.05},
        backend_info={"motion": "fake"},
    )


def fake_sampled_frames(n: int = 8, size: tuple[int, int] = (90, 160)) -> SampledFrames:
    """``n`` coloured frames of a made-up 4 s, 25 fps clip."""
    h, w = size
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = 30 * i % 255
        frames[i, :, : (i + 1) * w // (n + 1), 2] = 200
    idx = np.linspace(0, 99, n).round().astype(np.int64)
    return SampledFrames(
        frames=frames, frame_indices=idx, timestamps=idx / 25.0, fps=25.0, total_frames=100, duration=4.0
    )

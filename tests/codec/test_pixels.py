"""Candidate pixels kept as planar YUV and converted late (codec/pixels.py): the same RGB as converting the
whole working copy at once, whatever the blocks, orientation, chroma format or block size."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from transformers_llava_ov2.codec.canvas import CanvasLayout, gather_blocks
from transformers_llava_ov2.codec.groups import Candidate, block_pixels
from transformers_llava_ov2.codec.pixels import RgbImage, WorkImage, gather_rgb, keep_pixels
from transformers_llava_ov2.codec.signals import scale_to_work


def _layout(hw: tuple[int, int], patch: int = 14, merge: int = 2) -> CanvasLayout:
    return CanvasLayout(hw, (hw[0] // patch, hw[1] // patch), 1, 1, patch, merge)


def _work_frames(path, work_hw, n=6):
    scaler = VideoReformatter()
    with av.open(str(path)) as c:
        frames = [f for _, f in zip(range(n), c.decode(video=0))]
    return [scale_to_work(scaler, f, work_hw) for f in frames]


def _whole_rgb(frame: av.VideoFrame, rot_k: int) -> np.ndarray:
    """The reference: the whole working copy converted by PyAV, then turned."""
    return np.rot90(frame.to_ndarray(format="rgb24"), rot_k)


@pytest.mark.parametrize("rot_k", [0, 1, 2, 3])
def test_blocks_equal_the_whole_frame_conversion_on_the_real_clip(shared_videos_dir, rot_k):
    frames = _work_frames(shared_videos_dir / "beach_puzzle_360x640.mp4", (504, 280), n=4)
    rng = np.random.default_rng(rot_k)
    for f in frames:
        img = WorkImage.from_frame(f, rot_k)
        ref = _whole_rgb(f, rot_k)
        assert np.array_equal(img.rgb(), ref)
        lay = _layout(ref.shape[:2])
        blocks = rng.choice(lay.blocks_per_canvas, 37, replace=False)
        assert np.array_equal(img.blocks(blocks, lay), gather_blocks(np.ascontiguousarray(ref), blocks, lay))


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_blocks_of_several_frames_convert_together_like_each_frame_alone(make_clip, pix_fmt):
    clip = make_clip("pixels_src.mp4", seconds=0.4, size=(224, 168), velocity=(3, 2))
    frames = _work_frames(clip.path, (112, 168))
    if pix_fmt == "yuv444p":
        frames = [f.reformat(format="yuv444p") for f in frames]
    assert {f.format.name for f in frames} == {pix_fmt}
    images = [WorkImage.from_frame(f, 1) for f in frames]
    lay = _layout((168, 112))
    rng = np.random.default_rng(0)
    picks = [rng.choice(lay.blocks_per_canvas, int(k), replace=False) for k in (5, 0, 24, 1, 9, 13)]
    got = gather_rgb(images, picks, lay)
    want = np.concatenate(
        [gather_blocks(np.ascontiguousarray(_whole_rgb(f, 1)), b, lay) for f, b in zip(frames, picks)]
    )
    assert got.shape == (52, 28, 28, 3) and np.array_equal(got, want)


def test_mixed_sources_and_odd_blocks_fall_back_to_whole_frames(make_clip):
    clip = make_clip("pixels_src.mp4", seconds=0.4, size=(224, 168), velocity=(3, 2))
    lay = _layout((98, 154), patch=7, merge=1)  # 7-pixel blocks: odd, 4:2:0 chroma cells would split
    f = _work_frames(clip.path, (98, 154), n=1)[0]
    img = WorkImage.from_frame(f)
    blocks = np.asarray([0, 5, 22, 307])
    ref = np.ascontiguousarray(_whole_rgb(f, 0))
    assert np.array_equal(img.blocks(blocks, lay), gather_blocks(ref, blocks, lay))
    other = RgbImage(np.full_like(ref, 7))
    got = gather_rgb([img, other], [blocks, blocks[:2]], lay)
    assert np.array_equal(got[:4], gather_blocks(ref, blocks, lay)) and (got[4:] == 7).all()
    assert gather_rgb([img], [np.zeros(0, np.int64)], lay).shape == (0, 7, 7, 3)


@pytest.mark.parametrize("rot_k", [0, 1])
def test_odd_sided_4_2_0_working_copies_are_converted_on_arrival(make_clip, rot_k):
    clip = make_clip("pixels_src.mp4", seconds=0.4, size=(224, 168), velocity=(3, 2))
    f = _work_frames(clip.path, (105, 161), n=1)[0]
    kept = keep_pixels(f, rot_k)
    assert isinstance(kept, RgbImage) and np.array_equal(kept.rgb(), _whole_rgb(f, rot_k))
    with pytest.raises(ValueError, match="even sides, got 161x105"):
        WorkImage.from_frame(f)
    even = _work_frames(clip.path, (98, 154), n=1)[0]
    assert isinstance(keep_pixels(even, rot_k), WorkImage)


def test_work_image_owns_its_pixels_and_takes_only_planar_yuv(make_clip):
    clip = make_clip("pixels_src.mp4", seconds=0.4, size=(224, 168), velocity=(3, 2))
    f = _work_frames(clip.path, (112, 168), n=1)[0]
    img = WorkImage.from_frame(f)
    before = img.rgb().copy()
    np.frombuffer(f.planes[0], np.uint8)[:] = 0  # the frame's memory changes; the copy does not
    assert np.array_equal(img.rgb(), before) and img.nbytes == 112 * 168 * 3 // 2
    with pytest.raises(ValueError, match="yuv420p or yuv444p, got rgb24"):
        WorkImage.from_frame(f.reformat(format="rgb24"))


def test_block_pixels_keeps_the_requested_order():
    lay = _layout((56, 56))
    imgs = {i: RgbImage(np.full((56, 56, 3), i, np.uint8)) for i in (3, 8)}
    members = {i: Candidate(i, 0.0, 0, np.zeros(4), None, im) for i, im in imgs.items()}
    frames, blocks = np.asarray([8, 3, 8, 3]), np.asarray([0, 1, 2, 3])
    px = block_pixels(members, frames, blocks, lay)
    assert px[:, 0, 0, 0].tolist() == [8, 3, 8, 3]


def test_the_tokenizer_converts_each_groups_blocks_once_and_far_fewer_pixels_than_its_candidates(
    make_clip, monkeypatch
):
    """Candidates keep YUV; per group one whole-frame conversion (the I-canvas) and one tile of blocks."""
    from transformers_llava_ov2.codec import pixels
    from transformers_llava_ov2.codec.config import CodecConfig
    from transformers_llava_ov2.codec.pipeline import tokenize_video

    clip = make_clip("pixels_tok.mp4", seconds=6.0, size=(320, 240), bframes=2, velocity=(4, 3))
    calls: list[tuple[str, int]] = []
    real = pixels._convert_frame

    def spy(frame, role):
        calls.append((role, frame.width * frame.height))
        return real(frame, role)

    monkeypatch.setattr(pixels, "_convert_frame", spy)
    out = tokenize_video(clip.path, config=CodecConfig(max_visual_tokens=2000))
    groups = len(out.groups)
    canvas_px = out.canvases[0].shape[0] * out.canvases[0].shape[1]
    assert [r for r, _ in calls].count("frame") == groups
    assert [r for r, _ in calls].count("tile") == groups
    candidates = out.backend_info["candidates"]
    assert sum(px for _, px in calls) < 0.5 * candidates * canvas_px

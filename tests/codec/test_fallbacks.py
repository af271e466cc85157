"""Streams without motion vectors, degenerate clips, bad inputs and a bounded fuzz: never a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transformers_llava_ov2.codec.pipeline import tokenize_video
from transformers_llava_ov2.codec.probe import probe_video
from transformers_llava_ov2.errors import VideoDecodeError
from transformers_llava_ov2.video.synthetic import write_audio_only_file

from .test_pipeline import check_invariants


@pytest.mark.parametrize("fixture", ["hevc_clip", "mjpeg_clip"])
def test_no_motion_vector_codecs_use_residual_only(request, fixture):
    clip = request.getfixturevalue(fixture)
    tok = tokenize_video(clip.path)
    check_invariants(tok, clip.num_frames)
    assert tok.backend_info["motion"] == "residual-only"
    assert tok.backend_info["frames_with_mvs"] == 0


def test_opt_in_reencode_gives_motion_vectors(hevc_clip):
    tok = tokenize_video(hevc_clip.path, reencode_without_mvs=True)
    check_invariants(tok, hevc_clip.num_frames)
    assert tok.backend_info["motion"] == "mv (re-encoded to h264)"
    assert tok.backend_info["frames_with_mvs"] > 0
    assert "reencode" in tok.stage_seconds


def test_mpeg4_has_motion_vectors(mpeg4_clip):
    tok = tokenize_video(mpeg4_clip.path)
    check_invariants(tok, mpeg4_clip.num_frames)
    assert tok.backend_info["motion"] == "mv"


def test_static_clip(static_clip):
    tok = tokenize_video(static_clip.path)
    check_invariants(tok, static_clip.num_frames)
    assert len(tok.groups) >= 1


def test_one_frame_clip(one_frame_clip):
    tok = tokenize_video(one_frame_clip.path)
    check_invariants(tok, 1)
    assert tok.num_canvases == 1 and tok.canvas_roles.tolist() == [0]
    assert np.all(tok.source_positions[:, 0] == 0)


def test_clip_shorter_than_the_budget(short_clip):
    tok = tokenize_video(short_clip.path, num_canvases=16)
    check_invariants(tok, short_clip.num_frames)
    assert tok.num_canvases <= short_clip.num_frames
    p_tok = tok.source_positions[tok.token_role == 1]
    assert len(np.unique(p_tok, axis=0)) == len(p_tok)


def test_raw_annexb_stream(annexb_clip):
    tok = tokenize_video(annexb_clip)
    check_invariants(tok, 50)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, h264_b_clip) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("codec_bad")
    text = root / "notes.mp4"
    text.write_text("definitely not a video\n" * 50)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    data = Path(h264_b_clip.path).read_bytes()
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    return {
        "missing": root / "nope.mp4",
        "empty": empty,
        "text": text,
        "audio_only": write_audio_only_file(root / "audio.m4a", seconds=0.5),
        "truncated": truncated,
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "audio_only", "truncated"])
def test_bad_inputs_raise_video_decode_error(bad_inputs, kind):
    path = bad_inputs[kind]
    with pytest.raises(VideoDecodeError) as info:
        tokenize_video(path)
    assert str(path) in str(info.value)
    with pytest.raises(VideoDecodeError):
        probe_video(path)


def test_truncated_stream_decodes_what_it_can(make_clip, tmp_path):
    clip = make_clip(
        "codec_faststart.mp4", seconds=2.0, size=(160, 96), bframes=2, object_size=32, faststart=True
    )
    data = Path(clip.path).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    tok = tokenize_video(cut)
    assert tok.num_canvases >= 1
    assert "truncated" in tok.backend_info or tok.backend_info.get("decode_errors", 0) >= 0


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    mode = int(rng.integers(0, 3))
    if mode in (0, 2):
        for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 30))):
            buf[pos] ^= int(rng.integers(1, 256))
    if mode in (1, 2):
        buf = buf[: int(rng.integers(1, len(buf)))]
    return bytes(buf)


@pytest.fixture(scope="module")
def fuzz_source(make_clip) -> bytes:
    clip = make_clip(
        "codec_fuzz.mp4", seconds=1.0, size=(96, 64), bframes=2, gop=8, object_size=16, faststart=True
    )
    return Path(clip.path).read_bytes()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", range(20))
def test_fuzz_success_or_video_decode_error(fuzz_source, tmp_path, case):
    rng = np.random.default_rng(4242 + case)
    path = tmp_path / f"fuzz_{case}.mp4"
    path.write_bytes(_mutate(fuzz_source, rng))
    try:
        tok = tokenize_video(path)
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
        return
    assert tok.num_canvases >= 1 and tok.source_positions[:, 0].min() >= 0

"""sample_uniform_frames / read_frames: indices, timestamps, seek == sequential, backends, truncation."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from transformers_llava_ov2.errors import VideoDecodeError
from transformers_llava_ov2.video.frame_count import compute_num_frames, sample_indices
from transformers_llava_ov2.video.readers import TruncatedVideoError, VideoTruncatedWarning, read_frames
from transformers_llava_ov2.video.synthetic import write_synthetic_clip
from transformers_llava_ov2.video.uniform import plan_uniform_frames, sample_uniform_frames
from transformers_llava_ov2.video_types import SampledFrames

try:
    import decord  # noqa: F401

    HAVE_DECORD = True
except ImportError:
    HAVE_DECORD = False
needs_decord = pytest.mark.skipif(not HAVE_DECORD, reason="decord not installed (optional `decord` extra)")


@pytest.mark.parametrize("fixture", ["cfr_mp4", "cfr_mkv"])
def test_timestamps_are_index_over_fps(request, fixture):
    clip = request.getfixturevalue(fixture)
    out = sample_uniform_frames(clip.path, num_frames=8)
    assert isinstance(out, SampledFrames)
    assert out.frames.shape == (8, 96, 160, 3) and out.frames.dtype == np.uint8
    np.testing.assert_array_equal(out.frame_indices, sample_indices(clip.num_frames, 8))
    assert np.all(np.diff(out.timestamps) > 0)
    np.testing.assert_allclose(out.timestamps, out.frame_indices / 25.0, atol=1e-9)
    assert out.total_frames == clip.num_frames
    assert out.fps == pytest.approx(25.0)
    assert out.source == str(clip.path)


def test_fps_rule_used_by_sampler(cfr_mp4):
    out = sample_uniform_frames(cfr_mp4.path, fps=2.0)  # 3 s * 2 = 6
    assert out.num_frames == compute_num_frames(75, 25.0, fps=2.0) == 6
    assert sample_uniform_frames(cfr_mp4.path).num_frames == 6  # qwen default fps 2.0


def test_frames_are_the_decoded_frames(cfr_mp4):
    """Each sampled frame equals the frame at its index in a plain full decode."""
    import av

    with av.open(str(cfr_mp4.path)) as c:
        every = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    out = sample_uniform_frames(cfr_mp4.path, num_frames=10)
    for frame, i in zip(out.frames, out.frame_indices):
        np.testing.assert_array_equal(frame, every[i])


def test_file_url(cfr_mp4):
    a = sample_uniform_frames(cfr_mp4.path, num_frames=4)
    b = sample_uniform_frames("file://" + str(cfr_mp4.path), num_frames=4)
    np.testing.assert_array_equal(a.frames, b.frames)


@pytest.mark.parametrize("n", [8, 32, 64])
def test_seek_path_equals_sequential(long_mp4, n):
    idx = sample_indices(long_mp4.num_frames, n)
    seq, s_stats = read_frames(long_mp4.path, idx, seek=False)
    auto, a_stats = read_frames(long_mp4.path, idx, seek="auto")
    forced, f_stats = read_frames(long_mp4.path, idx, seek=True)
    assert s_stats.path == "sequential" and s_stats.decoded_frames == 1500
    assert (
        a_stats.path == "seek"
        and a_stats.seeks > 0
        and a_stats.decoded_frames < 1500
        and not a_stats.fell_back
    )
    assert f_stats.path == "seek"
    for other in (auto, forced):
        np.testing.assert_array_equal(other.frames, seq.frames)
        np.testing.assert_array_equal(other.timestamps, seq.timestamps)
        np.testing.assert_array_equal(other.frame_indices, seq.frame_indices)


def test_seek_arbitrary_order_and_repeats(long_mp4):
    idx = np.array([1400, 3, 777, 3, 1499, 0, 26])
    seq, _ = read_frames(long_mp4.path, idx, seek=False)
    sk, stats = read_frames(long_mp4.path, idx, seek=True)
    assert stats.path == "seek"
    np.testing.assert_array_equal(sk.frames, seq.frames)
    np.testing.assert_allclose(sk.timestamps, idx / 25.0)


def test_dense_samples_stay_sequential(cfr_mp4, cfr_mkv):
    _, stats = read_frames(cfr_mp4.path, np.arange(75), seek="auto")
    assert stats.path == "sequential" and "no keyframe gap" in stats.reason
    _, stats = read_frames(cfr_mkv.path, [0, 49], seek="auto")
    assert stats.path == "sequential" and "sample index" in stats.reason  # Matroska: no full index


def test_short_clips_are_padded(tmp_path):
    one = write_synthetic_clip(tmp_path / "one.mp4", seconds=0.04, size=(64, 48), object_size=16)
    three = write_synthetic_clip(tmp_path / "three.mp4", seconds=0.12, size=(64, 48), object_size=16)
    assert (one.num_frames, three.num_frames) == (1, 3)
    out = sample_uniform_frames(one.path, fps=1.0)
    assert out.frame_indices.tolist() == [0, 0] and out.total_frames == 1
    np.testing.assert_array_equal(out.frames[0], out.frames[1])
    out = sample_uniform_frames(three.path, num_frames=8)
    assert out.frame_indices.tolist() == [0, 1, 2, 2]
    assert out.timestamps.tolist() == pytest.approx([0.0, 0.04, 0.08, 0.08])
    with pytest.raises(ValueError, match="nframes should be in interval"):
        sample_uniform_frames(three.path, num_frames=8, strict=True)


def test_rotation_option(make_clip):
    clip = make_clip("rot90_s.mp4", seconds=0.4, size=(64, 48), bframes=0, object_size=16, rotation=90)
    plain = sample_uniform_frames(clip.path, num_frames=2)
    rotated = sample_uniform_frames(clip.path, num_frames=2, apply_rotation=True)
    assert plain.frames.shape[1:3] == (48, 64) and rotated.frames.shape[1:3] == (64, 48)
    np.testing.assert_array_equal(rotated.frames[0], np.rot90(plain.frames[0]))


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "text", "audio_only", "truncated_mp4"])
def test_bad_inputs(bad_files, kind):
    with pytest.raises(VideoDecodeError, match="cannot read video"):
        sample_uniform_frames(bad_files[kind], num_frames=4)


def _truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_truncated_stream_resamples_and_warns(make_clip, tmp_path):
    clip = make_clip(
        "faststart.mp4", seconds=2.0, size=(96, 64), bframes=2, gop=10, object_size=16, faststart=True
    )
    path = _truncated(clip.path, tmp_path / "cut.mp4", 0.6)  # header intact, says 50 frames
    with pytest.warns(VideoTruncatedWarning, match="frames decode"):
        out = sample_uniform_frames(path, num_frames=8)
    assert 0 < out.total_frames < clip.num_frames
    assert out.duration == pytest.approx(out.total_frames / 25.0)
    assert out.frame_indices[-1] == out.total_frames - 1
    np.testing.assert_array_equal(out.frame_indices, sample_indices(out.total_frames, 8))
    with pytest.raises(TruncatedVideoError) as info:
        sample_uniform_frames(path, num_frames=8, on_truncated="error")
    assert info.value.decodable_frames == out.total_frames
    assert isinstance(info.value, VideoDecodeError)


def test_truncated_matroska_counts_what_is_there(cfr_mkv, tmp_path):
    """Matroska has no frame count: the demux count already reflects the truncation."""
    path = _truncated(cfr_mkv.path, tmp_path / "cut.mkv", 0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoTruncatedWarning)
        out = sample_uniform_frames(path, num_frames=8)
    assert 0 < out.total_frames < cfr_mkv.num_frames
    assert out.frame_indices[-1] == out.total_frames - 1


def test_bad_arguments(cfr_mp4):
    with pytest.raises(ValueError, match="backend"):
        sample_uniform_frames(cfr_mp4.path, backend="opencv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        read_frames(cfr_mp4.path, [])


def test_decord_missing_message(cfr_mp4, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_decord(name, *args, **kwargs):
        if name == "decord":
            raise ImportError("No module named 'decord'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_decord)
    with pytest.raises(ImportError, match=r"transformers-llava-ov2\[decord\]"):
        sample_uniform_frames(cfr_mp4.path, backend="decord")


@needs_decord
@pytest.mark.parametrize("fixture", ["cfr_mp4", "cfr_mkv", "long_mp4"])
def test_decord_matches_pyav(request, fixture):
    clip = request.getfixturevalue(fixture)
    a = sample_uniform_frames(clip.path, fps=1.0)
    b = sample_uniform_frames(clip.path, fps=1.0, backend="decord")
    np.testing.assert_array_equal(a.frame_indices, b.frame_indices)
    assert a.total_frames == b.total_frames
    np.testing.assert_allclose(a.timestamps, b.timestamps, atol=1e-3)
    assert np.abs(a.frames.astype(np.int16) - b.frames).mean() < 1.0


@pytest.mark.real_video
def test_real_sample_clip(shared_videos_dir):
    path = shared_videos_dir / "beach_puzzle_360x640.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    out = sample_uniform_frames(path, fps=1.0)
    assert out.frames.shape == (16, 640, 360, 3)
    assert out.total_frames == 487 and out.fps == pytest.approx(30.0)
    assert out.frame_indices.tolist() == sample_indices(487, 16).tolist()
    np.testing.assert_allclose(out.timestamps, out.frame_indices / 30.0, atol=1e-6)
    seq, _ = read_frames(path, out.frame_indices, seek=False)
    np.testing.assert_array_equal(seq.frames, out.frames)
    if HAVE_DECORD:
        d = sample_uniform_frames(path, fps=1.0, backend="decord")
        np.testing.assert_array_equal(d.frame_indices, out.frame_indices)
        assert np.abs(d.frames.astype(np.int16) - out.frames).mean() < 1.0


def test_no_raw_av_exception_on_garbage_after_header(cfr_mkv, tmp_path):
    data = bytearray(cfr_mkv.path.read_bytes())
    data[len(data) // 4 :] = bytes(len(data) - len(data) // 4)  # zero the payload
    path = tmp_path / "zeroed.mkv"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoTruncatedWarning)
        try:
            out = sample_uniform_frames(path, num_frames=4)
        except VideoDecodeError:
            return
    assert out.num_frames >= 2


@pytest.mark.parametrize("seek", [False, "auto", True])
def test_on_frame_delivers_each_sampled_frame_once(long_mp4, seek):
    idx = np.array([1400, 3, 777, 3, 1499, 0, 26])
    got: dict[int, np.ndarray] = {}

    def on_frame(i: int, rgb: np.ndarray) -> None:
        assert i not in got
        got[i] = rgb.copy()

    out, _ = read_frames(long_mp4.path, idx, seek=seek, on_frame=on_frame)
    assert sorted(got) == sorted(set(idx.tolist()))
    for j, i in enumerate(idx.tolist()):
        np.testing.assert_array_equal(got[i], out.frames[j])


def test_on_frame_once_across_a_seek_fallback(long_mp4, monkeypatch):
    """The seek path gives up half-way: the sequential redo must not deliver frames a second time."""
    from transformers_llava_ov2.video import readers as uniform

    real = uniform._decode_seeking

    def failing(*args, **kwargs):
        real(*args, **kwargs)  # delivers every frame once, then "fails"
        raise uniform._SeekAbort("injected")

    monkeypatch.setattr(uniform, "_decode_seeking", failing)
    idx = sample_indices(long_mp4.num_frames, 8)
    calls: list[int] = []
    out, stats = read_frames(long_mp4.path, idx, seek=True, on_frame=lambda i, rgb: calls.append(i))
    assert stats.fell_back and sorted(calls) == sorted(set(idx.tolist()))
    ref, _ = read_frames(long_mp4.path, idx, seek=False)
    np.testing.assert_array_equal(out.frames, ref.frames)


@pytest.mark.parametrize("fixture", ["cfr_mp4", "cfr_mkv"])
def test_plan_matches_sample_uniform_frames(request, fixture):
    clip = request.getfixturevalue(fixture)
    for kwargs in ({"num_frames": 6}, {"fps": 2.0}, {"num_frames": 500}):
        indices, info = plan_uniform_frames(clip.path, **kwargs)
        out = sample_uniform_frames(clip.path, **kwargs)
        np.testing.assert_array_equal(indices, out.frame_indices)
        assert out.frames.shape[1:3] == (info.height, info.width)


@pytest.mark.parametrize("seek", [False, True])
def test_on_frame_errors_are_not_taken_for_decode_errors(long_mp4, seek):
    """A ValueError from the callback must surface, not send the seek path into its fallback."""
    idx = sample_indices(long_mp4.num_frames, 8)
    calls: list[int] = []

    def on_frame(i: int, rgb: np.ndarray) -> None:
        calls.append(i)
        if len(calls) == 3:
            raise ValueError("callback failed")

    with pytest.raises(ValueError, match="callback failed"):
        read_frames(long_mp4.path, idx, seek=seek, on_frame=on_frame)
    assert len(calls) == 3

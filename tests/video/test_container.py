"""open_video / stream_info: bad inputs become VideoDecodeError, probed facts are right."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import av
import pytest

from transformers_llava_ov2.errors import VideoDecodeError
from transformers_llava_ov2.video import container as container_mod
from transformers_llava_ov2.video.container import (
    AV_ERRORS,
    MAX_CONSECUTIVE_DECODE_ERRORS,
    ONE_PASS_ERROR_POLICY,
    READER_ERROR_POLICY,
    DecodeErrorPolicy,
    StreamInfo,
    first_video_stream,
    open_video,
    resolve_video_path,
    stream_info,
)

BAD_REASONS = {
    "missing": "does not exist",
    "directory": "directory",
    "empty": "empty",
    "text": "not a recognised video",
    "audio_only": "no video stream",
    "truncated_mp4": "",  # reason comes from FFmpeg (moov atom missing)
}


@pytest.mark.parametrize("kind", sorted(BAD_REASONS))
def test_bad_inputs_raise_video_decode_error(bad_files, kind):
    path = bad_files[kind]
    with pytest.raises(VideoDecodeError) as info:
        open_video(path)
    err = info.value
    assert err.source == str(path)
    assert str(path) in str(err)
    assert BAD_REASONS[kind] in err.reason
    assert not isinstance(err, av.FFmpegError)


def test_audio_only_lists_streams(bad_files):
    with pytest.raises(VideoDecodeError, match=r"streams present: audio"):
        open_video(bad_files["audio_only"])


def test_no_decoder_is_reported(monkeypatch):
    fake = SimpleNamespace(
        streams=SimpleNamespace(video=[SimpleNamespace(codec_context=None)], __iter__=lambda: iter([])),
        name="fake.mkv",
    )
    with pytest.raises(VideoDecodeError, match="no decoder"):
        first_video_stream(fake)  # type: ignore[arg-type]
    ctx = SimpleNamespace(is_decoder=False, name="weird", width=16, height=16, format="x")
    with pytest.raises(VideoDecodeError, match="no decoder for video codec 'weird'"):
        container_mod._check_decodable(SimpleNamespace(codec_context=ctx), "fake.mkv")  # type: ignore[arg-type]
    ctx = SimpleNamespace(is_decoder=True, name="h264", width=16, height=16, format=None)
    with pytest.raises(VideoDecodeError, match="pixel format"):
        container_mod._check_decodable(SimpleNamespace(codec_context=ctx), "fake.mkv")  # type: ignore[arg-type]


def test_file_url_and_remote_url(small_h264_clip):
    url = "file://" + str(small_h264_clip.path)
    assert resolve_video_path(url) == small_h264_clip.path
    with open_video(url) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    with pytest.raises(VideoDecodeError, match="scheme 'https'"):
        open_video("https://example.com/a.mp4")


def test_stream_info_mp4(cfr_mp4):
    with open_video(cfr_mp4.path) as c:
        info = stream_info(c)
        assert first_video_stream(c).index == c.streams.video[0].index
        assert {s.type for s in c.streams} == {"video", "audio"}
    assert isinstance(info, StreamInfo)
    assert info.codec_name == "h264"
    assert (info.width, info.height) == (160, 96)
    assert info.fps == pytest.approx(25.0)
    assert info.total_frames == cfr_mp4.num_frames == 75
    assert info.total_frames_source == "header"
    assert info.duration == pytest.approx(3.0)
    assert isinstance(info.time_base, Fraction)
    assert info.start_time == 0.0
    assert info.rotation == 0
    assert info.pix_fmt == "yuv420p"
    assert info.has_b_frames is True


def test_stream_info_estimates_without_header_count(cfr_mkv):
    with open_video(cfr_mkv.path) as c:
        info = stream_info(c)
    assert info.total_frames_source == "duration"
    assert abs(info.total_frames - cfr_mkv.num_frames) <= 1  # Matroska: duration*fps estimate


def test_stream_info_no_bframes_and_rotation(make_clip):
    clip = make_clip("rot90.mp4", seconds=0.4, size=(64, 48), bframes=0, object_size=16, rotation=90)
    with open_video(clip.path) as c:
        info = stream_info(c)
        assert stream_info(c, probe_rotation=False).rotation == 0
    assert info.rotation == 90
    assert info.has_b_frames is False


def test_decode_error_policy_counts_runs_and_totals():
    run = DecodeErrorPolicy(max_consecutive=2).count()
    assert [run.failed(), run.failed()] == [False, False]
    run.succeeded()  # a good packet ends the run
    assert [run.failed(), run.failed(), run.failed()] == [False, False, True]
    total = DecodeErrorPolicy(max_total=2).count()
    outcome = []
    for _ in range(3):
        outcome.append(total.failed())
        total.succeeded()  # good packets in between do not reset a total
    assert outcome == [False, False, True]
    assert not any(DecodeErrorPolicy().count().failed() for _ in range(1000))


def test_the_two_decode_loops_policies():
    assert DecodeErrorPolicy(max_consecutive=MAX_CONSECUTIVE_DECODE_ERRORS) == READER_ERROR_POLICY
    assert DecodeErrorPolicy(max_total=64) == ONE_PASS_ERROR_POLICY
    assert issubclass(av.error.MemoryError, AV_ERRORS)  # FFmpeg ENOMEM on damaged data is a decode error

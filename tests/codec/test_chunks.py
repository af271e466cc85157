"""Decode chunks (``codec/chunks.py``) and chunked decoding (``codec/decode_pool.py``): the split rule, the
seek with its fallback, and that every way of decoding the chunks gives the tokens of one single pass."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from transformers_llava_ov2.codec import decode, signals
from transformers_llava_ov2.codec.chunks import DecodeChunk, plan_chunks, split_positions
from transformers_llava_ov2.codec.config import CodecConfig
from transformers_llava_ov2.codec.decode import DecodedFrame, DecodeReport
from transformers_llava_ov2.codec.decode_pool import ChunkPool, decode_chunks
from transformers_llava_ov2.codec.pipeline import tokenize_video
from transformers_llava_ov2.codec.probe import probe_video
from transformers_llava_ov2.errors import VideoDecodeError

from .test_decode_thread import _mutate, _same_tokens


@pytest.fixture(scope="session")
def idr_clip(make_clip):
    """6 s, 25 fps H.264 with B-frames and a closed GOP (IDR) every 30 frames (150 frames)."""
    return make_clip(
        "chunks_idr.mp4", seconds=6.0, size=(192, 128), bframes=2, gop=30, object_size=32, velocity=(4, 2)
    )


def _x264_clip(
    path: Path, params: str, frames: int = 120, fmt: str | None = None, codec: str = "libx264"
) -> Path:
    """A moving square encoded by libx264 with ``x264-params`` ``params`` (``fmt``: container format);
    another ``codec`` gets a keyframe every 25 frames and no B-frames instead."""
    rng = np.random.default_rng(3)
    background = rng.integers(0, 255, (128, 192, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 192, 128, "yuv420p"
        if codec == "libx264":
            stream.codec_context.options = {"x264-params": params, "preset": "veryfast"}
        else:
            stream.codec_context.gop_size, stream.codec_context.max_b_frames = 25, 0
        for i in range(frames):
            img = background.copy()
            x, y = (4 * i) % 150, (2 * i) % 90
            img[y : y + 32, x : x + 32] = (250, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def open_gop_clip(tmp_path_factory):
    """H.264 with open GOPs: its keyframes after the first are non-IDR I pictures (recovery points)."""
    return _x264_clip(
        tmp_path_factory.mktemp("chunks") / "open_gop.mp4",
        "keyint=30:min-keyint=30:scenecut=0:open-gop=1:bframes=2",
    )


@pytest.fixture(scope="session")
def raw_h264_clip(tmp_path_factory):
    """A raw Annex-B H.264 elementary stream (no pts, no index: seeking cannot be checked)."""
    return _x264_clip(
        tmp_path_factory.mktemp("chunks") / "raw.h264",
        "keyint=30:min-keyint=30:scenecut=0:bframes=0",
        fmt="h264",
    )


def _idr_chunks(probe) -> tuple[DecodeChunk, ...]:
    """One chunk per IDR (decode positions of the IDR frames), whatever the split rule says."""
    starts = [*sorted(int(probe.decode_order[i]) for i in np.flatnonzero(probe.idr)), probe.total_frames]
    display_of = np.argsort(probe.decode_order)
    return tuple(
        DecodeChunk(a, b, int(display_of[a]), int(probe.pts[display_of[a]]), b == probe.total_frames)
        for a, b in itertools.pairwise(starts)
    )


def _starts(chunks: tuple[DecodeChunk, ...]) -> list[int]:
    return [c.start for c in chunks]


def _equal_tokens(a, b) -> bool:
    return (
        np.array_equal(a.canvases, b.canvases)
        and np.array_equal(a.source_positions, b.source_positions)
        and np.array_equal(a.canvas_roles, b.canvas_roles)
        and np.array_equal(a.canvas_groups, b.canvas_groups)
    )


# ------------------------------------------------------------------------------------------- the rule
def test_closed_gops_split_at_every_idr_and_short_chunks_merge(idr_clip):
    probe = probe_video(idr_clip.path)
    assert np.flatnonzero(probe.idr).tolist() == [0, 30, 60, 90, 120]
    assert split_positions(probe).tolist() == [int(probe.decode_order[i]) for i in (30, 60, 90, 120)]
    every = plan_chunks(probe, probe.total_frames - 1, min_packets=1)
    assert _starts(every) == [int(probe.decode_order[i]) for i in (0, 30, 60, 90, 120)]
    assert [c.first_frame for c in every] == [0, 30, 60, 90, 120]
    assert [c.last for c in every] == [False] * 4 + [True]
    assert (
        all(a.stop == b.start for a, b in itertools.pairwise(every)) and every[-1].stop == probe.total_frames
    )
    # at least 48 packets each: 0-59 and 60-149 (the short tail 120-149 joins the chunk before it)
    merged = plan_chunks(probe, probe.total_frames - 1, min_packets=48)
    assert [(c.first_frame, c.stop) for c in merged] == [(0, 60), (60, 150)]


def test_chunks_after_the_last_needed_frame_are_dropped(idr_clip):
    probe = probe_video(idr_clip.path)
    chunks = plan_chunks(probe, 45, min_packets=1)
    assert [c.first_frame for c in chunks] == [0, 30] and not chunks[-1].last


def test_open_gop_and_frame_order_numbering_do_not_split(open_gop_clip, idr_clip):
    probe = probe_video(open_gop_clip)
    assert probe.keyframe.sum() > 1 and probe.idr.sum() == 1  # keyframes, but only the first is an IDR
    assert len(plan_chunks(probe, probe.total_frames - 1, min_packets=1)) == 1
    idr = probe_video(idr_clip.path)
    assert len(plan_chunks(idr, idr.total_frames - 1, index_by_order=True, min_packets=1)) == 1


def test_mpeg2_without_b_frames_splits_at_i_pictures(tmp_path):
    path = _x264_clip(tmp_path / "i_p.mpg", "", frames=100, fmt="mpeg", codec="mpeg2video")
    probe = probe_video(path)
    assert probe.codec_name == "mpeg2video" and not probe.has_b_frames
    assert [c.first_frame for c in plan_chunks(probe, probe.total_frames - 1, min_packets=1)] == [
        0,
        25,
        50,
        75,
    ]


def test_mpeg4_and_streams_without_their_own_pts_do_not_split(make_clip, raw_h264_clip):
    """MPEG-4 part 2 may pack B-VOPs behind a P/I-VOP (the probe sees one VOP per packet); a raw
    elementary stream's pts are made up by the probe, so a seek could not be checked."""
    clip = make_clip("chunks_mpeg4.avi", codec="mpeg4", seconds=4.0, size=(160, 96), gop=25, bframes=0)
    mpeg4 = probe_video(clip.path)
    assert mpeg4.pict_type.tolist().count(1) == 4 and len(split_positions(mpeg4)) == 0
    raw = probe_video(raw_h264_clip)
    assert raw.pts_filled and raw.idr.sum() == 4 and len(split_positions(raw)) == 0
    assert len(plan_chunks(raw, raw.total_frames - 1, min_packets=1)) == 1


def test_a_chunk_needs_a_valid_range():
    with pytest.raises(ValueError, match="invalid decode chunk"):
        DecodeChunk(start=5, stop=5, first_frame=0, start_pts=0, last=False)


def test_decode_workers_is_validated():
    with pytest.raises(ValueError, match="decode_workers"):
        CodecConfig(decode_workers=0)


# ------------------------------------------------------------------------------------ opening a chunk
@pytest.mark.parametrize(("which", "opens"), [("idr_clip", 1), ("raw_h264_clip", 2)])
def testopen_chunk_hands_out_exactly_the_chunk_packets(which, opens, request, monkeypatch):
    """MP4: the seek lands on the chunk's IDR (one open); a raw stream cannot be checked after a seek, so
    it is demuxed from the start (a second open) and counted."""
    clip = request.getfixturevalue(which)
    path = clip.path if hasattr(clip, "path") else clip
    probe = probe_video(path)
    display_of = np.argsort(probe.decode_order)
    chunks = _idr_chunks(probe)  # also where the rule does not split (the raw stream's made-up pts)
    assert len(chunks) >= 4
    real_open, calls = av.open, []
    monkeypatch.setattr(decode.av, "open", lambda *a, **k: calls.append(a) or real_open(*a, **k))
    for chunk in chunks:
        calls.clear()
        container, packets = decode.open_chunk(path, probe, chunk)
        with container:
            sizes = [p.size for p in packets if p.size]
        want = probe.sizes[display_of[chunk.start : chunk.stop]].tolist()
        assert sizes == want, chunk
        assert len(calls) == (1 if chunk.start == 0 else opens), chunk


# ------------------------------------------------------------------------- chunked = one single pass
def _single_pass(monkeypatch):
    """Make the signals decode the whole stream in one decoder (no chunks)."""
    monkeypatch.setattr(
        signals,
        "plan_chunks",
        lambda probe, last, **kw: (DecodeChunk(0, probe.total_frames, 0, int(probe.pts[0]), True),),
    )


def test_every_way_of_decoding_the_chunks_gives_the_single_pass_tokens(idr_clip, monkeypatch):
    path = idr_clip.path
    probe = probe_video(path)
    assert len(plan_chunks(probe, probe.total_frames - 1)) >= 2  # the default rule does split these clips
    runs = {
        f"{kw}": tokenize_video(path, max_visual_tokens=2048, **kw)
        for kw in (
            {"decode_workers": 1},
            {"decode_workers": 2},
            {"decode_workers": 3},
            {"decode_thread": False},
        )
    }
    with monkeypatch.context() as m:
        _single_pass(m)
        single = tokenize_video(path, max_visual_tokens=2048, decode_workers=1)
    for name, run in runs.items():
        assert _equal_tokens(run, single), name
        for key in ("frames_decoded", "frames_skipped", "candidates_decoded", "frames_with_mvs"):
            assert run.backend_info[key] == single.backend_info[key], (name, key)
        assert "decode_errors" not in run.backend_info and "truncated" not in run.backend_info


# ------------------------------------------------------------------------------------------ the pool
def _fake_chunks(n: int) -> tuple[DecodeChunk, ...]:
    return tuple(DecodeChunk(10 * i, 10 * i + 10, 10 * i, 10 * i, i == n - 1) for i in range(n))


def _fake_decoder(fail_at: int | None = None, stop_at: int | None = None, delay: float = 0.0):
    """Each chunk yields its 10 frames one per batch (chunk 0 slowest); optional failure / early stop."""

    def run(chunk: DecodeChunk, part: DecodeReport):
        for i in range(chunk.start, chunk.stop):
            if i == fail_at:
                raise RuntimeError(f"broken packet {i}")
            if delay and chunk.start == 0:
                threading.Event().wait(delay)
            part.frames_decoded += 1
            part.last_index = i
            yield [DecodedFrame(i, i)]
            if i == stop_at:
                part.stopped_early = True
                return

    return run


def _indices(source) -> list[int]:
    return [ev.index for batch in source for ev in batch]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_pool_yields_the_chunks_in_order(workers):
    chunks = _fake_chunks(5)
    serial_report, pool_report = DecodeReport(), DecodeReport()
    serial = _indices(decode_chunks(chunks, _fake_decoder(), serial_report))
    pooled = _indices(ChunkPool(chunks, _fake_decoder(delay=0.002), pool_report, workers, max_queued=3))
    assert serial == pooled == list(range(50))
    assert pool_report.frames_decoded == serial_report.frames_decoded == 50
    assert not pool_report.stopped_early and not serial_report.stopped_early


def _erroring_decoder(errors_per_chunk: int):
    """Each chunk records ``errors_per_chunk`` damaged packets (under the per-chunk cap) and goes on."""
    inner = _fake_decoder()

    def run(chunk: DecodeChunk, part: DecodeReport):
        part.errors.extend(f"decode: damaged {chunk.start}-{k}" for k in range(errors_per_chunk))
        yield from inner(chunk, part)

    return run


def test_the_damaged_packet_cap_counts_every_chunk_so_far():
    """40 errors a chunk: chunk 1 brings the pass over the one-pass cap of 64, so it ends there."""
    chunks = _fake_chunks(4)
    serial_report, pool_report = DecodeReport(), DecodeReport()
    serial = _indices(decode_chunks(chunks, _erroring_decoder(40), serial_report))
    pooled = _indices(ChunkPool(chunks, _erroring_decoder(40), pool_report, 2))
    assert serial == pooled == list(range(20))
    assert len(serial_report.errors) == len(pool_report.errors) == 80
    assert serial_report.stopped_early and pool_report.stopped_early


def test_dropped_trailing_chunks_do_not_hide_missing_frames():
    """The last kept chunk ended without reaching the last needed frame: not 'stopped early', so the
    pipeline can report the frames as missing."""
    chunks = _fake_chunks(3)[:2]  # chunk 2 dropped: chunk 1 is not the stream's last
    for source in (decode_chunks, lambda c, d, r: ChunkPool(c, d, r, 2)):
        report = DecodeReport()
        assert _indices(source(chunks, _fake_decoder(), report)) == list(range(20))
        assert not report.stopped_early


def test_a_decoder_that_fails_before_its_first_batch_reaches_the_consumer():
    def broken(chunk: DecodeChunk, part: DecodeReport):
        if chunk.start:
            raise OSError(f"cannot open chunk {chunk.start}")
        return _fake_decoder()(chunk, part)

    report = DecodeReport()
    with pytest.raises(OSError, match="cannot open chunk 10"):
        _indices(ChunkPool(_fake_chunks(3), broken, report, 2))
    assert report.frames_decoded == 10


def test_the_pool_stops_after_a_chunk_that_stopped_early_as_a_single_pass_would():
    chunks = _fake_chunks(4)
    serial_report, pool_report = DecodeReport(), DecodeReport()
    serial = _indices(decode_chunks(chunks, _fake_decoder(stop_at=14), serial_report))
    pooled = _indices(ChunkPool(chunks, _fake_decoder(stop_at=14), pool_report, 2))
    assert serial == pooled == list(range(15))
    assert serial_report.stopped_early and pool_report.stopped_early
    assert pool_report.frames_decoded == 15  # chunks decoded ahead are not counted


def test_a_worker_error_reaches_the_consumer_and_no_thread_outlives_it():
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="broken packet 23"):
        _indices(ChunkPool(_fake_chunks(5), _fake_decoder(fail_at=23), DecodeReport(), 2))
    assert not [
        t for t in threading.enumerate() if t.name.startswith("codec-decode-") and t.name not in before
    ]


def test_closing_the_consumer_early_stops_the_workers():
    pool = iter(ChunkPool(_fake_chunks(6), _fake_decoder(), DecodeReport(), 3, max_queued=1))
    assert next(pool)[0].index == 0
    pool.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name.startswith("codec-decode-")]


def test_the_pool_needs_workers_and_chunks():
    with pytest.raises(ValueError, match="workers >= 1"):
        ChunkPool(_fake_chunks(2), _fake_decoder(), DecodeReport(), 0)
    with pytest.raises(ValueError, match="workers >= 1"):
        ChunkPool((), _fake_decoder(), DecodeReport(), 2)


def test_hevc_idr_pictures_are_flagged(hevc_clip):
    probe = probe_video(hevc_clip.path)
    assert probe.idr[0] and not (probe.idr & ~probe.keyframe).any()
    assert len(split_positions(probe)) == int(probe.idr.sum()) - 1  # every later IDR is a clean split


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", range(8))
def test_damaged_streams_give_the_same_result_with_any_number_of_decoders(make_clip, tmp_path, case):
    """A fresh decoder per chunk: concealment may differ from one single pass, but never with the number
    of decoders, the decode thread, or run to run."""
    clip = make_clip(
        "chunks_fuzz.mp4", seconds=4.0, size=(96, 64), bframes=2, gop=24, object_size=16, faststart=True
    )
    assert len(plan_chunks(probe_video(clip.path), 10**9)) == 2
    path = tmp_path / f"fuzz_{case}.mp4"
    path.write_bytes(_mutate(Path(clip.path).read_bytes(), np.random.default_rng(4242 + case)))
    results = []
    for kw in ({"decode_workers": 1}, {"decode_workers": 2}, {"decode_thread": False}, {"decode_workers": 2}):
        try:
            results.append(tokenize_video(path, **kw))
        except VideoDecodeError as exc:
            assert str(path) in str(exc)
            results.append(str(exc))
    if isinstance(results[0], str):
        assert all(r == results[0] for r in results)
    else:
        for other in results[1:]:
            _same_tokens(results[0], other)
            assert other.backend_info.get("decode_errors") == results[0].backend_info.get("decode_errors")


@pytest.mark.parametrize("start", [10, 40])
def test_a_seek_that_lands_before_the_chunk_skips_to_its_first_packet(idr_clip, start, monkeypatch):
    """Seeking to a packet past a keyframe lands on that keyframe (position 0 or 30): the packets up to
    the chunk's start are skipped, without opening the file again."""
    probe = probe_video(idr_clip.path)
    display_of = np.argsort(probe.decode_order)
    chunk = DecodeChunk(start, start + 20, int(display_of[start]), int(probe.pts[display_of[start]]), False)
    real_open, calls = av.open, []
    monkeypatch.setattr(decode.av, "open", lambda *a, **k: calls.append(a) or real_open(*a, **k))
    container, packets = decode.open_chunk(idr_clip.path, probe, chunk)
    with container:
        sizes = [p.size for p in packets if p.size]
    assert sizes == probe.sizes[display_of[start : start + 20]].tolist()
    assert len(calls) == 1

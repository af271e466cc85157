"""Stage 1: picture types from the bitstream agree with the decoder; probe facts are right."""

from __future__ import annotations

import av
import numpy as np
import pytest

from transformers_llava_ov2.codec.bitstream import (
    PICT_B,
    PICT_I,
    PICT_P,
    BitReader,
    PictureTypeParser,
    strip_emulation_prevention,
)
from transformers_llava_ov2.codec.probe import probe_video
from transformers_llava_ov2.video.container import stream_info


def _decoded_types(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.asarray([int(f.pict_type) for f in c.decode(video=0)], dtype=np.int8)


@pytest.mark.parametrize("fixture", ["h264_b_clip", "hevc_clip", "hevc_mkv_clip", "mpeg4_clip", "mjpeg_clip"])
def test_picture_types_match_decoder(request, fixture):
    clip = request.getfixturevalue(fixture)
    probe = probe_video(clip.path)
    decoded = _decoded_types(clip.path)
    assert probe.total_frames == len(decoded) == clip.num_frames
    np.testing.assert_array_equal(probe.pict_type, decoded)
    if fixture in ("h264_b_clip", "hevc_clip", "mpeg4_clip"):
        assert probe.has_b_frames and (probe.pict_type == PICT_B).any()
        assert (probe.pict_type == PICT_P).any() and probe.pict_type[0] == PICT_I


def test_h264_mkv_and_annexb_packets(make_clip):
    clip = make_clip("codec_h264_b.mkv", seconds=2.0, size=(192, 128), bframes=3, preset="veryfast")
    probe = probe_video(clip.path)
    np.testing.assert_array_equal(probe.pict_type, _decoded_types(clip.path))
    # the same packets converted to Annex-B start codes parse identically without an avcC record
    with av.open(str(clip.path)) as c:
        stream = c.streams.video[0]
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        parser = PictureTypeParser("h264", None)
        types = {}
        for packet in c.demux(stream):
            for out in bsf.filter(packet):
                if out.size:
                    assert bytes(out)[:4] == b"\x00\x00\x00\x01"
                    types[out.pts] = parser(bytes(out), out.is_keyframe)
    by_pts = np.asarray([types[p] for p in probe.pts], dtype=np.int8)
    np.testing.assert_array_equal(by_pts, probe.pict_type)


def test_raw_annexb_file_without_timestamps(annexb_clip):
    probe = probe_video(annexb_clip)
    assert probe.total_frames == 50 and probe.fps == pytest.approx(25.0)
    # no timestamps: frames are in decode order, the type multiset still matches the decoder
    assert sorted(probe.pict_type.tolist()) == sorted(_decoded_types(annexb_clip).tolist())


def test_probe_facts(h264_b_clip):
    probe = probe_video(h264_b_clip.path)
    assert probe.codec_name == "h264"
    assert (probe.width, probe.height) == (192, 128)
    assert probe.fps == pytest.approx(25.0)
    assert probe.duration == pytest.approx(2.0)
    np.testing.assert_allclose(probe.times, np.arange(50) / 25.0, atol=1e-6)
    assert np.all(np.diff(probe.pts) > 0)
    assert probe.keyframe[0] and probe.sizes.min() > 0
    with av.open(str(h264_b_clip.path)) as c:
        sizes = {p.pts: p.size for p in c.demux(video=0) if p.size}
    np.testing.assert_array_equal(probe.sizes, [sizes[p] for p in probe.pts])
    # reference flags: every I/P is a reference, and x264 leaves some B frames unreferenced
    assert probe.reference[probe.pict_type != PICT_B].all()
    assert not probe.reference[probe.pict_type == PICT_B].all()


def test_emulation_prevention_and_exp_golomb():
    assert (
        strip_emulation_prevention(b"\x00\x00\x03\x01\x00\x00\x03\x00\x05") == b"\x00\x00\x01\x00\x00\x00\x05"
    )
    assert strip_emulation_prevention(b"\x12\x34") == b"\x12\x34"
    # ue(v) codes 0, 1, 2, 3 = 1, 010, 011, 00100 -> 1010 0110 0100 ....
    reader = BitReader(bytes([0b10100110, 0b01000000]))
    assert [reader.ue() for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(EOFError):
        BitReader(b"\x00").ue()


def test_probe_speed(make_clip):
    """Demux + parse is fast (well over a thousand packets/s even on a loaded CI box)."""
    clip = make_clip("codec_long_small.mp4", seconds=60.0, fps=25, size=(96, 64), bframes=2, object_size=16)
    probe = probe_video(clip.path)
    assert probe.total_frames == 1500
    assert probe.total_frames / probe.probe_seconds > 1000


@pytest.mark.parametrize(("rotation", "seconds", "bframes"), [(90, 0.4, 2), (270, 0.04, 3), (0, 0.4, 0)])
def test_probe_reads_the_rotation_from_its_own_packets(make_clip, monkeypatch, rotation, seconds, bframes):
    """The display rotation comes from the first frame of the probe's own demux (one open, no second
    handle), also when that frame only leaves the decoder at the end of the stream (a one-frame clip)."""
    clip = make_clip(
        f"probe_rot{rotation}_{bframes}.mp4",
        seconds=seconds,
        size=(64, 48),
        bframes=bframes,
        object_size=16,
        rotation=rotation,
    )
    with av.open(str(clip.path)) as c:
        assert stream_info(c).rotation == rotation  # the frames back end's second-handle rule agrees
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    probe = probe_video(clip.path)
    assert probe.rotation == rotation and len(opened) == 1

"""``perf/bench_codec_frontend.py``: typed ``--variant`` overrides and one side-by-side run on a real clip."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench(perf_script):
    return perf_script("bench_codec_frontend")


def test_variant_values_take_the_config_field_types(bench):
    name, overrides = bench.parse_variant("candidates_per_canvas=4,mv_norm_floor=0,decode_thread=False")
    assert name == "candidates_per_canvas=4,mv_norm_floor=0,decode_thread=False"
    assert overrides == {"candidates_per_canvas": 4, "mv_norm_floor": 0.0, "decode_thread": False}
    assert type(overrides["mv_norm_floor"]) is float
    for bad in ("no_such_field=1", "candidates_per_canvas"):
        with pytest.raises(SystemExit, match="CodecConfig field=value"):
            bench.parse_variant(bad)


def test_side_by_side_times_each_variant(bench, make_clip, capsys):
    clip = make_clip("bench_frontend_b.mp4", seconds=2.0, size=(192, 128), bframes=2, velocity=(4, 2))
    _, overrides = bench.parse_variant("candidates_per_canvas=2")
    bench.side_by_side(Path(clip.path), 1, {"cpc2": overrides})
    out = capsys.readouterr().out
    assert "tokenize / plain decode" in out and "floor / plain decode" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("cpc2"))
    assert "candidates" in line and "x plain decode" in line
    assert "floor with 2 decoders on 1 decode chunks" in out  # 50 frames, one IDR: one chunk


def test_the_two_decoder_floor_decodes_every_chunk(bench, make_clip):
    clip = make_clip(
        "bench_frontend_gop.mp4", seconds=6.0, size=(160, 96), bframes=2, gop=50, velocity=(4, 2)
    )
    seconds, chunks = bench.decode_mvs_chunks(Path(clip.path))
    assert chunks == 3 and seconds > 0  # IDRs at 0, 50, 100 (150 frames, >= 48 packets each)


def test_alternate_runs_each_setting_in_fresh_processes(bench, make_clip, capsys):
    clip = make_clip("bench_frontend_ab.mp4", seconds=1.0, size=(160, 96), bframes=2, velocity=(4, 2))
    _, overrides = bench.parse_variant("kernels=numpy")
    bench.alternate(Path(clip.path), 1, {"kernels=numpy": overrides})
    out = capsys.readouterr().out
    lines = [x.strip() for x in out.splitlines() if "tokenize / plain decode" in x]
    assert [x.split(":")[0] for x in lines] == ["defaults", "kernels=numpy"]
    assert all("CPU" in x and "rounds" in x for x in lines)

"""Precompute: dataset walking, resume, failure log and counts, crash isolation, shards, CLI, Ray."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.store.conftest import assert_same_result
from transformers_llava_ov2.codec import CodecConfig, tokenize_video
from transformers_llava_ov2.store import FramesConfig, VideoStore
from transformers_llava_ov2.store.dataset import list_videos, parse_shard, select_shard
from transformers_llava_ov2.store.precompute import PrecomputeSpec, process_video, run_precompute


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory, clip_a, clip_b):
    """Two good clips (one in a subfolder), a corrupt .mp4 and a text file."""
    root = tmp_path_factory.mktemp("videos")
    shutil.copy(clip_a.path, root / "a.mp4")
    (root / "sub").mkdir()
    shutil.copy(clip_b.path, root / "sub" / "b.MP4")
    (root / "broken.mp4").write_bytes(os.urandom(4000))
    (root / "notes.txt").write_text("not a video")
    return root


def test_list_videos_folder_and_jsonl(tmp_path, video_dir):
    videos, bad = list_videos(video_dir)
    assert [os.path.relpath(v, video_dir) for v in videos] == [
        "a.mp4",
        "broken.mp4",
        "sub/b.MP4",
    ] and bad == []
    data = tmp_path / "d.jsonl"
    lines = [
        {"video": "a.mp4", "conversations": []},
        {"video": ["sub/b.MP4", str(video_dir / "a.mp4")]},
        {"image": "x.jpg"},
        {"video": 3},
    ]
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n\n")
    videos, bad = list_videos(data, video_root=video_dir)
    assert videos == [str(video_dir / "a.mp4"), str(video_dir / "sub/b.MP4")]
    assert [b.where.rsplit(":", 1)[1] for b in bad] == ["3", "4", "5"]
    assert "no 'video' field" in bad[0].reason and "invalid JSON" in bad[2].reason
    with pytest.raises(ValueError, match=r"expected a \.jsonl file"):
        list_videos(video_dir / "notes.txt")


def test_shards_partition_the_dataset():
    videos = [f"/v/{i}.mp4" for i in range(50)]
    parts = [select_shard(videos, i, 3) for i in range(3)]
    assert sorted(v for part in parts for v in part) == sorted(videos) and all(parts)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_precompute_counts_logs_and_resumes(tmp_path, video_dir):
    videos, _ = list_videos(video_dir)
    spec = PrecomputeSpec.create(tmp_path / "s", CodecConfig())
    log = tmp_path / "fail.jsonl"
    first = run_precompute(videos[:1], spec, workers=2, failure_log=log, progress=False)  # interrupted run
    assert (first.done, first.skipped, first.failed) == (1, 0, 0)
    store = VideoStore(tmp_path / "s")
    (key,) = store.keys()
    stamp = (store.entry_dir(key) / "meta.json").stat().st_mtime_ns
    (store.root / "tmp" / "leftover.1.x").mkdir()  # a killed writer's folder is ignored
    summary = run_precompute(
        videos,
        spec,
        workers=2,
        failure_log=log,
        pre_failed=[("d.jsonl:3", "BadRecord", "no 'video'")],
        progress=False,
    )
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (4, 1, 1, 2)
    assert summary.failed_by_reason == {"VideoDecodeError": 1, "BadRecord": 1}
    assert (store.entry_dir(key) / "meta.json").stat().st_mtime_ns == stamp  # not redone
    assert summary.video_seconds > 0 and summary.stored_bytes > 0 and summary.peak_rss_mb > 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(r["video"].rsplit("/", 1)[-1], r["reason"]) for r in records} == {
        ("d.jsonl:3", "BadRecord"),
        ("broken.mp4", "VideoDecodeError"),
    }
    assert_same_result(
        store.get(video_dir / "sub" / "b.MP4", CodecConfig()),
        tokenize_video(video_dir / "sub" / "b.MP4"),
        ignore=("stage_seconds", "source"),
    )
    again = run_precompute(videos, spec, workers=1, failure_log=log, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 2, 1)
    assert "failed by reason: VideoDecodeError: 1" in again.text()


def crash_on_b(spec, video):
    """A task whose worker dies on b.MP4 (as a decoder crash would)."""
    if video.endswith("b.MP4"):
        os._exit(7)
    return process_video(spec, video)


def test_a_crashing_worker_fails_only_its_video(tmp_path, video_dir):
    videos, _ = list_videos(video_dir)
    spec = PrecomputeSpec.create(tmp_path / "s", FramesConfig(max_frames=4))
    summary = run_precompute(videos, spec, workers=2, progress=False, task=crash_on_b)
    assert (summary.done, summary.failed) == (1, 2)
    assert summary.failed_by_reason == {"WorkerCrashed": 1, "VideoDecodeError": 1}
    assert len(list(VideoStore(tmp_path / "s").keys())) == 1


def test_cli_precompute_folder_with_overrides(tmp_path, video_dir, capsys):
    from transformers_llava_ov2.cli import main

    store = tmp_path / "s"
    argv = ["precompute", "--data", str(video_dir), "--store", str(store), "--backend", "frames", "-q"]
    argv += [
        "--num-frames",
        "4",
        "--set",
        "min_frames=2",
        "--workers",
        "1",
        "--summary-json",
        str(tmp_path / "x.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "done 2, skipped 0, failed 1" in out and "VideoDecodeError: 1" in out and "failures.jsonl" in out
    cfg = FramesConfig(fps=None, num_frames=4, min_frames=2)
    frames = VideoStore(store).get(video_dir / "a.mp4", cfg)
    assert frames is not None and frames.num_frames == 4
    assert json.loads((tmp_path / "x.json").read_text())["done"] == 2
    assert main([*argv[:-8], "-q", "--shard", "5/2"]) == 2
    assert "shard" in capsys.readouterr().err
    assert main(["precompute", "--data", str(tmp_path / "none"), "--store", str(store)]) == 2
    assert main([*argv[:8], "--set", "bogus=1"]) == 2
    assert "unknown FramesConfig field(s): bogus" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_engine_makes_the_same_store_as_the_local_engine(tmp_path, video_dir):
    pytest.importorskip("ray")
    videos, _ = list_videos(video_dir)
    local = PrecomputeSpec.create(tmp_path / "local", CodecConfig())
    ray_spec = PrecomputeSpec.create(tmp_path / "ray", CodecConfig())
    a = run_precompute(videos, local, workers=2, progress=False)
    b = run_precompute(videos, ray_spec, workers=2, engine="ray", progress=False)
    assert (a.done, a.failed) == (b.done, b.failed) == (2, 1)
    assert a.failed_by_reason == b.failed_by_reason
    sa, sb = VideoStore(tmp_path / "local"), VideoStore(tmp_path / "ray")
    keys = list(sa.keys())
    assert keys == list(sb.keys()) and len(keys) == 2
    for key in keys:
        x, y = sa.read(key), sb.read(key)
        assert_same_result(x, y, ignore=("stage_seconds", "source"))
        for name in ("arrays.npz", "images.npy"):
            assert np.array_equal(
                np.frombuffer((sa.entry_dir(key) / name).read_bytes(), np.uint8),
                np.frombuffer((sb.entry_dir(key) / name).read_bytes(), np.uint8),
            )


def test_shared_cpu_tasks_run_without_the_decode_thread(tmp_path, clip_a, monkeypatch):
    import dataclasses

    import transformers_llava_ov2.store.video_store as vs

    seen = []
    real = vs.compute_result
    monkeypatch.setattr(vs, "compute_result", lambda v, c: seen.append(c) or real(v, c))
    spec = dataclasses.replace(PrecomputeSpec.create(tmp_path / "s", CodecConfig()), decode_thread=False)
    VideoStore(tmp_path / "s")
    result = process_video(spec, str(clip_a.path))
    assert result["status"] == "done" and seen[0].decode_thread is False
    assert result["key"] == VideoStore(tmp_path / "s").key(clip_a.path, CodecConfig())  # same entry

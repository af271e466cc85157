"""VideoStore: bit-exact round trips, keys, atomic writes, integrity checks, concurrent writers."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import assert_same_result
from transformers_llava_ov2.codec import CodecConfig, tokenize_video
from transformers_llava_ov2.store import (
    CorruptEntryError,
    FramesConfig,
    StoreError,
    StoreWarning,
    VideoStore,
    entry_key,
    file_digest,
)
from transformers_llava_ov2.store import keys as keys_mod
from transformers_llava_ov2.store.config import NEUTRAL_FIELDS
from transformers_llava_ov2.video.uniform import sample_uniform_frames

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize("image_format", ["png", "npy"])
def test_codec_round_trip_is_bit_exact(tmp_path, clip_a, image_format):
    store = VideoStore(tmp_path / "s", image_format=image_format)
    direct = tokenize_video(clip_a.path)
    store.put(clip_a.path, CodecConfig(), direct)
    assert_same_result(store.get(clip_a.path, CodecConfig()), direct)
    assert store.get_or_compute(clip_a.path) is not None


def test_frames_round_trip_is_bit_exact(tmp_path, clip_a):
    store = VideoStore(tmp_path / "s")
    cfg = FramesConfig(fps=4.0, max_frames=8)
    direct = sample_uniform_frames(clip_a.path, **cfg.sampling_kwargs())
    computed = store.get_or_compute(clip_a.path, cfg)
    assert_same_result(computed, direct)
    assert_same_result(store.get(clip_a.path, cfg), direct)
    assert store.get(clip_a.path, cfg.replace(max_frames=6)) is None


def test_get_or_compute_computes_once(tmp_path, clip_a, monkeypatch):
    import transformers_llava_ov2.store.video_store as vs

    calls = []
    real = vs.compute_result
    monkeypatch.setattr(vs, "compute_result", lambda v, c: calls.append(v) or real(v, c))
    store = VideoStore(tmp_path / "s")
    first = store.tokenize_video(clip_a.path, max_visual_tokens=64)
    second = store.tokenize_video(clip_a.path, CodecConfig(max_visual_tokens=64))
    assert len(calls) == 1
    assert_same_result(first, second)
    meta = store.info(store.key(clip_a.path, CodecConfig(max_visual_tokens=64)))
    assert meta["source"]["path"] == str(Path(clip_a.path).absolute())
    assert meta["config"]["max_visual_tokens"] == 64 and meta["timings"]["compute_seconds"] > 0
    assert meta["num_tokens"] == first.num_tokens and meta["duration"] == first.duration


def test_jpeg_records_quality_and_is_close(tmp_path, clip_a):
    store = VideoStore(tmp_path / "s", image_format="jpeg", jpeg_quality=90)
    lossy = store.get_or_compute(clip_a.path, CodecConfig())
    direct = tokenize_video(clip_a.path)
    images = store.info(store.key(clip_a.path, CodecConfig()))["result"]["images"]
    assert images == {**images, "format": "jpeg", "quality": 90, "lossless": False}
    assert np.array_equal(lossy.source_positions, direct.source_positions)
    err = np.abs(lossy.canvases.astype(int) - direct.canvases.astype(int)).mean()
    # q90 on this saturated synthetic clip: 6.5 grey levels (the canvases' 4:2:0 chroma, as swscale's
    # unscaled converter upsamples it, costs JPEG more than the smooth chroma of a scaling conversion: 5.8)
    assert 0 < err < 8


def _alternative(config, name):
    """A valid value of field ``name`` different from the current one."""
    value = getattr(config, name)
    field_type = type(next(f.default for f in dataclasses.fields(config) if f.name == name))
    if isinstance(value, bool):
        candidates = [not value]
    elif isinstance(value, str):
        from transformers_llava_ov2.codec.config import _CHOICES

        choices = {**_CHOICES, "rule": ("qwen", "processor")}
        candidates = [c for c in choices.get(name, ("pyav", "decord", "resample", "error")) if c != value]
    elif value is None:
        candidates = [4096, 3, 2.0]
    elif field_type is float or isinstance(value, float):
        candidates = [value * 1.5, value + 0.5, value * 0.5, value - 0.5, 0.25]
    else:
        candidates = [value + 1, value * 2, value - 1, value + 7]
    for c in candidates:
        if c == value:
            continue
        try:
            config.replace(**{name: c})
        except ValueError:
            continue
        return c
    raise AssertionError(f"no alternative value for {name}")


@pytest.mark.parametrize("config", [CodecConfig(), FramesConfig()], ids=["codec", "frames"])
def test_key_changes_with_every_config_field_and_not_otherwise(config):
    digest = "blake2b-256:" + "0" * 64
    base = entry_key(digest, config)
    backend = "codec" if isinstance(config, CodecConfig) else "frames"
    assert entry_key(digest, config.replace()) == base
    for f in dataclasses.fields(config):
        changed = entry_key(digest, config.replace(**{f.name: _alternative(config, f.name)}))
        if f.name in NEUTRAL_FIELDS[backend]:
            assert changed == base, f.name
        else:
            assert changed != base, f.name
    assert entry_key("blake2b-256:" + "1" * 64, config) != base
    assert entry_key(digest, config, format_version=2) != base


def test_key_follows_content_not_name(tmp_path, clip_a, clip_b):
    copy = tmp_path / "renamed.mp4"
    shutil.copy(clip_a.path, copy)
    store = VideoStore(tmp_path / "s")
    assert store.key(copy, CodecConfig()) == store.key(clip_a.path, CodecConfig())
    assert store.key(clip_b.path, CodecConfig()) != store.key(clip_a.path, CodecConfig())
    assert entry_key(file_digest(copy), CodecConfig(bin_seconds=1)) == entry_key(
        file_digest(copy), CodecConfig(bin_seconds=1.0)
    )
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    assert store.key(copy, CodecConfig()) != store.key(clip_a.path, CodecConfig())


def test_frames_defaults_are_the_video_processors():
    from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor as P

    cfg = FramesConfig()
    assert (cfg.fps, cfg.num_frames, cfg.min_frames, cfg.max_frames, cfg.backend) == (
        P.fps,
        P.num_frames,
        P.min_frames,
        P.max_frames,
        P.decode_backend,
    )


def test_path_index_avoids_rehashing_and_tracks_changes(tmp_path, clip_a, monkeypatch):
    video = tmp_path / "v.mp4"
    shutil.copy(clip_a.path, video)
    calls = []
    monkeypatch.setattr(
        "transformers_llava_ov2.store.video_store.file_digest", lambda p: calls.append(p) or file_digest(p)
    )
    store = VideoStore(tmp_path / "s")
    key = store.key(video, CodecConfig())
    assert VideoStore(tmp_path / "s").key(video, CodecConfig()) == key  # a fresh process: the path index
    assert len(calls) == 1
    os.utime(video, ns=(1, 1))  # same bytes, new mtime: hashed again, same key
    assert store.key(video, CodecConfig()) == key and len(calls) == 2
    store.put(video, CodecConfig(), tokenize_video(video))
    video.unlink()  # absent video: resolved through the path index
    assert store.get(video, CodecConfig()) is not None
    assert store.get(tmp_path / "never.mp4", CodecConfig()) is None


def test_not_a_store_and_bad_arguments(tmp_path, clip_a):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(StoreError, match="not a video store"):
        VideoStore(tmp_path / "other")
    with pytest.raises(StoreError, match="does not exist"):
        VideoStore(tmp_path / "absent", create=False)
    with pytest.raises(ValueError, match="image format"):
        VideoStore(tmp_path / "s", image_format="gif")
    store = VideoStore(tmp_path / "s")
    with pytest.raises(TypeError, match="holds SampledFrames"):
        store.put(clip_a.path, FramesConfig(), tokenize_video(clip_a.path))
    with pytest.raises(ValueError, match="unknown FramesConfig field"):
        FramesConfig().replace(fsp=2)


def test_exception_before_rename_leaves_nothing(tmp_path, clip_a, monkeypatch):
    import transformers_llava_ov2.store.entry as entry

    store = VideoStore(tmp_path / "s")
    tokens = tokenize_video(clip_a.path)

    def boom(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(entry.os, "rename", boom)
    with pytest.raises(OSError, match="disk vanished"):
        store.put(clip_a.path, CodecConfig(), tokens)
    monkeypatch.undo()
    assert store.get(clip_a.path, CodecConfig()) is None
    assert list(store.keys()) == [] and list((store.root / "tmp").iterdir()) == []


def test_killed_writer_leaves_nothing_readable(tmp_path, clip_a):
    root = tmp_path / "s"
    script = textwrap.dedent(
        f"""
        import os, signal
        import transformers_llava_ov2.store.entry as entry
        from transformers_llava_ov2.store import VideoStore
        from transformers_llava_ov2.codec import CodecConfig
        entry.os.rename = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)  # killed at the last step
        VideoStore({str(root)!r}).get_or_compute({str(clip_a.path)!r}, CodecConfig())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": SRC, "TRANSFORMERS_LLAVA_OV2_DEFER_REGISTRATION": "1"},
        timeout=120,
    )
    assert proc.returncode == -9
    store = VideoStore(root)
    assert store.get(clip_a.path, CodecConfig()) is None and list(store.keys()) == []
    (leftover,) = (root / "tmp").iterdir()  # the killed writer's complete-looking temporary folder
    assert (leftover / "_DONE").is_file()
    assert store.clean_tmp(max_age_seconds=0) == 1
    assert store.get_or_compute(clip_a.path, CodecConfig()) is not None


@pytest.mark.parametrize(("image_format", "victim"), [("png", "images/000001.png"), ("npy", "images.npy")])
def test_corruption_is_detected_and_recomputed(tmp_path, clip_a, image_format, victim):
    store = VideoStore(tmp_path / "s", image_format=image_format)
    good = store.get_or_compute(clip_a.path, CodecConfig())
    key = store.key(clip_a.path, CodecConfig())
    path = store.entry_dir(key) / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError, match=f"store entry {key} .*{victim} checksum mismatch"):
        store.get(clip_a.path, CodecConfig())
    with pytest.warns(StoreWarning, match="recomputing"):
        again = store.get_or_compute(clip_a.path, CodecConfig())
    assert_same_result(again, good, ignore=("stage_seconds",))
    (store.entry_dir(key) / "_DONE").unlink()
    with pytest.raises(CorruptEntryError, match="no _DONE marker"):
        store.get(clip_a.path, CodecConfig())
    store.delete(key)
    assert store.get(clip_a.path, CodecConfig()) is None


def test_truncated_file_is_detected_without_checksums(tmp_path, clip_a):
    store = VideoStore(tmp_path / "s", verify=False)
    store.get_or_compute(clip_a.path, CodecConfig())
    key = store.key(clip_a.path, CodecConfig())
    npz = store.entry_dir(key) / "arrays.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(CorruptEntryError, match=r"arrays\.npz has 100 bytes"):
        store.get(clip_a.path, CodecConfig())


def _concurrent_writer(root: str, video: str, barrier, queue) -> None:
    store = VideoStore(root)
    tokens = tokenize_video(video)
    barrier.wait()
    key = store.put(video, CodecConfig(), tokens)
    queue.put(key)


def test_two_concurrent_writers_leave_one_valid_entry(tmp_path, clip_a):
    ctx = mp.get_context("fork")
    root = str(tmp_path / "s")
    VideoStore(root)
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_concurrent_writer, args=(root, clip_a.path, barrier, queue)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    keys = {queue.get(timeout=5), queue.get(timeout=5)}
    store = VideoStore(root)
    assert list(store.keys()) == sorted(keys) and len(keys) == 1
    assert_same_result(
        store.get(clip_a.path, CodecConfig()), tokenize_video(clip_a.path), ignore=("stage_seconds",)
    )
    assert list((Path(root) / "tmp").iterdir()) == []
    meta = json.loads((store.entry_dir(keys.pop()) / "meta.json").read_text())
    assert meta["format"]["version"] == keys_mod.FORMAT_VERSION

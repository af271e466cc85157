"""Export to / import from the official pipeline's layouts: offline samples and codec asset folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.store.conftest import assert_same_result
from transformers_llava_ov2.codec import CodecConfig, tokenize_video
from transformers_llava_ov2.store import FramesConfig, VideoStore
from transformers_llava_ov2.store.images import decode_image
from transformers_llava_ov2.store.official import (
    export_codec_assets,
    export_offline_sample,
    import_codec_assets,
    import_codec_assets_into_store,
)
from transformers_llava_ov2.video.uniform import sample_uniform_frames
from transformers_llava_ov2.video_types import raster_to_block_order


@pytest.fixture(scope="module")
def tokens(clip_a):
    return tokenize_video(clip_a.path)


def _official_encoder(folder, sample):
    """What the official encoder derives from a sample: block-ordered positions and the timestamp tags."""
    blocks, ts = [], []
    for name in sample["patch_positions"]:
        pos = np.load(folder / name)
        img = decode_image(
            (folder / sample["images"][sample["patch_positions"].index(name)]).read_bytes(), name
        )
        gh, gw = img.shape[0] // 14, img.shape[1] // 14
        assert len(pos) == gh * gw
        blocks.append(pos[raster_to_block_order(gh, gw, 2)])  # convert_positions_to_block_layout
    positions = np.concatenate(blocks)
    ts = [
        f"<{t / sample['fps']:.{sample['timestamp_decimal']}f} seconds>" for t in np.unique(positions[:, 0])
    ]
    return positions, ts


def test_offline_sample_of_codec_tokens_is_what_the_processor_feeds(tmp_path, tokens):
    from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    sample = export_offline_sample(
        tokens, tmp_path, image_format="png", prompt="What happens?", answer="A ball."
    )
    assert json.loads((tmp_path / "sample.json").read_text()) == sample
    n = tokens.num_canvases
    assert len(sample["images"]) == len(sample["patch_positions"]) == n
    assert sample["messages"][0]["content"] == "\n".join(["<image>"] * n) + "\nWhat happens?"
    assert sample["fps"] == tokens.fps and sample["timestamp_decimal"] == 1
    for i, name in enumerate(sample["images"]):
        assert np.array_equal(decode_image((tmp_path / name).read_bytes(), name), tokens.canvases[i])
    positions, tags = _official_encoder(tmp_path, sample)
    arrays, info = LlavaOnevision2VideoProcessor().process_one(tokens)
    assert np.array_equal(positions, arrays["positions"])
    assert sorted(set(tags)) == sorted({f"<{t:.1f} seconds>" for t in info.timestamps})


def test_offline_sample_of_frames_matches_the_processor_grid(tmp_path, clip_a):
    from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    frames = sample_uniform_frames(clip_a.path, **FramesConfig(fps=2.0, max_frames=4).sampling_kwargs())
    sample = export_offline_sample(frames, tmp_path, timestamp_decimal=2)
    vp = LlavaOnevision2VideoProcessor()
    arrays, info = vp.process_one(frames, video_layout="training")
    positions, tags = _official_encoder(tmp_path, sample)
    assert np.array_equal(positions, arrays["positions"])  # training layout: t = source frame index
    assert tags == [f"<{t:.2f} seconds>" for t in info.timestamps]
    with pytest.raises(ValueError, match="image_format"):
        export_offline_sample(frames, tmp_path, image_format="gif")


def test_codec_assets_round_trip_exact_with_png(tmp_path, tokens):
    folder = export_codec_assets(tokens, tmp_path / "assets", image_format="png")
    names = {p.name for p in folder.iterdir()}
    assert {"canvas_000.png", "src_patch_position.npy", "frame_ids.npy", "meta.json", "_DONE"} <= names
    assert np.array_equal(np.load(folder / "src_patch_position.npy"), tokens.source_positions)
    cells = np.load(folder / "patch_position.npy")
    assert cells[:, 0].tolist() == tokens.token_canvas.tolist() and cells[:, 1:].max(0).tolist() == [
        tokens.grid_hw[0] - 1,
        tokens.grid_hw[1] - 1,
    ]
    back = import_codec_assets(folder, source=tokens.source)
    assert_same_result(back, tokens)


def test_official_style_assets_and_jpeg_import_into_store(tmp_path, clip_a, tokens):
    folder = export_codec_assets(tokens, tmp_path / "assets", jpeg_quality=95)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["llava_ov2"]  # as the official tool writes it: no embedded typed result
    (folder / "meta.json").write_text(json.dumps(meta))
    back = import_codec_assets(folder)
    assert np.array_equal(back.source_positions, tokens.source_positions)
    assert np.array_equal(back.canvas_roles, tokens.canvas_roles)
    assert np.array_equal(back.canvas_groups, tokens.canvas_groups)
    assert np.array_equal(back.token_timestamps, tokens.source_positions[:, 0] / tokens.fps)
    assert [g.anchor_frame for g in back.groups] == [g.anchor_frame for g in tokens.groups]
    assert (
        np.abs(back.canvases.astype(int) - tokens.canvases.astype(int)).mean() < 10
    )  # JPEG q95, 4:2:0, on a high-frequency synthetic texture
    store = VideoStore(tmp_path / "s")
    key = import_codec_assets_into_store(store, folder, clip_a.path)
    assert key == store.key(clip_a.path, CodecConfig())
    assert store.info(key)["extra"]["imported_from"] == str(folder.absolute())
    assert np.array_equal(store.get(clip_a.path, CodecConfig()).canvases, back.canvases)


def test_bad_asset_folders_are_named(tmp_path, tokens):
    folder = export_codec_assets(tokens, tmp_path / "a", image_format="png")
    (folder / "_DONE").unlink()
    with pytest.raises(ValueError, match="has no _DONE marker"):
        import_codec_assets(folder)
    (folder / "_DONE").write_text("")
    pos = np.load(folder / "src_patch_position.npy")
    pos[-4:] = -1
    np.save(folder / "src_patch_position.npy", pos)
    with pytest.raises(ValueError, match="padding tokens"):
        import_codec_assets(folder)
    with pytest.raises(ValueError, match="merge 2, the config says 14 / 1"):
        np.save(folder / "src_patch_position.npy", tokens.source_positions)
        import_codec_assets_into_store(
            VideoStore(tmp_path / "s"), folder, tokens.source, CodecConfig(merge_size=1)
        )

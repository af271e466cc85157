"""The pictures of ``transformers_llava_ov2.report.plots`` on hand-built inputs."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.cli.fakes import fake_codec_tokens, fake_sampled_frames
from transformers_llava_ov2.report import plots as viz
from transformers_llava_ov2.video_types import ROLE_P


def _png(fig, path):
    viz.save_figure(fig, path)
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        return img.size


def test_all_codec_pictures_render(tmp_path):
    tokens = fake_codec_tokens()
    w, h = _png(viz.plot_bitcost_timeline(tokens), tmp_path / "t.png")
    assert w >= 800 and h >= 400
    w, h = _png(viz.plot_canvases(tokens), tmp_path / "c.png")
    assert w >= 800 and h >= 300
    w, h = _png(viz.plot_kept_heatmap(tokens), tmp_path / "k.png")
    assert w >= 800 and h >= 400


def test_contact_sheet_renders(tmp_path):
    w, h = _png(viz.plot_contact_sheet(fake_sampled_frames(6)), tmp_path / "s.png")
    assert w >= 600 and h >= 200


def test_kept_patch_counts_add_up():
    tokens = fake_codec_tokens(groups=2)
    total = viz.kept_patch_counts(tokens)
    assert total.shape == (tokens.source_frame_size[0] // 14, tokens.source_frame_size[1] // 14)
    assert total.sum() == tokens.num_patches
    per_group = viz.kept_patch_counts(tokens, by_group=True, role=ROLE_P)
    assert per_group.shape[0] == 2
    assert per_group.sum() == int((tokens.token_role == ROLE_P).sum())


def test_token_counts_per_frame():
    tokens = fake_codec_tokens(groups=2)
    frames, ts, counts = viz.token_counts_per_frame(tokens)
    assert np.all(np.diff(frames) > 0)
    assert counts.sum() == tokens.num_patches
    np.testing.assert_allclose(ts, frames / tokens.fps)


def test_timeline_without_timeline_data(tmp_path):
    import dataclasses

    tokens = dataclasses.replace(fake_codec_tokens(groups=1), timeline=None)
    _png(viz.plot_bitcost_timeline(tokens), tmp_path / "t.png")

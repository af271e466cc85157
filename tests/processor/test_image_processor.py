"""Image processor: bit-exact parity with the library's slow Qwen2-VL processor, plus patch positions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from transformers_llava_ov2.image_processing_llava_onevision2 import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    LlavaOnevision2ImageProcessor,
    build_patch_positions,
)
from transformers_llava_ov2.video_types import raster_to_block_order


def _images(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    rgb = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for h, w in [(90, 120), (333, 201), (700, 1000)]
    ]
    gray = Image.fromarray(rng.integers(0, 256, (50, 70), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (64, 48, 4), dtype=np.uint8), mode="RGBA")
    arr = rng.integers(0, 256, (120, 80, 3), dtype=np.uint8)
    return [*rgb, gray, rgba, arr]


def test_defaults_are_the_release_values():
    ip = LlavaOnevision2ImageProcessor()
    assert (ip.patch_size, ip.merge_size, ip.temporal_patch_size) == (14, 2, 1)
    assert (ip.size["shortest_edge"], ip.size["longest_edge"]) == (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS)
    assert (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS) == (200704, 1605632)
    assert ip.resample == 3  # BICUBIC
    assert tuple(ip.image_mean) == (0.48145466, 0.4578275, 0.40821073)


@pytest.mark.parametrize("budget", [{}, {"min_pixels": 3136, "max_pixels": 50176}])
def test_pixels_bit_exact_with_library_slow_processor(budget):
    images = _images()
    ref = Qwen2VLImageProcessorPil(
        temporal_patch_size=1,
        min_pixels=budget.get("min_pixels", DEFAULT_MIN_PIXELS),
        max_pixels=budget.get("max_pixels", DEFAULT_MAX_PIXELS),
    )(images, return_tensors="np")
    ours = LlavaOnevision2ImageProcessor()(images, return_tensors="np", **budget)
    assert ours["pixel_values"].shape[1] == 3 * 14 * 14
    assert ours["pixel_values"].dtype == ref["pixel_values"].dtype
    np.testing.assert_array_equal(ours["pixel_values"], ref["pixel_values"])
    np.testing.assert_array_equal(ours["image_grid_thw"], ref["image_grid_thw"])
    assert (ours["image_grid_thw"][:, 0] == 1).all()


def test_per_call_budget_needs_no_deprecation_warning(recwarn):
    LlavaOnevision2ImageProcessor()(_images()[:1], min_pixels=3136, max_pixels=12544)
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_patch_positions_block_order_and_t0():
    out = LlavaOnevision2ImageProcessor()(
        _images()[:3], min_pixels=3136, max_pixels=50176, return_tensors="pt"
    )
    pos = out["patch_positions"].numpy()
    grid = out["image_grid_thw"].numpy()
    assert pos.dtype == np.int64 and pos.shape == (out["pixel_values"].shape[0], 3)
    assert (pos[:, 0] == 0).all()
    start = 0
    for _, h, w in grid:
        rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        raster = np.stack([rr.reshape(-1), cc.reshape(-1)], -1)
        np.testing.assert_array_equal(pos[start : start + h * w, 1:], raster[raster_to_block_order(h, w, 2)])
        start += h * w


def test_pixel_rows_follow_the_positions():
    """Row i of pixel_values is the 14x14 patch at patch_positions[i] (checks the block order end to end)."""
    img = np.random.default_rng(1).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    ip = LlavaOnevision2ImageProcessor(do_normalize=False, do_rescale=False)
    out = ip([img], do_resize=False, return_tensors="np")
    for row, (_, h, w) in zip(out["pixel_values"], out["patch_positions"]):
        patch = img[h * 14 : (h + 1) * 14, w * 14 : (w + 1) * 14].transpose(2, 0, 1).reshape(-1)
        np.testing.assert_array_equal(row, patch.astype(np.float32))


def test_build_patch_positions_with_frame_indices():
    pos = build_patch_positions([[2, 2, 4], [1, 2, 2]], 2, frame_indices=[[7, 9], None])
    assert pos.shape == (16 + 4, 3)
    assert pos[:8, 0].tolist() == [7] * 8 and pos[8:16, 0].tolist() == [9] * 8 and (pos[16:, 0] == 0).all()
    assert pos[:8, 1:].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]]
    with pytest.raises(ValueError, match="not divisible"):
        build_patch_positions([[1, 3, 4]], 2)


def test_save_load_round_trip(tmp_path):
    ip = LlavaOnevision2ImageProcessor(min_pixels=3136, max_pixels=12544)
    ip.save_pretrained(tmp_path)
    loaded = LlavaOnevision2ImageProcessor.from_pretrained(tmp_path)
    assert loaded.size == ip.size and loaded.temporal_patch_size == 1
    img = _images()[:1]
    np.testing.assert_array_equal(ip(img)["pixel_values"], loaded(img)["pixel_values"])

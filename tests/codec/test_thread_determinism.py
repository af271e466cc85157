"""Codec tokenization is deterministic with the default decoder threading (regression test).

FFmpeg's motion-vector export is racy under frame threading: with ``thread_type="AUTO"`` the same B-frame
clip gave different block selections in some runs. The default is slice threading.
"""

from __future__ import annotations

import numpy as np

from transformers_llava_ov2.codec import CodecConfig, tokenize_video
from transformers_llava_ov2.video.synthetic import write_synthetic_clip


def test_repeated_tokenization_is_identical(tmp_path):
    path = tmp_path / "bframes.mp4"
    write_synthetic_clip(path, seconds=2.0, fps=25, size=(160, 96), bframes=2, gop=10)
    assert CodecConfig().thread_type == "SLICE"
    first = tokenize_video(path)
    for _ in range(5):
        again = tokenize_video(path)
        assert np.array_equal(again.source_positions, first.source_positions)
        assert np.array_equal(again.canvases, first.canvases)
        assert again.timestamp_runs() == first.timestamp_runs()

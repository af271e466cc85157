"""StageConfig: presets load, YAML/JSON round trip, validation errors name the field, overrides."""

from __future__ import annotations

import pytest

from transformers_llava_ov2.train.stage import StageConfig, StageConfigError, preset_names


def test_presets_follow_the_paper_and_scripts():
    assert {"alignment", "stage1", "stage2", "stage3", "stage4"} <= set(preset_names())
    s1, s2, s3, s4 = (StageConfig.load(f"stage{i}") for i in range(1, 5))
    assert [s.num_frames for s in (s1, s2, s3, s4)] == [30, 90, 384, 384]
    assert all(s.frame_pixels == 392 * 392 and s.max_seq_length == 32768 for s in (s1, s2, s3, s4))
    assert all("codec" not in s.modality_mix for s in (s1, s2, s3))
    assert s4.normalized_mix() == {"codec": 0.5, "frames": 0.375, "image": 0.125}
    align = StageConfig.load("alignment")
    assert align.trainable == ("merger",) and align.learning_rate == 1e-4
    assert all(
        s.learning_rate == 1e-5 and s.warmup_ratio == 0.002 and s.min_lr == 1e-6 for s in (s1, s2, s3, s4)
    )
    assert s1.weight_decay == 0.01 and s2.weight_decay == 0.0


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    stage = StageConfig.load("stage4").with_overrides(
        {"lr_llm": "2e-5", "trainable": ["llm"], "packing": "false"}
    )
    path = stage.save(tmp_path / f"s{suffix}")
    again = StageConfig.load(path)
    assert again == stage
    assert again.group_lr("llm") == 2e-5 and again.group_lr("vision") == 1e-5 and again.packing is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trainable": ["vision", "decoder"]}, "trainable"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"overlong": "truncate"}, "overlong"),
        ({"modality_mix": {"audio": 1.0}}, "modality_mix"),
        ({"num_frames": 0}, "num_frames"),
        ({"packing": "yes please"}, "packing"),
        ({"max_seq_length": 1.5}, "max_seq_length"),
    ],
)
def test_validation_names_the_field(overrides, field):
    with pytest.raises(StageConfigError, match=field):
        StageConfig.load("stage1").with_overrides(overrides)


def test_bad_files(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: x\nfrobnicate: 3\n")
    with pytest.raises(StageConfigError, match="frobnicate"):
        StageConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(StageConfigError, match="no such preset"):
        StageConfig.load("stage9")
    with pytest.raises(StageConfigError, match="unknown stage field 'lr'"):
        StageConfig.load("stage1").with_overrides({"lr": 1})

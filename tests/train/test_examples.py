"""The shipped accelerate configs parse, and the FSDP wrap classes exist in the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from transformers_llava_ov2.testing import small_config, tiny_model

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "examples" / "accelerate").glob("*.yaml"))


def test_expected_configs_exist():
    assert {p.stem for p in CONFIGS} >= {"ddp", "fsdp2", "deepspeed_zero2", "deepspeed_zero3", "cpu_2proc"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_with_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(path)
    assert config.distributed_type is not None
    raw = yaml.safe_load(path.read_text())
    wrap = (raw.get("fsdp_config") or {}).get("fsdp_transformer_layer_cls_to_wrap")
    if wrap:
        model = tiny_model(small_config())
        names = {type(m).__name__ for m in model.modules()}
        assert set(wrap.split(",")) <= names and set(wrap.split(",")) == set(model._no_split_modules)

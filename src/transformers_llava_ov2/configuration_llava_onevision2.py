"""Configurations of LLaVA-OneVision-2: the OneVision-Encoder vision tower and the composite model.

The released checkpoint's ``config.json`` loads unchanged: ``model_type="llava_onevision2"`` with a
``vision_config`` of ``model_type="onevision_encoder"`` (pre-release exports say ``"llava_onevision2"``,
accepted too) and a Qwen3 ``text_config``. Keys of older exports (``use_patch_position_encoding``,
``patch_position_encoding_type``, ``max_position_embeddings``, ``text_hidden_size``) are tolerated.

Class defaults follow the released 8B (p14m2, Qwen3-8B). ``LlavaOnevision2Config.from_variant`` builds the
other released layouts (4B p14/p16 × m2/m3, 2B) and ``tiny_config`` a few-thousand-parameter model for tests.
"""

from __future__ import annotations

from typing import Any, Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec

_LEGACY_VISION_MODEL_TYPES = ("onevision_encoder", "llava_onevision2")

QWEN3_8B_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "tie_word_embeddings": False,
    # Megatron trained the 8B with rotary base 8e6 (docs/model.md, "A2 decoder RoPE base"); a real checkpoint's config always overrides this.
    "rope_parameters": {"rope_type": "default", "rope_theta": 8_000_000.0},
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}


@strict
class LlavaOnevision2VisionConfig(PreTrainedConfig):
    r"""Configuration of the OneVision-Encoder vision tower used by LLaVA-OneVision-2.

    A pre-LN ViT without CLS token or absolute position embedding; positions enter only through a 3D
    (t, h, w) rotary embedding whose head_dim/2 is split 4:6:6 (so ``head_dim`` must be a multiple of 32).
    Attention is restricted to segments (one per ``image_grid_thw`` row, rows with ``t > frame_windows_size``
    split into chunks of ``frame_windows_size`` temporal slots). A 2-layer MLP merger maps each
    ``spatial_merge_size²`` block of patches to one language-model token of size ``out_hidden_size``.

    Args:
        hidden_size: width of the encoder (1024 for OneVision-Encoder-L).
        intermediate_size: width of the MLP (4096).
        num_hidden_layers: encoder layers (24).
        num_attention_heads: attention heads (16 → head_dim 64).
        num_channels: input channels (3).
        image_size: nominal image size; unused by the forward (inputs are native resolution).
        patch_size: ViT patch size (14; 16 for the p16 variants).
        hidden_act: MLP activation (exact erf GELU).
        layer_norm_eps: epsilon of every LayerNorm, the merger's included (docs/model.md, "A1/A3 defaults").
        layer_norm_type: ``"layer_norm"`` (release) or ``"rms_norm"``.
        attention_dropout: dropout on attention probabilities.
        initializer_range: std of the normal initialiser.
        rope_theta: base of the 3D vision rotary embedding.
        use_head: must be False: the released model has no pooling head.
        out_hidden_size: merger output width = text hidden size (4096 for the 8B).
        spatial_merge_size: side of the merged patch block (2 for the 8B; 3 for the m3 variants).
        tokens_per_second: kept for config compatibility; unused.
        temporal_patch_size: must be 1 (the patch embedding is 2D).
        frame_windows_size: temporal slots per attention segment (4).
    """

    model_type = "onevision_encoder"
    base_config_key = "vision_config"

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 448
    patch_size: int = 14
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    layer_norm_type: Literal["layer_norm", "rms_norm"] = "layer_norm"
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    rope_theta: float = 10000.0
    use_head: bool = False
    out_hidden_size: int = 4096
    spatial_merge_size: int = 2
    tokens_per_second: int = 1
    temporal_patch_size: int = 1
    frame_windows_size: int = 4

    def __post_init__(self, **kwargs):
        legacy_type = kwargs.pop("model_type", None)
        if legacy_type is not None and legacy_type not in _LEGACY_VISION_MODEL_TYPES:
            raise ValueError(
                f"vision_config.model_type={legacy_type!r} is not a OneVision-Encoder config; expected one of "
                f"{_LEGACY_VISION_MODEL_TYPES}"
            )
        if kwargs.get("use_patch_position_encoding"):
            raise ValueError(
                "vision_config.use_patch_position_encoding=True asks for learned merged-cell position "
                "embeddings, which the released LLaVA-OneVision-2 checkpoints do not have; set it to false"
            )
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate_architecture(self):
        """Checks that the shapes fit the 3D RoPE split and the merger."""
        for name in (
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "patch_size",
            "spatial_merge_size",
            "frame_windows_size",
            "num_channels",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"vision_config.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"vision_config.hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.head_dim % 32:
            raise ValueError(
                f"vision head_dim={self.head_dim} must be a multiple of 32: the 3D RoPE splits head_dim/2 "
                "into 16 units (t:h:w = 4:6:6)"
            )
        if self.temporal_patch_size != 1:
            raise ValueError(
                f"vision_config.temporal_patch_size must be 1 (2D patch embedding), got {self.temporal_patch_size}"
            )
        if self.use_head:
            raise ValueError(
                "vision_config.use_head=True is not supported: LLaVA-OneVision-2 has no pooling head"
            )


@strict
class LlavaOnevision2Config(PreTrainedConfig):
    r"""Configuration of LLaVA-OneVision-2: OneVision-Encoder → 2×2 patch merger → Qwen3 decoder.

    Args:
        vision_config: a ``LlavaOnevision2VisionConfig`` (or dict).
        text_config: the decoder's config (or dict); Qwen3 by default (``model_type`` picks another).
        image_token_id: ``<|image_pad|>``; every visual feature (images, frames, codec canvases) is written
            at these positions.
        video_token_id: ``<|video_pad|>``; only in prompts before the processor expands videos.
        vision_start_token_id: ``<|vision_start|>``.
        vision_end_token_id: ``<|vision_end|>``.
        tie_word_embeddings: False in every release (a separate ``lm_head.weight`` is stored).

    Example:

    ```python
    >>> from transformers_llava_ov2 import LlavaOnevision2Config, LlavaOnevision2ForConditionalGeneration
    >>> config = LlavaOnevision2Config.from_variant("8b")
    >>> config.vision_config.spatial_merge_size
    2
    ```
    """

    model_type = "llava_onevision2"
    keys_to_ignore_at_inference = ["past_key_values"]
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=LlavaOnevision2VisionConfig),
        "text_config": SubConfigSpec(
            config_class=AutoConfig, model_type="qwen3", init_kwargs=QWEN3_8B_TEXT_DEFAULTS
        ),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    image_token_id: int = 151655
    video_token_id: int = 151656
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(self.text_config, name, None))

    def validate_architecture(self):
        """Checks that the vision tower's output fits the decoder."""
        vision, text = self.vision_config, self.text_config
        if vision is None or text is None:
            return
        if vision.out_hidden_size != text.hidden_size:
            raise ValueError(
                f"vision_config.out_hidden_size={vision.out_hidden_size} must equal "
                f"text_config.hidden_size={text.hidden_size}: merged visual tokens replace text embeddings"
            )
        vocab = getattr(text, "vocab_size", None)
        for name in ("image_token_id", "vision_start_token_id", "vision_end_token_id"):
            value = getattr(self, name)
            if vocab is not None and not 0 <= value < vocab:
                raise ValueError(f"{name}={value} is outside the text vocabulary (size {vocab})")

    @classmethod
    def from_variant(cls, variant: str, **overrides: Any) -> LlavaOnevision2Config:
        """Builds the config of a released layout.

        Args:
            variant: one of ``"8b"``, ``"4b-p14m2"``, ``"4b-p14m3"``, ``"4b-p16m2"``, ``"4b-p16m3"``, ``"2b"``.
            overrides: top-level config fields to override.
        """
        if variant not in RELEASED_VARIANTS:
            raise ValueError(
                f"unknown LLaVA-OneVision-2 variant {variant!r}; expected one of {sorted(RELEASED_VARIANTS)}"
            )
        spec = RELEASED_VARIANTS[variant]
        text = {**QWEN3_8B_TEXT_DEFAULTS, **spec["text"]}
        vision = {**spec["vision"], "out_hidden_size": text["hidden_size"]}
        return cls(vision_config=vision, text_config=text, **overrides)


_QWEN3_4B = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0},
}
RELEASED_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "8b": {"vision": {"patch_size": 14, "spatial_merge_size": 2}, "text": {}},
    "4b-p14m2": {"vision": {"patch_size": 14, "spatial_merge_size": 2}, "text": _QWEN3_4B},
    "4b-p14m3": {"vision": {"patch_size": 14, "spatial_merge_size": 3}, "text": _QWEN3_4B},
    "4b-p16m2": {"vision": {"patch_size": 16, "spatial_merge_size": 2}, "text": _QWEN3_4B},
    "4b-p16m3": {"vision": {"patch_size": 16, "spatial_merge_size": 3}, "text": _QWEN3_4B},
    "2b": {
        "vision": {"patch_size": 14, "spatial_merge_size": 2},
        "text": {
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
        },
    },
}
"""Released layouts (docs/model.md). Decoder RoPE bases follow Megatron training (docs/model.md, "A2")."""


def tiny_config(
    *,
    vocab_size: int = 151936,
    vision_hidden_size: int = 64,
    vision_layers: int = 2,
    vision_heads: int = 2,
    text_hidden_size: int = 64,
    text_layers: int = 2,
    patch_size: int = 14,
    spatial_merge_size: int = 2,
    frame_windows_size: int = 4,
    **overrides: Any,
) -> LlavaOnevision2Config:
    """A randomly-initialisable few-hundred-thousand-parameter config with the released structure.

    Token ids keep the real Qwen3 values, so with the default ``vocab_size`` the real Qwen3 tokenizer works;
    pass a small ``vocab_size`` together with small token ids for toy tokenizers.
    """
    text = {
        "vocab_size": vocab_size,
        "hidden_size": text_hidden_size,
        "intermediate_size": text_hidden_size * 2,
        "num_hidden_layers": text_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "bos_token_id": 151643 if vocab_size > 151645 else None,
        "eos_token_id": 151645 if vocab_size > 151645 else None,
        "pad_token_id": 151643 if vocab_size > 151645 else None,
    }
    vision = {
        "hidden_size": vision_hidden_size,
        "intermediate_size": vision_hidden_size * 2,
        "num_hidden_layers": vision_layers,
        "num_attention_heads": vision_heads,
        "patch_size": patch_size,
        "spatial_merge_size": spatial_merge_size,
        "frame_windows_size": frame_windows_size,
        "out_hidden_size": text_hidden_size,
    }
    return LlavaOnevision2Config(vision_config=vision, text_config=text, **overrides)


__all__ = ["RELEASED_VARIANTS", "LlavaOnevision2Config", "LlavaOnevision2VisionConfig", "tiny_config"]

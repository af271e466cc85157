"""Configuration of the LLaVA-OneVision-2 MoE twin: the same vision tower on a Qwen3-MoE decoder.

``model_type="llava_onevision2_moe"``; ``text_config`` is a ``qwen3_moe`` config (30B-A3B: 48 layers, 128
experts of width 768, top-8). Everything else (vision config, token ids, untied head) is the dense model's.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_llava_onevision2 import LlavaOnevision2Config, LlavaOnevision2VisionConfig

QWEN3_30B_A3B_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "norm_topk_prob": True,
    "decoder_sparse_step": 1,
    "hidden_act": "silu",
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "tie_word_embeddings": False,
    # Megatron trained the 30B-A3B with rotary base 1e7 (spec §1.3); a real checkpoint's config overrides it.
    "rope_parameters": {"rope_type": "default", "rope_theta": 10_000_000.0},
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}


@strict
class LlavaOnevision2MoeConfig(LlavaOnevision2Config):
    r"""Configuration of LLaVA-OneVision-2 on a Qwen3-MoE decoder (the released 30B-A3B).

    Args:
        output_router_logits: return the router logits of every layer and, with ``labels``, add
            ``router_aux_loss_coef × load-balancing loss`` to the LM loss.
        router_aux_loss_coef: weight of the load-balancing loss.
        (other arguments): as :class:`LlavaOnevision2Config`; ``text_config`` defaults to Qwen3-30B-A3B.
    """

    model_type = "llava_onevision2_moe"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(
            config_class=LlavaOnevision2VisionConfig,
            init_kwargs={"out_hidden_size": QWEN3_30B_A3B_TEXT_DEFAULTS["hidden_size"]},
        ),
        "text_config": SubConfigSpec(
            config_class=AutoConfig, model_type="qwen3_moe", init_kwargs=QWEN3_30B_A3B_TEXT_DEFAULTS
        ),
    }

    output_router_logits: bool = False
    router_aux_loss_coef: float = 0.001

    def validate_architecture(self):
        text = self.text_config
        if text is not None and getattr(text, "model_type", None) != "qwen3_moe":
            raise ValueError(
                f"LlavaOnevision2MoeConfig needs a qwen3_moe text_config, got model_type={text.model_type!r}; "
                "use LlavaOnevision2Config for dense decoders"
            )
        super().validate_architecture()

    @classmethod
    def from_variant(cls, variant: str, **overrides: Any) -> LlavaOnevision2MoeConfig:
        """Builds the config of a released MoE layout: ``"30b-a3b"`` (p14m2 vision tower, Qwen3-30B-A3B)."""
        if variant not in RELEASED_MOE_VARIANTS:
            raise ValueError(
                f"unknown LLaVA-OneVision-2 MoE variant {variant!r}; expected one of "
                f"{sorted(RELEASED_MOE_VARIANTS)}"
            )
        spec = RELEASED_MOE_VARIANTS[variant]
        text = {**QWEN3_30B_A3B_TEXT_DEFAULTS, **spec["text"]}
        vision = {**spec["vision"], "out_hidden_size": text["hidden_size"]}
        return cls(vision_config=vision, text_config=text, **overrides)


RELEASED_MOE_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "30b-a3b": {"vision": {"patch_size": 14, "spatial_merge_size": 2}, "text": {}},
}
"""Released MoE layouts (spec architecture.md §1.3)."""


def tiny_moe_config(
    *,
    vocab_size: int = 512,
    num_experts: int = 4,
    num_experts_per_tok: int = 2,
    text_hidden_size: int = 64,
    text_layers: int = 2,
    **overrides: Any,
) -> LlavaOnevision2MoeConfig:
    """A tiny MoE config with the released structure; small token ids (500-503) as ``small_config``."""
    text = {
        "model_type": "qwen3_moe",
        "vocab_size": vocab_size,
        "hidden_size": text_hidden_size,
        "intermediate_size": text_hidden_size * 2,
        "moe_intermediate_size": 32,
        "num_hidden_layers": text_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "num_experts": num_experts,
        "num_experts_per_tok": num_experts_per_tok,
        "norm_topk_prob": True,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    }
    vision = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "out_hidden_size": text_hidden_size,
    }
    ids = (
        {
            "image_token_id": 500,
            "video_token_id": 501,
            "vision_start_token_id": 502,
            "vision_end_token_id": 503,
        }
        if vocab_size <= 151655
        else {}
    )
    return LlavaOnevision2MoeConfig(vision_config=vision, text_config=text, **{**ids, **overrides})


__all__ = ["RELEASED_MOE_VARIANTS", "LlavaOnevision2MoeConfig", "tiny_moe_config"]

"""LLaVA-OneVision-2 on a Qwen3-MoE decoder (the released 30B-A3B twin).

The vision tower, fusion and generation plumbing are the dense model's (subclassed); only the decoder
(``AutoModel`` of a ``qwen3_moe`` text config) and the outputs differ: router logits per layer when
``output_router_logits`` is set, and the load-balancing loss added to the LM loss (× ``router_aux_loss_coef``)
when ``labels`` are given. Checkpoints store experts one by one (``mlp.experts.{j}.{gate,up,down}_proj``);
the library's Qwen3-MoE conversion mapping fuses them on load and splits them again on save.
"""

from dataclasses import dataclass

import torch
from transformers.models.qwen3_moe.modeling_qwen3_moe import load_balancing_loss_func

from .configuration_llava_onevision2_moe import LlavaOnevision2MoeConfig
from .modeling_llava_onevision2 import (
    LlavaOnevision2CausalLMOutputWithPast,
    LlavaOnevision2ForConditionalGeneration,
    LlavaOnevision2Model,
    LlavaOnevision2ModelOutputWithPast,
)


@dataclass
class LlavaOnevision2MoeModelOutputWithPast(LlavaOnevision2ModelOutputWithPast):
    """Adds ``router_logits``: one ``[B·L, num_experts]`` tensor per decoder layer, when requested."""

    router_logits: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class LlavaOnevision2MoeCausalLMOutputWithPast(LlavaOnevision2CausalLMOutputWithPast):
    """Adds ``aux_loss`` (load-balancing loss, unweighted) and ``router_logits``."""

    aux_loss: torch.FloatTensor | None = None
    router_logits: tuple[torch.FloatTensor, ...] | None = None


_NO_SPLIT_MODULES = ["OneVisionEncoderEncoderLayer", "Qwen3MoeDecoderLayer"]


class LlavaOnevision2MoeModel(LlavaOnevision2Model):
    """Vision tower (``visual``) + Qwen3-MoE decoder (``language_model``), no LM head."""

    config: LlavaOnevision2MoeConfig
    config_class = LlavaOnevision2MoeConfig
    _no_split_modules = _NO_SPLIT_MODULES

    def forward(self, *args, output_router_logits: bool | None = None, **kwargs):
        """As the dense model's forward; ``output_router_logits`` (default: the config's) asks the decoder
        for the router logits of every layer (the head then adds the auxiliary loss)."""
        if output_router_logits is None:
            output_router_logits = self.config.output_router_logits
        if output_router_logits:
            kwargs["output_router_logits"] = True
        return super().forward(*args, **kwargs)

    def assemble_output(self, outputs, image_features) -> LlavaOnevision2MoeModelOutputWithPast:
        return LlavaOnevision2MoeModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=image_features,
            router_logits=getattr(outputs, "router_logits", None),
        )


class LlavaOnevision2MoeForConditionalGeneration(LlavaOnevision2ForConditionalGeneration):
    """LLaVA-OneVision-2 MoE with its LM head: ``model.visual``, ``model.language_model``, ``lm_head``."""

    config: LlavaOnevision2MoeConfig
    config_class = LlavaOnevision2MoeConfig
    _no_split_modules = _NO_SPLIT_MODULES

    base_model_class = LlavaOnevision2MoeModel

    def assemble_output(self, outputs, logits, loss, **inputs) -> LlavaOnevision2MoeCausalLMOutputWithPast:
        aux_loss = None
        router_logits = getattr(outputs, "router_logits", None)
        if router_logits:
            text = self.config.text_config
            aux_loss = load_balancing_loss_func(
                router_logits, text.num_experts, text.num_experts_per_tok, inputs.get("attention_mask")
            )
            if loss is not None:
                loss = loss + self.config.router_aux_loss_coef * aux_loss.to(loss.device)
        return LlavaOnevision2MoeCausalLMOutputWithPast(
            loss=loss,
            aux_loss=aux_loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=outputs.image_hidden_states,
            router_logits=router_logits,
        )


__all__ = [
    "LlavaOnevision2MoeCausalLMOutputWithPast",
    "LlavaOnevision2MoeForConditionalGeneration",
    "LlavaOnevision2MoeModel",
    "LlavaOnevision2MoeModelOutputWithPast",
]

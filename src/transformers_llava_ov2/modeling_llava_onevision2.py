"""LLaVA-OneVision-2 models: vision tower, multimodal base model, and the generation head.

Every visual input (images, uniformly sampled frames, codec canvases) enters through the image path:
``pixel_values [N, C·p·p]`` (merge-block order), ``image_grid_thw [R, 3]`` and ``patch_positions [N, 3]``
(source ``(t, h, w)`` per patch, same order). Merged features replace the ``<|image_pad|>`` embeddings; the
Qwen3 decoder uses plain 1-D positions (no M-RoPE). Time reaches the model through the vision RoPE ``t`` and
the literal ``<t.t seconds>`` text the processor writes.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import BaseModelOutputWithPast, BaseModelOutputWithPooling, ModelOutput
from transformers.modeling_utils import PreTrainedModel

from .configuration_llava_onevision2 import LlavaOnevision2Config, LlavaOnevision2VisionConfig
from .modeling_onevision_encoder import (
    LlavaOnevision2VisionPatchMerger,
    OneVisionEncoderEmbeddings,
    OneVisionEncoderEncoder,
    image_patch_positions,
    make_norm,
)
from .vision_rope import VisionRotaryEmbedding3D, axis_inverse_frequencies
from .vision_segments import (
    VisionSegments,
    segments_from_cu_seqlens,
    segments_from_grid,
    segments_from_group_ids,
)


@dataclass
class LlavaOnevision2CausalLMOutputWithPast(ModelOutput):
    """Output of :class:`LlavaOnevision2ForConditionalGeneration`.

    Attributes:
        loss: language-modelling loss (``labels`` given).
        logits: ``[B, L_kept, vocab]``.
        past_key_values: decoder cache.
        hidden_states / attentions: decoder outputs when requested.
        image_hidden_states: merged visual features ``[N / m², hidden]`` fed to the decoder, when computed.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    image_hidden_states: torch.FloatTensor | None = None


@dataclass
class LlavaOnevision2ModelOutputWithPast(BaseModelOutputWithPast):
    """Output of :class:`LlavaOnevision2Model`; ``image_hidden_states`` as above."""

    image_hidden_states: torch.FloatTensor | None = None


class LlavaOnevision2PreTrainedModel(PreTrainedModel):
    config: LlavaOnevision2Config
    base_model_prefix = "model"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["OneVisionEncoderEncoderLayer", "Qwen3DecoderLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, VisionRotaryEmbedding3D):
            values = axis_inverse_frequencies(module.head_dim, module.theta)
            for name, value in zip(("inv_freq_t", "inv_freq_h", "inv_freq_w"), values):
                init.copy_(getattr(module, name), value)
            return
        if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            if module.weight is not None:
                init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
            return
        super()._init_weights(module)


class LlavaOnevision2VisionModel(LlavaOnevision2PreTrainedModel):
    """OneVision-Encoder + merger (``model.visual``).

    ``forward(pixel_values [N, C·p·p], grid_thw [R, 3], patch_positions [N, 3] | None)`` returns the last
    encoder layer ``[N, hidden]`` as ``last_hidden_state`` and the merged tokens ``[N/m², out_hidden]`` as
    ``pooler_output``.
    """

    config: LlavaOnevision2VisionConfig
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    _no_split_modules = ["OneVisionEncoderEncoderLayer"]

    def __init__(self, config: LlavaOnevision2VisionConfig):
        super().__init__(config)
        self.spatial_merge_size = config.spatial_merge_size
        self.embeddings = OneVisionEncoderEmbeddings(config)
        self.layernorm_pre = make_norm(config, config.hidden_size)
        self.video_rope = VisionRotaryEmbedding3D(config.head_dim, config.rope_theta)
        self.encoder = OneVisionEncoderEncoder(config)
        self.merger = LlavaOnevision2VisionPatchMerger(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    def resolve_segments(
        self,
        grid_thw: torch.Tensor,
        num_patches: int,
        group_ids: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
    ) -> VisionSegments:
        """Attention segments: explicit group ids, else precomputed ``cu_seqlens``, else the released rule."""
        if group_ids is not None and cu_seqlens is not None:
            raise ValueError("pass either vision_group_ids or vision_cu_seqlens, not both")
        if group_ids is not None:
            return segments_from_group_ids(group_ids.to(grid_thw.device), num_patches)
        if cu_seqlens is not None:
            return segments_from_cu_seqlens(cu_seqlens, num_patches)
        return segments_from_grid(grid_thw, self.config.frame_windows_size)

    def forward(
        self,
        pixel_values: torch.Tensor,
        grid_thw: torch.Tensor,
        patch_positions: torch.Tensor | None = None,
        group_ids: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool = True,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """Encodes patches.

        Args:
            pixel_values: ``[N, C·p·p]`` patches in merge-block order.
            grid_thw: ``int [R, 3]`` patch grid of each visual row.
            patch_positions: ``int [N, 3]`` source ``(t, h, w)`` of each patch (same order); image
                convention derived when omitted (see ``image_patch_positions``).
            group_ids: ``int [N]`` optional group-visible attention ids (overrides the released rule).
            cu_seqlens: ``int [S+1]`` optional precomputed segments (overrides the released rule).
        """
        grid_thw = torch.as_tensor(grid_thw, device=pixel_values.device)
        if grid_thw.ndim != 2 or grid_thw.shape[-1] != 3:
            raise ValueError(
                f"image_grid_thw must have shape [num_rows, 3] (t, h, w), got {tuple(grid_thw.shape)}"
            )
        n = pixel_values.shape[0]
        expected = int(grid_thw.prod(-1).sum())
        if expected != n:
            raise ValueError(
                f"image_grid_thw describes {expected} patches (sum of t*h*w over {grid_thw.shape[0]} rows) but "
                f"pixel_values has {n} rows"
            )
        m = self.spatial_merge_size
        if bool((grid_thw[:, 1:] % m != 0).any()):
            bad = grid_thw[(grid_thw[:, 1:] % m != 0).any(-1)][0].tolist()
            raise ValueError(
                f"image_grid_thw row {bad} has h or w not divisible by spatial_merge_size={m}; the merger groups "
                f"{m}x{m} patches"
            )
        if patch_positions is None:
            patch_positions = image_patch_positions(grid_thw, m)
        elif patch_positions.shape != (n, 3):
            raise ValueError(
                f"patch_positions must have shape [{n}, 3] (one (t, h, w) per pixel_values row), "
                f"got {tuple(patch_positions.shape)}"
            )
        segments = self.resolve_segments(grid_thw, n, group_ids, cu_seqlens)
        cos, sin = self.video_rope(patch_positions.to(pixel_values.device))

        hidden_states = self.layernorm_pre(self.embeddings(pixel_values))
        all_hidden = (hidden_states,) if output_hidden_states else None
        for layer in self.encoder.layers:
            hidden_states = layer(hidden_states, (cos, sin), segments)
            if output_hidden_states:
                all_hidden += (hidden_states,)
        merged = self.merger(hidden_states)
        if not return_dict:
            return (hidden_states, merged) + ((all_hidden,) if output_hidden_states else ())
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states, pooler_output=merged, hidden_states=all_hidden
        )


class LlavaOnevision2Model(LlavaOnevision2PreTrainedModel):
    """Vision tower (``visual``) + Qwen3 decoder (``language_model``), no LM head."""

    base_model_prefix = ""
    accepts_loss_kwargs = False

    def __init__(self, config: LlavaOnevision2Config):
        super().__init__(config)
        self.visual = LlavaOnevision2VisionModel._from_config(config.vision_config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        image_grid_thw: torch.Tensor,
        patch_positions: torch.Tensor | None = None,
        vision_group_ids: torch.Tensor | None = None,
        vision_cu_seqlens: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Encodes visual rows and splits the merged features per ``image_grid_thw`` row.

        Returns:
            ``BaseModelOutputWithPooling`` whose ``pooler_output`` is a tuple of ``[t·h·w / m², hidden]``
            tensors, one per grid row, in row order.
        """
        pixel_values = pixel_values.to(self.visual.dtype)
        out = self.visual(
            pixel_values,
            image_grid_thw,
            patch_positions,
            group_ids=vision_group_ids,
            cu_seqlens=vision_cu_seqlens,
        )
        sizes = (torch.as_tensor(image_grid_thw).prod(-1) // self.visual.spatial_merge_size**2).tolist()
        out.pooler_output = torch.split(out.pooler_output, sizes)
        return out

    def get_placeholder_mask(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor
    ) -> torch.Tensor:
        """``[B, L]`` bool mask of ``<|image_pad|>`` positions."""
        if input_ids is not None:
            return input_ids == self.config.image_token_id
        pad = self.get_input_embeddings()(
            torch.tensor(self.config.image_token_id, device=inputs_embeds.device)
        )
        return (inputs_embeds == pad).all(-1)

    @staticmethod
    def text_position_ids(
        attention_mask: torch.Tensor | None,
        past_length: int,
        query_length: int,
        batch: int,
        device: torch.device,
    ) -> torch.Tensor:
        """1-D positions, left-padding aware: cumulative count of attended tokens (0 at padding)."""
        if attention_mask is not None and attention_mask.ndim == 2:
            positions = attention_mask.long().cumsum(-1) - 1
            positions = positions.masked_fill(attention_mask == 0, 0)
            return positions[:, -query_length:]
        return (
            torch.arange(past_length, past_length + query_length, device=device)
            .unsqueeze(0)
            .expand(batch, -1)
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        patch_positions: torch.LongTensor | None = None,
        vision_group_ids: torch.LongTensor | None = None,
        vision_cu_seqlens: torch.Tensor | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> LlavaOnevision2ModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        video_inputs = (kwargs.pop("pixel_values_videos", None), kwargs.pop("video_grid_thw", None))
        if any(value is not None for value in video_inputs):
            raise ValueError(
                "LLaVA-OneVision-2 takes videos through the image path: pass frames or codec canvases as "
                "pixel_values / image_grid_thw / patch_positions with <|image_pad|> placeholders "
                "(LlavaOnevision2Processor does this), not pixel_values_videos / video_grid_thw"
            )
        kwargs.pop("mm_token_type_ids", None)  # 1-D text positions: the modality map carries nothing we use
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        image_features = None
        encoded = (mm_encoder_outputs or {}).get("image")
        if encoded is None and pixel_values is not None:
            if image_grid_thw is None:
                raise ValueError("pixel_values were given without image_grid_thw")
            encoded = self.get_image_features(
                pixel_values, image_grid_thw, patch_positions, vision_group_ids, vision_cu_seqlens
            )
        if encoded is not None:
            features = encoded.pooler_output
            if not isinstance(features, torch.Tensor):
                features = torch.cat(list(features), dim=0)
            image_features = features.to(inputs_embeds.device, inputs_embeds.dtype)
            mask = self.get_placeholder_mask(input_ids, inputs_embeds)
            n_placeholders = int(mask.sum())
            if n_placeholders != image_features.shape[0]:
                raise ValueError(
                    f"the prompt has {n_placeholders} <|image_pad|> tokens (id {self.config.image_token_id}) but the "
                    f"vision tower produced {image_features.shape[0]} merged features; expand each visual placeholder "
                    "to t*h*w/merge_size**2 tokens (the processor does this)"
                )
            inputs_embeds = inputs_embeds.masked_scatter(
                mask.unsqueeze(-1).expand_as(inputs_embeds), image_features
            )

        if position_ids is None:
            past_length = past_key_values.get_seq_length() if past_key_values is not None else 0
            position_ids = self.text_position_ids(
                attention_mask,
                past_length,
                inputs_embeds.shape[1],
                inputs_embeds.shape[0],
                inputs_embeds.device,
            )

        outputs = self.language_model(
            input_ids=None,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return self.assemble_output(outputs, image_features)

    def assemble_output(
        self, outputs: BaseModelOutputWithPast, image_features: torch.Tensor | None
    ) -> LlavaOnevision2ModelOutputWithPast:
        """The model output from the decoder's (a hook: the MoE twin adds the router logits)."""
        return LlavaOnevision2ModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=image_features,
        )


class LlavaOnevision2ForConditionalGeneration(LlavaOnevision2PreTrainedModel, GenerationMixin):
    """LLaVA-OneVision-2 with its LM head: ``model.visual``, ``model.language_model``, ``lm_head`` (untied)."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    accepts_loss_kwargs = False
    base_model_class: type[LlavaOnevision2Model] = LlavaOnevision2Model

    def __init__(self, config: LlavaOnevision2Config):
        super().__init__(config)
        self.model = self.base_model_class(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    @property
    def visual(self) -> LlavaOnevision2VisionModel:
        return self.model.visual

    @property
    def language_model(self) -> nn.Module:
        return self.model.language_model

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        image_grid_thw: torch.Tensor,
        patch_positions: torch.Tensor | None = None,
        vision_group_ids: torch.Tensor | None = None,
        vision_cu_seqlens: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Merged visual features per grid row (``pooler_output``); positions derived when omitted."""
        return self.model.get_image_features(
            pixel_values, image_grid_thw, patch_positions, vision_group_ids, vision_cu_seqlens, **kwargs
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        patch_positions: torch.LongTensor | None = None,
        vision_group_ids: torch.LongTensor | None = None,
        vision_cu_seqlens: torch.Tensor | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> LlavaOnevision2CausalLMOutputWithPast:
        """Multimodal causal-LM forward.

        Args:
            input_ids: ``[B, L]`` with ``<|image_pad|>`` placeholders (one per merged visual token).
            pixel_values / image_grid_thw / patch_positions: visual inputs of the whole batch, rows in prompt
                order (see module docstring).
            vision_group_ids / vision_cu_seqlens: optional attention grouping overriding the released rule.
            labels: ``[B, L]`` targets (``-100`` ignored); shifted inside the loss.
            logits_to_keep: keep only the last N positions' logits (0 = all), or an index tensor.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            patch_positions=patch_positions,
            vision_group_ids=vision_group_ids,
            vision_cu_seqlens=vision_cu_seqlens,
            mm_encoder_outputs=mm_encoder_outputs,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return self.assemble_output(outputs, logits, loss, labels=labels, attention_mask=attention_mask)

    def assemble_output(
        self,
        outputs: LlavaOnevision2ModelOutputWithPast,
        logits: torch.Tensor,
        loss: torch.Tensor | None,
        **inputs,
    ) -> LlavaOnevision2CausalLMOutputWithPast:
        """The head's output (a hook: the MoE twin adds the router auxiliary loss; ``inputs`` are
        ``labels`` and ``attention_mask``)."""
        return LlavaOnevision2CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=outputs.image_hidden_states,
        )


__all__ = [
    "LlavaOnevision2CausalLMOutputWithPast",
    "LlavaOnevision2ForConditionalGeneration",
    "LlavaOnevision2Model",
    "LlavaOnevision2ModelOutputWithPast",
    "LlavaOnevision2PreTrainedModel",
    "LlavaOnevision2VisionModel",
]

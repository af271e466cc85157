"""Whole-model parity with a literal restatement of the released forward (spec architecture.md §9).

The reference below uses only the state dict and functional ops: patch conv, pre-LN, per-layer fused qkv,
3D RoPE written out per axis, attention computed segment by segment in a Python loop (the released non-flash
path), MLP, merger, then ``masked_scatter`` into the Qwen3 embeddings. It shares no code with the package.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from tests.model_factory import SMALL_IDS, small_config, tiny_model


def released_segments(grid: list[tuple[int, int, int]], window: int) -> list[int]:
    out = []
    for t, h, w in grid:
        if t > window:
            out += [window * h * w] * (t // window) + ([(t % window) * h * w] if t % window else [])
        else:
            out.append(t * h * w)
    return out


def reference_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """x [N, H, D]; angles cat(F, F) with F = [t/θ^(i/nt) | h/θ^(i/nh) | w/θ^(i/nw)], interleaved pairs."""
    d = x.shape[-1]
    u = d // 32
    sizes = (4 * u, 6 * u, 6 * u)
    freqs = torch.cat(
        [
            positions[:, a : a + 1].double() * theta ** (-torch.arange(n, dtype=torch.float64) / n)
            for a, n in enumerate(sizes)
        ],
        dim=-1,
    )
    angles = torch.cat([freqs, freqs], dim=-1)[:, None, :]
    cos, sin = angles.cos(), angles.sin()
    xd = x.double()
    rotated = torch.empty_like(xd)
    rotated[..., 0::2] = -xd[..., 1::2]
    rotated[..., 1::2] = xd[..., 0::2]
    return xd * cos + rotated * sin


def reference_visual(
    sd: dict, cfg, pixels: torch.Tensor, grid: list, positions: torch.Tensor
) -> torch.Tensor:
    p, c, heads = cfg.patch_size, cfg.hidden_size, cfg.num_attention_heads
    eps, m = cfg.layer_norm_eps, cfg.spatial_merge_size
    pre = "model.visual."
    x = F.conv2d(
        pixels.double().view(-1, 3, p, p), sd[pre + "embeddings.patch_embedding.weight"].double(), stride=p
    )
    x = x.view(-1, c)

    def ln(t, name):
        return F.layer_norm(t, (c,), sd[name + ".weight"].double(), sd[name + ".bias"].double(), eps)

    lin = lambda t, name: F.linear(t, sd[name + ".weight"].double(), sd[name + ".bias"].double())  # noqa: E731
    x = ln(x, pre + "layernorm_pre")
    bounds = torch.tensor([0, *released_segments(grid, cfg.frame_windows_size)]).cumsum(0).tolist()
    for i in range(cfg.num_hidden_layers):
        layer = f"{pre}encoder.layers.{i}."
        qkv = lin(ln(x, layer + "layer_norm1"), layer + "self_attn.qkv").view(-1, 3, heads, c // heads)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        q, k = reference_rope(q, positions, cfg.rope_theta), reference_rope(k, positions, cfg.rope_theta)
        outs = []
        for s, e in itertools.pairwise(bounds):  # the released per-segment loop
            scores = torch.einsum("qhd,khd->hqk", q[s:e], k[s:e]) * (c // heads) ** -0.5
            outs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), v[s:e]))
        x = x + lin(torch.cat(outs).reshape(-1, c), layer + "self_attn.proj")
        h = lin(F.gelu(lin(ln(x, layer + "layer_norm2"), layer + "mlp.fc1")), layer + "mlp.fc2")
        x = x + h
    merged = ln(x, pre + "merger.ln_q").view(-1, c * m * m)
    return lin(F.gelu(lin(merged, pre + "merger.mlp.0")), pre + "merger.mlp.2")


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_vision_tower_and_fusion_match_the_released_forward(attn):
    model = tiny_model(small_config(vision_layers=2, frame_windows_size=2), seed=7)
    model.set_attn_implementation(attn)
    sd = model.state_dict()
    grid = [(1, 4, 6), (5, 2, 2), (3, 2, 4)]  # an image, a 5-frame row (windows 2+2+1), a 3-canvas row
    n = sum(t * h * w for t, h, w in grid)
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(n, 588, generator=g)
    positions = torch.cat(
        [torch.randint(0, 50, (n, 1), generator=g), torch.randint(0, 30, (n, 2), generator=g)], -1
    )
    expected = reference_visual(sd, model.config.vision_config, pixels, grid, positions)
    got = torch.cat(model.get_image_features(pixels, torch.tensor(grid), positions).pooler_output)
    torch.testing.assert_close(got.double(), expected, rtol=2e-5, atol=2e-5)

    # fusion: merged features land at the <|image_pad|> positions of the decoder's input embeddings, in order
    image_id = SMALL_IDS["image_token_id"]
    ids = torch.tensor([[3] + [image_id] * expected.shape[0] + [4]])
    captured = {}

    def capture(module, args, kwargs):
        captured["embeds"] = kwargs["inputs_embeds"]

    hook = model.model.language_model.register_forward_pre_hook(capture, with_kwargs=True)
    model(input_ids=ids, pixel_values=pixels, image_grid_thw=torch.tensor(grid), patch_positions=positions)
    hook.remove()
    embeds = captured["embeds"][0]
    torch.testing.assert_close(embeds[1:-1].double(), expected, rtol=2e-5, atol=2e-5)
    table = sd["model.language_model.embed_tokens.weight"]
    torch.testing.assert_close(embeds[[0, -1]], table[[3, 4]])

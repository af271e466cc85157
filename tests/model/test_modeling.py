"""Behaviour of LlavaOnevision2ForConditionalGeneration on tiny random configs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from tests.model.test_vision_segments import _reference_varlen
from tests.model_factory import SMALL_IDS, small_config, tiny_model
from transformers_llava_ov2.modeling_onevision_encoder import image_patch_positions

IMG = SMALL_IDS["image_token_id"]
PAD = 0


def visual_row(grid, seed):
    """Random patches of one visual row ``(t, h, w)`` and the number of merged tokens it yields."""
    g = torch.Generator().manual_seed(seed)
    t, h, w = grid
    return torch.randn(t * h * w, 588, generator=g), t * h * w // 4


def sample(prefix, grids, suffix, seed):
    """A prompt with one placeholder run per visual row, plus its visual inputs."""
    ids, pixels = list(prefix), []
    for i, grid in enumerate(grids):
        px, n = visual_row(grid, seed + i)
        ids += [10 + i] + [IMG] * n + [20 + i]
        pixels.append(px)
    ids += list(suffix)
    return torch.tensor(ids), torch.cat(pixels), torch.tensor(grids)


def left_pad_batch(samples):
    length = max(len(s[0]) for s in samples)
    ids = torch.full((len(samples), length), PAD)
    mask = torch.zeros(len(samples), length, dtype=torch.long)
    for i, (s, _, _) in enumerate(samples):
        ids[i, length - len(s) :] = s
        mask[i, length - len(s) :] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "pixel_values": torch.cat([s[1] for s in samples]),
        "image_grid_thw": torch.cat([s[2] for s in samples]),
    }


@pytest.fixture(scope="module")
def model():
    return tiny_model(small_config(), seed=0)


@pytest.fixture(scope="module")
def batch():
    return left_pad_batch(
        [
            sample([1, 2, 3], [(1, 4, 4)], [4, 5], seed=0),
            sample([6], [(1, 2, 4), (3, 2, 2)], [7, 8, 9, 11], seed=10),
        ]
    )


def test_eager_and_sdpa_logits_agree(batch):
    logits = {}
    for impl in ("eager", "sdpa"):
        m = tiny_model(small_config(), seed=0)
        m.set_attn_implementation(impl)
        assert m.model.visual.config._attn_implementation == impl
        logits[impl] = m(**batch).logits
    mask = batch["attention_mask"].bool()
    assert (logits["eager"] - logits["sdpa"])[mask].abs().max().item() <= 1e-5


def test_batched_left_padded_equals_one_by_one(model, batch):
    batched = model(**batch).logits
    parts = [
        sample([1, 2, 3], [(1, 4, 4)], [4, 5], seed=0),
        sample([6], [(1, 2, 4), (3, 2, 2)], [7, 8, 9, 11], seed=10),
    ]
    for i, (ids, px, grid) in enumerate(parts):
        single = model(input_ids=ids[None], pixel_values=px, image_grid_thw=grid).logits[0]
        torch.testing.assert_close(batched[i, -len(ids) :], single, rtol=1e-5, atol=1e-5)


def test_cache_equals_no_cache(model):
    ids, px, grid = sample([1, 2], [(1, 4, 4)], [3, 4, 5], seed=1)
    full = model(input_ids=ids[None], pixel_values=px, image_grid_thw=grid, use_cache=False).logits
    prefill = model(input_ids=ids[None, :-2], pixel_values=px, image_grid_thw=grid, use_cache=True)
    cache = prefill.past_key_values
    step1 = model(input_ids=ids[None, -2:-1], past_key_values=cache, use_cache=True)
    step2 = model(input_ids=ids[None, -1:], past_key_values=step1.past_key_values, use_cache=True)
    torch.testing.assert_close(prefill.logits, full[:, :-2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(step1.logits[:, -1], full[:, -2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(step2.logits[:, -1], full[:, -1], rtol=1e-5, atol=1e-5)


def test_greedy_generate_is_deterministic_and_matches_argmax_loop(model):
    ids, px, grid = sample([1, 2], [(1, 4, 4)], [3], seed=2)
    kwargs = {"input_ids": ids[None], "pixel_values": px, "image_grid_thw": grid}
    out1 = model.generate(**kwargs, max_new_tokens=5, do_sample=False)
    out2 = model.generate(**kwargs, max_new_tokens=5, do_sample=False)
    assert torch.equal(out1, out2)
    seq = ids[None]
    for _ in range(5):
        logits = model(input_ids=seq, pixel_values=px, image_grid_thw=grid, use_cache=False).logits
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out1, seq)


def test_batched_generate_matches_single(model, batch):
    out = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=PAD)
    ids, px, grid = sample([1, 2, 3], [(1, 4, 4)], [4, 5], seed=0)
    single = model.generate(
        input_ids=ids[None], pixel_values=px, image_grid_thw=grid, max_new_tokens=4, do_sample=False
    )
    assert torch.equal(out[0, -4:], single[0, -4:])


def test_beam_search_with_pixel_inputs_expands_per_sample(model, batch):
    out = model.generate(
        **batch, max_new_tokens=3, num_beams=3, num_return_sequences=2, do_sample=False, pad_token_id=PAD
    )
    assert out.shape[0] == 4
    for i, (ids, px, grid) in enumerate(
        [
            sample([1, 2, 3], [(1, 4, 4)], [4, 5], seed=0),
            sample([6], [(1, 2, 4), (3, 2, 2)], [7, 8, 9, 11], seed=10),
        ]
    ):
        single = model.generate(
            input_ids=ids[None], pixel_values=px, image_grid_thw=grid,
            max_new_tokens=3, num_beams=3, num_return_sequences=2, do_sample=False,
        )  # fmt: skip
        assert torch.equal(out[2 * i : 2 * i + 2, -3:], single[:, -3:])


def test_sampling_with_num_return_sequences(model):
    ids, px, grid = sample([1], [(1, 2, 2), (1, 2, 2)], [2], seed=3)
    torch.manual_seed(0)
    out = model.generate(
        input_ids=ids[None],
        pixel_values=px,
        image_grid_thw=grid,
        max_new_tokens=3,
        do_sample=True,
        num_return_sequences=3,
    )
    assert out.shape == (3, len(ids) + 3)


def test_loss_and_logits_to_keep(model):
    ids, px, grid = sample([1, 2], [(1, 2, 2)], [3, 4, 5], seed=4)
    labels = ids.clone()[None]
    labels[labels == IMG] = -100
    out = model(input_ids=ids[None], pixel_values=px, image_grid_thw=grid, labels=labels)
    manual = torch.nn.functional.cross_entropy(out.logits[0, :-1], labels[0, 1:], ignore_index=-100)
    torch.testing.assert_close(out.loss, manual)
    kept = model(input_ids=ids[None], pixel_values=px, image_grid_thw=grid, logits_to_keep=2).logits
    torch.testing.assert_close(kept, out.logits[:, -2:])
    assert out.image_hidden_states.shape == (1, 64)


def test_gradient_checkpointing_backward_matches():
    grads = []
    ids, px, grid = sample([1, 2], [(3, 2, 2)], [3, 4], seed=5)
    for checkpointing in (False, True):
        m = tiny_model(small_config(), seed=0).train()
        if checkpointing:
            m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert m.model.visual.encoder.layers[0].gradient_checkpointing
        loss = m(input_ids=ids[None], pixel_values=px, image_grid_thw=grid, labels=ids[None]).loss
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    assert any(n.startswith("model.visual.encoder") for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-6)


def test_get_image_features_derives_image_positions(model):
    grid = torch.tensor([(1, 4, 6), (3, 2, 2)])
    px = torch.randn(36, 588)
    derived = model.get_image_features(px, grid).pooler_output
    positions = image_patch_positions(grid, 2)
    assert positions[:24, 0].eq(0).all() and positions[24:, 0].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # block order: the first merged cell of the 4x6 image holds patches (0,0) (0,1) (1,0) (1,1)
    assert positions[:4, 1:].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    explicit = model.model.get_image_features(px, grid, positions).pooler_output
    assert [t.shape[0] for t in derived] == [6, 3]
    for a, b in zip(derived, explicit):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_patch_positions_change_the_features(model):
    grid = torch.tensor([(1, 2, 2)])
    px = torch.randn(4, 588)
    base = model.get_image_features(px, grid).pooler_output[0]
    moved = model.get_image_features(
        px, grid, torch.tensor([[9, 0, 0], [9, 0, 1], [9, 1, 0], [9, 1, 1]])
    ).pooler_output[0]
    assert not torch.allclose(base, moved)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("positions", r"patch_positions must have shape \[16, 3\]"),
        ("grid", "image_grid_thw describes 20 patches"),
        ("placeholders", "the prompt has 3 <|image_pad|> tokens"),
        ("merge", "not divisible by spatial_merge_size=2"),
        ("pixels", r"pixel_values must have shape \[num_patches, 588\]"),
        ("videos", "takes videos through the image path"),
    ],
)
def test_input_errors_are_clear_value_errors(model, case, match):
    ids = torch.tensor([[1] + [IMG] * 4 + [2]])
    kwargs = {
        "input_ids": ids,
        "pixel_values": torch.randn(16, 588),
        "image_grid_thw": torch.tensor([[1, 4, 4]]),
    }
    if case == "positions":
        kwargs["patch_positions"] = torch.zeros(15, 3, dtype=torch.long)
    elif case == "grid":
        kwargs["image_grid_thw"] = torch.tensor([[1, 4, 5]])
    elif case == "placeholders":
        kwargs["input_ids"] = torch.tensor([[1] + [IMG] * 3 + [2]])
    elif case == "merge":
        kwargs["image_grid_thw"] = torch.tensor([[1, 16, 1]])
    elif case == "pixels":
        kwargs["pixel_values"] = torch.randn(16, 3, 14, 14)
    elif case == "videos":
        kwargs["pixel_values_videos"] = torch.randn(16, 588)
    with pytest.raises(ValueError, match=match.replace("|", r"\|")):
        model(**kwargs)


def test_flash_attention_path_makes_one_varlen_call(monkeypatch):
    """flash-attn has no CPU wheel: check the varlen code path's shapes with a pure-torch kernel stand-in."""
    calls = []

    def fake_flash(module, q, k, v, mask, **kwargs):
        calls.append((tuple(q.shape), kwargs["cu_seq_lens_q"].tolist()))
        return _reference_varlen(module, q, k, v, mask, **kwargs)

    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "flash_attention_2", fake_flash)
    m = tiny_model(small_config(vision_layers=1), seed=0)
    grid = torch.tensor([(1, 2, 2), (6, 2, 2)])
    px = torch.randn(28, 588)
    expected = m.get_image_features(px, grid).pooler_output
    m.model.visual.config._attn_implementation = "flash_attention_2"
    got = m.get_image_features(px, grid).pooler_output
    assert calls == [((1, 2, 28, 32), [0, 4, 20, 28])]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_device_map_auto_and_dtypes(tmp_path):
    m = tiny_model(small_config(), seed=0)
    ids, px, grid = sample([1], [(1, 2, 2)], [2], seed=6)
    ref = m(input_ids=ids[None], pixel_values=px, image_grid_thw=grid).logits
    m.save_pretrained(str(tmp_path))
    auto = AutoModelForImageTextToText.from_pretrained(str(tmp_path), device_map="auto")
    assert {p.device.type for p in auto.parameters()} == {"cpu"}
    torch.testing.assert_close(auto(input_ids=ids[None], pixel_values=px, image_grid_thw=grid).logits, ref)
    bf16 = AutoModelForImageTextToText.from_pretrained(str(tmp_path), dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.model.visual.video_rope.inv_freq_t.dtype == torch.float32
    out = bf16(input_ids=ids[None], pixel_values=px, image_grid_thw=grid).logits
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.1, atol=0.1)


def test_no_split_modules_exist(model):
    classes = {type(mod).__name__ for mod in model.modules()}
    assert set(model._no_split_modules) <= classes


def test_flex_attention_vision_tower_matches_eager():
    """flex_attention runs through the batched segment path (no mask needed); CPU flex is inference-only."""
    m = tiny_model(small_config(vision_layers=1), seed=0)
    m.set_attn_implementation({"vision_config": "eager", "text_config": "sdpa", "": "sdpa"})
    grid = torch.tensor([(1, 2, 2), (6, 2, 2)])
    px = torch.randn(28, 588)
    with torch.no_grad():
        expected = torch.cat(m.get_image_features(px, grid).pooler_output)
        m.set_attn_implementation({"vision_config": "flex_attention", "text_config": "sdpa", "": "sdpa"})
        assert m.model.visual.config._attn_implementation == "flex_attention"
        got = torch.cat(m.get_image_features(px, grid).pooler_output)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

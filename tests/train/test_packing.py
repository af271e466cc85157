"""Exact packing: packed loss and gradients equal the unpacked ones; positions restart; no cross attention."""

from __future__ import annotations

import pytest
import torch

from tests.train.conftest import synthetic_sample
from transformers_llava_ov2.testing import small_config, tiny_model
from transformers_llava_ov2.train.collator import MultimodalCollator, pack_rows


def _samples():
    return [
        synthetic_sample(0, 7, [(1, 2, 2)]),
        synthetic_sample(1, 12, []),
        synthetic_sample(2, 5, [(2, 2, 4), (1, 4, 2)], "frames"),
        synthetic_sample(3, 9, [(1, 2, 2)]),
    ]


def _loss_and_grads(model, batch):
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "batch_stats")}
    logits = model(**inputs, use_cache=False).logits
    labels = torch.nn.functional.pad(batch["labels"], (0, 1), value=-100)[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum"
    )
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_and_grads_equal_unpacked(attn):
    model = tiny_model(small_config(), seed=0).train()
    model.set_attn_implementation(attn)
    samples = _samples()
    unpacked = MultimodalCollator(pad_token_id=0)(samples)
    packed = MultimodalCollator(pad_token_id=0, packing=True, max_seq_length=80)(samples)
    assert packed["input_ids"].shape[0] < len(samples)  # really packed
    assert "attention_mask" not in packed
    loss_u, grads_u = _loss_and_grads(model, unpacked)
    loss_p, grads_p = _loss_and_grads(model, packed)
    torch.testing.assert_close(loss_p, loss_u, rtol=1e-5, atol=1e-5)
    assert grads_u.keys() == grads_p.keys()
    for name in grads_u:
        torch.testing.assert_close(grads_p[name], grads_u[name], rtol=1e-4, atol=1e-6, msg=name)


def test_positions_restart_and_visual_rows_in_prompt_order():
    samples = _samples()
    packed = MultimodalCollator(pad_token_id=0, packing=True, max_seq_length=80)(samples)
    rows = pack_rows([int(s["input_ids"].numel()) for s in samples], 80)
    pos = packed["position_ids"]
    for r, row in enumerate(rows):
        col = 0
        for i in row:
            n = samples[i]["input_ids"].numel()
            assert pos[r, col : col + n].tolist() == list(range(n))
            assert torch.equal(packed["input_ids"][r, col : col + n], samples[i]["input_ids"])
            col += n
    order = [i for row in rows for i in row if "pixel_values" in samples[i]]
    assert torch.equal(packed["pixel_values"], torch.cat([samples[i]["pixel_values"] for i in order]))
    assert torch.equal(packed["image_grid_thw"], torch.cat([samples[i]["image_grid_thw"] for i in order]))
    stats = packed["batch_stats"]
    assert stats["real_tokens"] == sum(s["input_ids"].numel() for s in samples)
    assert stats["slots"] == packed["input_ids"].numel()


def test_no_cross_sample_attention():
    """Changing one packed sample's tokens leaves the other samples' logits unchanged."""
    model = tiny_model(small_config(), seed=0)
    a, b = synthetic_sample(0, 10, []), synthetic_sample(1, 10, [])
    b2 = dict(
        b, input_ids=torch.randint(0, 400, b["input_ids"].shape, generator=torch.Generator().manual_seed(9))
    )
    collate = MultimodalCollator(pad_token_id=0, packing=True, max_seq_length=100)
    with torch.no_grad():
        out1 = model(
            **{k: v for k, v in collate([a, b]).items() if k not in ("labels", "batch_stats")},
            use_cache=False,
        )
        out2 = model(
            **{k: v for k, v in collate([a, b2]).items() if k not in ("labels", "batch_stats")},
            use_cache=False,
        )
        alone = model(input_ids=a["input_ids"][None]).logits
    n = a["input_ids"].numel()
    torch.testing.assert_close(out1.logits[0, :n], out2.logits[0, :n])
    torch.testing.assert_close(out1.logits[0, :n], alone[0], rtol=1e-5, atol=1e-5)


def test_pack_rows_first_fit_decreasing():
    assert pack_rows([5, 3, 4, 2], 7) == [[0, 3], [1, 2]]
    assert pack_rows([9, 1], 4) == [[0], [1]]  # an over-long sample gets its own row


def test_flatten_puts_the_batch_in_one_row_for_flash_attention():
    samples = _samples()
    flat = MultimodalCollator(pad_token_id=0, packing=True, max_seq_length=16, flatten=True)(samples)
    assert flat["input_ids"].shape == (1, sum(s["input_ids"].numel() for s in samples))
    starts = (flat["position_ids"][0] == 0).nonzero().squeeze(-1).tolist()
    assert len(starts) == len(samples)  # one restart per sample: what the varlen path turns into cu_seqlens

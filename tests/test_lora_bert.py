"""The `pe` patch's LoRA in transformers' BERT: the low-rank update of every self-attention query
and value projection, switchable by config, and nothing at all when off.

Runs without MMF, on bert-base shapes with random weights (conftest.py's fixtures, shared
with test_pe_bert.py's tests of the adapters; upstream's module comes from the pristine wheel).
"""

from __future__ import annotations

import pytest
import torch

from helpers.bert import LAYERS, bert_config, n_params

H = 768


def test_lora_off_is_upstream_bit_for_bit(patched, pristine, inputs):
    """lora false (and the keys absent) builds upstream's modules: same names, same outputs."""
    for keys in ({}, {"lora": False, "lora_r": 4, "bitfit": True}):
        torch.manual_seed(0)
        ours = patched.BertModel(bert_config(patched, **keys)).eval()
        upstream = pristine.BertModel(pristine.BertConfig()).eval()
        assert list(ours.state_dict()) == list(upstream.state_dict())
        upstream.load_state_dict(ours.state_dict(), strict=True)
        for layer in ours.encoder.layer:
            assert type(layer.attention.self.query) is torch.nn.Linear
            assert type(layer.attention.self.value) is torch.nn.Linear
        with torch.no_grad():
            a, b = ours(**inputs), upstream(**inputs)
        assert torch.equal(a.last_hidden_state, b.last_hidden_state)
        assert torch.equal(a.pooler_output, b.pooler_output)


@pytest.mark.parametrize("r", [2, 8, 16])
def test_lora_adds_two_rank_r_matrices_per_query_and_value(patched, r):
    plain = n_params(patched.BertModel(bert_config(patched)))
    model = patched.BertModel(bert_config(patched, lora=True, lora_r=r))
    # Per layer: query and value each get A (r x H) and B (H x r); nothing else changes.
    assert n_params(model) - plain == LAYERS * 2 * (r * H + H * r)
    keys = [k for k in model.state_dict() if ".lora." in k]
    assert len(keys) == LAYERS * 4
    for i in range(LAYERS):
        for proj in ("query", "value"):
            prefix = f"encoder.layer.{i}.attention.self.{proj}"
            assert f"{prefix}.weight" in model.state_dict()  # upstream's name, kept
            assert model.state_dict()[f"{prefix}.lora.A"].shape == (r, H)
            assert model.state_dict()[f"{prefix}.lora.B"].shape == (H, r)
        assert type(model.encoder.layer[i].attention.self.key) is torch.nn.Linear


def test_lora_starts_as_the_projection_it_wraps(patched, inputs):
    """B is zero at the start: a LoRA model computes what its base computes, exactly."""
    torch.manual_seed(0)
    base = patched.BertModel(bert_config(patched)).eval()
    lora = patched.BertModel(bert_config(patched, lora=True)).eval()
    missing, unexpected = lora.load_state_dict(base.state_dict(), strict=False)
    assert unexpected == [] and all(".lora." in k for k in missing)
    with torch.no_grad():
        assert torch.equal(lora(**inputs).last_hidden_state, base(**inputs).last_hidden_state)


def test_the_update_is_alpha_over_r_times_b_a(patched):
    config = bert_config(patched, lora=True, lora_r=4, lora_alpha=12, lora_dropout=0.0)
    proj = patched.attention_projection(config, H, H).eval()
    torch.nn.init.normal_(proj.lora.B)
    x = torch.randn(2, 5, H)
    expected = x @ proj.weight.T + proj.bias + (12 / 4) * (x @ proj.lora.A.T @ proj.lora.B.T)
    with torch.no_grad():
        assert torch.allclose(proj(x), expected, atol=1e-5)


def test_frozen_base_trains_only_the_updates(patched, inputs):
    model = patched.BertModel(bert_config(patched, lora=True))
    # The patched MMF models' rule: freeze the base, unfreeze names with a ".lora." part.
    for name, p in model.named_parameters():
        p.requires_grad = ".lora." in name
    for layer in model.encoder.layer:  # B = 0 would give A no gradient at the first step
        torch.nn.init.normal_(layer.attention.self.query.lora.B, std=0.02)
        torch.nn.init.normal_(layer.attention.self.value.lora.B, std=0.02)
    out = model(**inputs).last_hidden_state
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, _ in model.named_parameters() if ".lora." in n}
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n in with_grad)


def test_from_pretrained_keeps_the_pretrained_projections(patched, tmp_path):
    """from_pretrained re-initialises the modules that own missing keys; the update is its own
    module, so the pre-trained query and value weights survive."""
    torch.manual_seed(0)
    base = patched.BertModel(bert_config(patched))
    base.save_pretrained(str(tmp_path))
    config = bert_config(patched, lora=True, lora_r=4)
    lora = patched.BertModel.from_pretrained(str(tmp_path), config=config)
    for name, tensor in base.state_dict().items():
        assert torch.equal(lora.state_dict()[name], tensor), name
    b = lora.encoder.layer[0].attention.self.query.lora.B
    assert torch.count_nonzero(b) == 0 and b.shape == (H, 4)


@pytest.mark.parametrize("r", [0, -1, 2.5, True])
def test_a_bad_rank_is_refused(patched, r):
    with pytest.raises(ValueError, match="lora_r"):
        patched.BertModel(bert_config(patched, lora=True, lora_r=r))

"""The `pe` patch of transformers' BERT: the paper's adapter block, and nothing else when off.

Runs without MMF. Compares the patched BertModel with upstream's, loaded from the pristine
transformers wheel, on bert-base shapes with random weights.
"""

from __future__ import annotations

import pytest
import torch

from helpers.bert import LAYERS, bert_config, n_params
from pekit.facts.models import adapter_parameter_count


def test_adapters_off_is_upstream_bit_for_bit(patched, pristine, inputs):
    torch.manual_seed(0)
    ours = patched.BertModel(bert_config(patched)).eval()
    upstream = pristine.BertModel(pristine.BertConfig()).eval()
    ours_state = ours.state_dict()
    assert list(ours_state) == list(upstream.state_dict())
    upstream.load_state_dict(ours_state, strict=True)
    assert all(not layer.output.pe_adapter for layer in ours.encoder.layer)
    with torch.no_grad():
        a = ours(**inputs)
        b = upstream(**inputs)
    assert torch.equal(a.last_hidden_state, b.last_hidden_state)
    assert torch.equal(a.pooler_output, b.pooler_output)


def test_adapters_on_add_the_papers_parameters(patched):
    plain = n_params(patched.BertModel(bert_config(patched)))
    model = patched.BertModel(bert_config(patched, pe_adapter=True))
    assert adapter_parameter_count(768, 10) == 117_580
    assert n_params(model) - plain == LAYERS * 117_580 == 1_410_960
    for layer in model.encoder.layer:
        assert layer.output.AdaptComb1.out_features == 76
        assert layer.output.AdaptComb2.in_features == 76


def test_bottleneck_for_hidden_1024(patched):
    config = bert_config(patched, pe_adapter=True, hidden_size=1024, intermediate_size=4096)
    block = patched.BertOutput(config)
    plain = patched.BertOutput(config, pe_adapter=False)
    assert block.AdaptComb1.out_features == 102
    assert n_params(block) - n_params(plain) == adapter_parameter_count(1024, 10) == 210_022


def test_block_computes_the_papers_formula(patched):
    torch.manual_seed(1)
    block = patched.BertOutput(bert_config(patched, pe_adapter=True)).eval()
    hidden, residual = torch.randn(2, 5, 3072), torch.randn(2, 5, 768)
    with torch.no_grad():
        h = block.dropout(block.dense(hidden))
        imp = h
        h = block.LayerNorm(h)
        h = block.AdaptComb2(torch.relu(block.AdaptComb1(h)))
        expected = block.LayerNorm(h + imp + residual)
        assert torch.equal(block(hidden, residual), expected)
    # The sublayer's LayerNorm is reused: no LayerNorm parameters beyond upstream's.
    assert [n for n, _ in block.named_parameters() if "LayerNorm" in n] == [
        "LayerNorm.weight",
        "LayerNorm.bias",
    ]


def test_frozen_base_trains_only_adapters(patched, inputs):
    model = patched.BertModel(bert_config(patched, pe_adapter=True))
    # The paper's rule: freeze everything, then unfreeze each parameter named "Adapt".
    for p in model.parameters():
        p.requires_grad = False
    for name, p in model.named_parameters():
        if "Adapt" in name:
            p.requires_grad = True
    out = model(**inputs).last_hidden_state
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * target).sum().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    adapters = {n for n, _ in model.named_parameters() if "Adapt" in n}
    assert with_grad == adapters
    assert len(adapters) == LAYERS * 4
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n in adapters)


def test_text_variant_is_adapt_bert_output(patched):
    plain = n_params(patched.BertModel(bert_config(patched)))
    config = bert_config(patched, pe_adapter=True, pe_adapter_variant="text")
    model = patched.BertModel(config)
    assert all(type(layer.output) is patched.AdaptBertOutput for layer in model.encoder.layer)
    assert model.encoder.layer[0].output.AdaptText1.out_features == 153
    assert adapter_parameter_count(768, 5) == 235_929
    assert n_params(model) - plain == LAYERS * 235_929
    assert not any("AdaptComb" in k for k in model.state_dict())


def test_unknown_variant_is_refused(patched):
    with pytest.raises(ValueError, match="pe_adapter_variant"):
        patched.BertOutput(bert_config(patched, pe_adapter=True, pe_adapter_variant="both"))


def test_state_dict_keys_name_the_adapters(patched):
    keys = list(patched.BertModel(bert_config(patched, pe_adapter=True)).state_dict())
    for i in range(LAYERS):
        for name in ("AdaptComb1", "AdaptComb2"):
            for kind in ("weight", "bias"):
                assert f"encoder.layer.{i}.output.{name}.{kind}" in keys
    assert sum("Adapt" in k for k in keys) == LAYERS * 4


@pytest.mark.parametrize("pe_adapter", [False, True])
def test_block_stays_scriptable(patched, pe_adapter):
    # MMF scripts its BERT layers (torchscript support); the adapter switch must not break it.
    block = patched.BertOutput(bert_config(patched, pe_adapter=pe_adapter)).eval()
    scripted = torch.jit.script(block)
    hidden, residual = torch.randn(1, 3, 3072), torch.randn(1, 3, 768)
    with torch.no_grad():
        assert torch.equal(scripted(hidden, residual), block(hidden, residual))

"""transformers' BERT for the `pe` patch's tests: the patched module, upstream's from the pristine
wheel, bert-base configs and inputs (conftest.py's `patched`, `pristine` and `inputs` fixtures)."""

from __future__ import annotations

import importlib.util
import sys
import zipfile

import pytest
import torch

PRISTINE_MODULE = "transformers.models.bert._pristine_modeling_bert"
LAYERS = 12  # bert-base


def patched_modeling_bert():
    """The importable transformers' modeling_bert, which must carry the kit's `pe` patch."""
    from transformers.models.bert import modeling_bert

    if not hasattr(modeling_bert, "AdaptBertOutput"):
        pytest.fail(
            f"{modeling_bert.__file__} lacks the kit's 'pe' patch (no AdaptBertOutput): "
            "run make venv"
        )
    return modeling_bert


def pristine_modeling_bert(transformers_wheel):
    """Upstream modeling_bert.py from the wheel, loaded inside the transformers package."""
    with zipfile.ZipFile(str(transformers_wheel)) as z:
        source = z.read("transformers/models/bert/modeling_bert.py").decode("utf-8")
    spec = importlib.util.spec_from_loader(PRISTINE_MODULE, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[PRISTINE_MODULE] = module  # dataclasses look their module up while defining
    try:
        code = compile(source, f"{transformers_wheel.name}/modeling_bert.py", "exec")
        exec(code, module.__dict__)
    finally:
        del sys.modules[PRISTINE_MODULE]
    assert not hasattr(module, "AdaptBertOutput")
    return module


def bert_config(patched, **pe_keys):
    # BertConfig's defaults are bert-base's shapes.
    config = patched.BertConfig()
    for key, value in pe_keys.items():
        setattr(config, key, value)
    return config


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def bert_inputs():
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, 30522, (2, 16), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 12:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}

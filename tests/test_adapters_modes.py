"""Adapter-only export for every parameter-efficient mode (PE, LoRA, BitFit): the file holds
exactly what the mode trains plus the head, and loads back onto the base bit for bit.

The model is the patched transformers BertModel (small shapes) under MMF's naming
(model.bert.*, model.classifier.*), frozen by the patched MMF models' rule.
"""

import json

import pytest

from pekit import adapters
from pekit.core.errors import PekitError
from pekit.run.record import RunRecord

torch = pytest.importorskip("torch")
nn = torch.nn

MODES = {
    "pe": {"freeze_base": True, "pe_adapter": True, "lora": False, "bitfit": False},
    "lora": {"freeze_base": True, "pe_adapter": False, "lora": True, "bitfit": False},
    "bitfit": {"freeze_base": True, "pe_adapter": False, "lora": False, "bitfit": True},
}


def small_bert(**switches):
    from transformers.models.bert import modeling_bert

    if not hasattr(modeling_bert, "LoRALinear"):
        pytest.fail(f"{modeling_bert.__file__} lacks the kit's 'pe' patch (no LoRALinear)")
    config = modeling_bert.BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    )
    for key, value in switches.items():
        setattr(config, key, value)
    return modeling_bert.BertModel(config, add_pooling_layer=False)


class Classifier(nn.Module):
    def __init__(self, **switches):
        super().__init__()
        self.model = nn.Module()
        self.model.bert = small_bert(**switches)
        self.model.classifier = nn.Linear(32, 2)

    def forward(self, ids):
        return self.model.classifier(self.model.bert(input_ids=ids).last_hidden_state[:, 0])


def freeze_like_mmf(net, mode):
    """The patched visual_bert.py's rule, applied to `net` in `mode`."""
    for p in net.model.bert.parameters():
        p.requires_grad = False
    for name, p in net.model.bert.named_parameters():
        if "Adapt" in name or ".lora." in name:
            p.requires_grad = True
        elif mode["bitfit"] and name.startswith("encoder.") and name.endswith(".bias"):
            p.requires_grad = True


def save(net, path, mode):
    config = {"model": "visual_bert", "model_config": {"visual_bert": dict(mode)}}
    torch.save({"model": net.state_dict(), "config": config}, str(path))


@pytest.mark.parametrize("name", list(MODES))
def test_each_mode_exports_what_it_trains_and_loads_back_bit_for_bit(tmp_path, name):
    mode = MODES[name]
    torch.manual_seed(0)
    base = Classifier()
    torch.save({"model": base.state_dict()}, str(tmp_path / "base.ckpt"))  # the pre-trained base
    net = Classifier(pe_adapter=mode["pe_adapter"], lora=mode["lora"])
    net.load_state_dict(base.state_dict(), strict=False)
    freeze_like_mmf(net, mode)
    with torch.no_grad():  # "training" moves exactly what the mode trains
        for p in net.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    trained = sorted(n for n, p in net.named_parameters() if p.requires_grad)
    save(net, tmp_path / "best.ckpt", mode)

    info = adapters.export(tmp_path / "best.ckpt", out_dir=tmp_path / "export")
    assert info["keys"] == trained  # exactly the trained tensors, nothing else
    assert info["mode"] == mode
    on_disk = json.loads((tmp_path / "export" / "adapters.json").read_text())
    assert on_disk["keys"] == trained and on_disk["parameters"] == sum(
        net.state_dict()[n].numel() for n in trained
    )
    restored_path = adapters.load(tmp_path / "export", tmp_path / "base.ckpt", tmp_path / "r.ckpt")
    restored = torch.load(str(restored_path))["model"]
    expected = net.state_dict()
    assert sorted(restored) == sorted(expected)
    for key, tensor in expected.items():
        assert torch.equal(restored[key], tensor), key
    if name == "lora":
        assert all(".lora." in k or ".classifier." in k for k in trained)
    if name == "bitfit":
        body = [k for k in trained if ".classifier." not in k]
        assert body and all(".bert.encoder." in k and k.endswith(".bias") for k in body)


def test_the_mode_comes_from_the_run_record_without_a_config(tmp_path):
    torch.manual_seed(0)
    net = Classifier()
    freeze_like_mmf(net, MODES["bitfit"])
    run = tmp_path / "runs" / "hmd" / "visual_bert" / "bitfit" / "seed1"
    (run / "mmf").mkdir(parents=True)
    RunRecord(run={"dataset": "hmd", "model": "visual_bert", "mode": "bitfit", "seed": 1}).save(run)
    torch.save({"model": net.state_dict()}, str(run / "mmf" / "best.ckpt"))
    info = adapters.export(run)
    assert info["mode"]["bitfit"] and info["keys"] == sorted(
        n for n, p in net.named_parameters() if p.requires_grad
    )


def test_a_full_fine_tuning_checkpoint_is_refused(tmp_path):
    net = Classifier()
    save(net, tmp_path / "full.ckpt", {"freeze_base": False, "pe_adapter": False})
    with pytest.raises(PekitError, match="Full-FT"):
        adapters.export(tmp_path / "full.ckpt", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()

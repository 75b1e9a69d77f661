"""Adapter-only checkpoints: export what PE trained, load it onto the same base, same outputs."""

import json

import pytest

from pekit import adapters, cli

torch = pytest.importorskip("torch")
nn = torch.nn


class AdaptBlock(nn.Module):
    def __init__(self, hidden, reduction=4):
        super().__init__()
        self.down = nn.Linear(hidden, hidden // reduction)
        self.up = nn.Linear(hidden // reduction, hidden)

    def forward(self, x):
        return x + self.up(torch.relu(self.down(x)))


class Layer(nn.Module):
    def __init__(self, hidden, adapter):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)
        if adapter:
            self.AdaptBertOutput = AdaptBlock(hidden)

    def forward(self, x):
        x = self.dense(x)
        if hasattr(self, "AdaptBertOutput"):
            x = self.AdaptBertOutput(x)
        return self.LayerNorm(x)


class TinyModel(nn.Module):
    """Shaped like MMF's VisualBERT: model.bert.* base, model.classifier.* head."""

    def __init__(self, adapter=True, hidden=16):
        super().__init__()
        self.model = nn.Module()
        self.model.bert = nn.Sequential(*[Layer(hidden, adapter) for _ in range(3)])
        self.model.bert.register_buffer("position_ids", torch.arange(8))
        self.model.classifier = nn.Sequential(nn.Linear(hidden, hidden), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.model.classifier(self.model.bert(x))


def mmf_checkpoint(model, path, **extra):
    config = {"model": "visual_bert", "checkpoint": {"resume_zoo": "visual_bert.pretrained.coco"}}
    ckpt = {
        "model": model.state_dict(),
        "optimizer": {},
        "num_updates": 19000,
        "best_update": 19000,
        "config": config,
    }
    ckpt.update(extra)
    torch.save(ckpt, str(path))


@pytest.fixture
def trained(tmp_path):
    """A 'pre-trained' base saved as the FC-style base checkpoint, and a PE run trained on it."""
    torch.manual_seed(0)
    pretrained = TinyModel(adapter=False)
    base_path = tmp_path / "base.ckpt"
    mmf_checkpoint(pretrained, base_path)
    pe = TinyModel(adapter=True)
    pe.load_state_dict(pretrained.state_dict(), strict=False)
    # "Training": only the adapters and the head move.
    with torch.no_grad():
        for name, p in pe.named_parameters():
            if adapters.is_trained(name):
                p.add_(torch.randn_like(p))
    run = tmp_path / "results" / "runs" / "hmd" / "visual_bert" / "pe" / "seed1"
    (run / "mmf").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"run": {"mode": "pe", "seed": 1}}))
    mmf_checkpoint(pe, run / "mmf" / "best.ckpt")
    return pe, run, base_path


def test_is_trained_selects_adapters_and_head():
    assert adapters.is_trained("model.bert.0.AdaptBertOutput.down.weight")
    assert adapters.is_trained("model.classifier.1.bias")
    assert not adapters.is_trained("model.bert.0.dense.weight")
    assert not adapters.is_trained("model.bert.0.LayerNorm.weight")


def test_export_then_load_reproduces_predictions(trained, tmp_path):
    pe, run, base_path = trained
    manifest = adapters.export(run, base=base_path)
    out = run / "adapters"
    assert manifest["dir"] == str(out)
    on_disk = json.loads((out / "adapters.json").read_text())
    expected = sorted(n for n in pe.state_dict() if "Adapt" in n or ".classifier." in n)
    assert on_disk["keys"] == expected
    assert on_disk["parameters"] == sum(pe.state_dict()[n].numel() for n in expected)
    assert on_disk["base"]["checkpoint"]["path"] == str(base_path)
    assert len(on_disk["base"]["checkpoint"]["sha256"]) == 64
    assert on_disk["base"]["config"] == {
        "model": "visual_bert",
        "resume_zoo": "visual_bert.pretrained.coco",
    }
    assert on_disk["run"] == {"mode": "pe", "seed": 1}
    saved = torch.load(str(out / "adapters.pth"))["model"]
    assert sorted(saved) == expected
    assert (out / "adapters.pth").stat().st_size < (run / "mmf" / "best.ckpt").stat().st_size

    full_path = adapters.load(out, base_path, tmp_path / "restored.ckpt")
    restored = TinyModel(adapter=True)
    restored.load_state_dict(torch.load(str(full_path))["model"], strict=True)
    x = torch.randn(5, 16)
    pe.eval()
    restored.eval()
    with torch.no_grad():
        assert torch.equal(pe(x), restored(x))


def test_load_refuses_a_different_base(trained, tmp_path):
    _, run, _ = trained
    adapters.export(run)
    torch.manual_seed(1)
    other = tmp_path / "other.ckpt"
    mmf_checkpoint(TinyModel(adapter=False), other)
    with pytest.raises(adapters.PekitError, match="same base"):
        adapters.load(run / "adapters", other, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_export_refuses_a_run_without_adapters(tmp_path):
    path = tmp_path / "fc.ckpt"
    mmf_checkpoint(TinyModel(adapter=False), path)
    with pytest.raises(adapters.PekitError, match="no adapter parameters"):
        adapters.export(path)


def test_load_detects_tampered_weights(trained, tmp_path):
    _, run, base_path = trained
    adapters.export(run)
    with open(run / "adapters" / "adapters.pth", "ab") as f:
        f.write(b"x")
    with pytest.raises(adapters.PekitError, match="sha256"):
        adapters.load(run / "adapters", base_path, tmp_path / "x.ckpt")


def test_cli_export_and_load(trained, tmp_path, capsys):
    pe, run, base_path = trained
    assert cli.main(["adapters", "export", str(run), "--out", str(tmp_path / "a")]) == 0
    assert "parameters" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "adapters",
                "load",
                str(tmp_path / "a"),
                "--base",
                str(base_path),
                "--out",
                str(tmp_path / "full.ckpt"),
            ]
        )
        == 0
    )
    state = torch.load(str(tmp_path / "full.ckpt"))["model"]
    assert all(torch.equal(state[k], v) for k, v in pe.state_dict().items())
    assert cli.main(["adapters", "export", str(tmp_path / "missing")]) == 1

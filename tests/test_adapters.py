"""Adapter-only checkpoints: export what PE trained, load it onto the same base, same outputs."""

import json

import pytest

from helpers.tiny_model import RUN, TinyModel, mmf_checkpoint
from pekit import adapters, cli
from pekit.adapters import tensorfile
from pekit.core.digests import sha256_file
from pekit.core.errors import PekitError
from pekit.run.record import RunRecord

torch = pytest.importorskip("torch")


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
    RunRecord(run=dict(RUN), status="finished").save(run)
    mmf_checkpoint(pe, run / "mmf" / "best.ckpt")
    return pe, run, base_path


def test_is_trained_selects_adapters_and_head():
    assert adapters.is_trained("model.bert.0.AdaptBertOutput.down.weight")
    assert adapters.is_trained("model.classifier.1.bias")
    assert not adapters.is_trained("model.bert.0.dense.weight")
    assert not adapters.is_trained("model.bert.0.LayerNorm.weight")


def test_export_then_load_reproduces_predictions(trained, tmp_path):
    pe, run, base_path = trained
    info = adapters.export(run, base=base_path)
    out = run / "adapters"
    assert info["dir"] == str(out)
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
    assert on_disk["run"] == RUN
    saved, meta = tensorfile.load(out / adapters.WEIGHTS)
    assert sorted(saved) == expected and meta == {"format": adapters.FORMAT}
    assert all(torch.equal(saved[n], pe.state_dict()[n]) for n in expected)
    assert (out / adapters.WEIGHTS).stat().st_size < (run / "mmf" / "best.ckpt").stat().st_size

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
    with pytest.raises(PekitError, match="same base"):
        adapters.load(run / "adapters", other, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_export_refuses_a_run_without_adapters(tmp_path):
    path = tmp_path / "fc.ckpt"
    mmf_checkpoint(TinyModel(adapter=False), path)
    with pytest.raises(PekitError, match="no adapter parameters"):
        adapters.export(path)


def test_load_detects_tampered_weights(trained, tmp_path):
    _, run, base_path = trained
    adapters.export(run)
    path = run / "adapters" / adapters.WEIGHTS
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(PekitError, match="sha256"):
        adapters.load(run / "adapters", base_path, tmp_path / "x.ckpt")
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(PekitError, match="weights.bytes"):
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


# ---------------------------------------------------------------------------------------------
# Nothing a file holds is run.


class _Runs:
    """Unpickling this runs a shell command (what a hostile checkpoint does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_an_export_that_would_run_code_is_refused_unrun(trained, tmp_path):
    """An export of the pickled format whose file runs a command, its sha256 matching."""
    _, run, base_path = trained
    adapters.export(run)
    folder = run / "adapters"
    marker = tmp_path / "ran"
    evil = folder / "adapters.pth"
    torch.save({"format": adapters.OLD_FORMAT, "model": {"x": _Runs(marker)}}, str(evil))
    info = json.loads((folder / adapters.INFO).read_text())
    info.update(format=adapters.OLD_FORMAT)
    info["weights"].update(file="adapters.pth", sha256=sha256_file(evil), bytes=evil.stat().st_size)
    (folder / adapters.INFO).write_text(json.dumps(info))
    with pytest.raises(PekitError, match="refusing to load it"):
        adapters.load(folder, base_path, tmp_path / "x.ckpt")
    assert not marker.exists() and not (tmp_path / "x.ckpt").exists()


def test_a_base_that_would_run_code_is_refused_unrun(trained, tmp_path):
    _, run, _ = trained
    adapters.export(run)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"model": {}, "config": _Runs(marker)}, str(evil))
    with pytest.raises(PekitError, match="refusing to load it: it names posix.system"):
        adapters.load(run / "adapters", evil, tmp_path / "x.ckpt")
    assert not marker.exists()


def test_a_garbage_base_is_refused_in_one_line(trained, tmp_path, capsys):
    _, run, _ = trained
    adapters.export(run)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    code = cli.main(
        [
            "adapters",
            "load",
            str(run / "adapters"),
            "--base",
            str(garbage),
            "--out",
            str(tmp_path / "x.ckpt"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "not a torch checkpoint" in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("drop", ["weights", "base", "keys"])
def test_a_manifest_without_a_field_is_refused(trained, tmp_path, drop):
    _, run, base_path = trained
    adapters.export(run)
    path = run / "adapters" / adapters.INFO
    info = json.loads(path.read_text())
    del info[drop]
    path.write_text(json.dumps(info))
    with pytest.raises(PekitError, match=f"field '{drop}"):
        adapters.load(run / "adapters", base_path, tmp_path / "x.ckpt")


def test_a_weights_file_outside_the_export_is_refused(trained, tmp_path):
    _, run, base_path = trained
    adapters.export(run)
    path = run / "adapters" / adapters.INFO
    info = json.loads(path.read_text())
    info["weights"]["file"] = "../mmf/best.ckpt"
    path.write_text(json.dumps(info))
    with pytest.raises(PekitError, match="weights.file"):
        adapters.load(run / "adapters", base_path, tmp_path / "x.ckpt")


def test_an_output_that_is_a_folder_or_under_a_file_is_refused(trained, tmp_path):
    _, run, base_path = trained
    adapters.export(run)
    (tmp_path / "afile").write_text("x")
    for out, says in ((tmp_path, "is a folder"), (tmp_path / "afile" / "x.ckpt", "not a folder")):
        with pytest.raises(PekitError, match=says):
            adapters.load(run / "adapters", base_path, out)
    with pytest.raises(PekitError, match="not a folder"):
        adapters.export(run, out_dir=tmp_path / "afile" / "sub")


def test_tensorfile_round_trips_every_dtype_and_refuses_a_bad_header(tmp_path):
    tensors = {
        "f32": torch.randn(3, 4),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "f16": torch.randn(2, 2).half(),
        "i64": torch.arange(6).reshape(2, 3),
        "b": torch.tensor([True, False]),
        "empty": torch.zeros(0, 7),
    }
    data = tensorfile.dumps(tensors, {"k": "v"})
    back, meta = tensorfile.loads(data)
    assert meta == {"k": "v"}
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t), name
    safetensors = pytest.importorskip("safetensors.torch", reason="safetensors not installed")
    assert torch.equal(safetensors.load(data)["bf16"], tensors["bf16"])


@pytest.mark.parametrize(
    "header, says",
    [
        ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 99]}}, "'x'.data_offsets"),
        ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, "do not hold"),
        ({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, "negative dimension"),
        ({"x": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 4]}}, "'x'.dtype"),
        (
            {
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "y": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]},
            },
            "overlap",
        ),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
def test_tensorfile_refuses_hostile_headers(header, says):
    text = json.dumps(header).encode()
    data = len(text).to_bytes(8, "little") + text + bytes(16)
    with pytest.raises(tensorfile.TensorFileError, match=says):
        tensorfile.loads(data)
    with pytest.raises(tensorfile.TensorFileError, match="does not fit"):
        tensorfile.loads((1 << 40).to_bytes(8, "little") + b"{}")

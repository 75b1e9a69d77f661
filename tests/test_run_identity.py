"""What a run is: its identity (everything that changes what is trained) decides whether its
folder is reused, and the report judges against the paper only runs trained as the paper did.
Before any run starts, what every run needs is checked (preflight): nothing starts, nothing is
written, when something is missing."""

import json

import pytest

from helpers import ready_data
from helpers.paper_runs import write_run
from helpers.runner import args, run_dir, run_record
from pekit import cli, report
from pekit.run import identity, record


def train_calls(calls):
    return [c for c in calls if "run_type=train_val" in c]


def pekit(*argv):
    return cli.main(list(argv))


def test_the_same_run_with_other_settings_is_refused_not_taken_for_the_first(
    tmp_path, fake_mmf, capsys
):
    assert pekit("run", *args(tmp_path, "--settings", "smoke", modes="pe")) == 0
    first = run_record(tmp_path, mode="pe")
    assert first["identity"]["settings"] == "smoke" and first["identity"]["batch_size"] == 4
    capsys.readouterr()
    before = len(fake_mmf())

    # Asked for with the paper's settings: refused, naming the difference; nothing reruns.
    assert pekit("run", *args(tmp_path, modes="pe")) == 2
    err = capsys.readouterr().err
    assert "settings smoke -> paper" in err and "batch_size 4 -> 16" in err, err
    assert "--force" in err and "another --results folder" in err
    assert len(fake_mmf()) == before
    assert run_record(tmp_path, mode="pe") == first

    # Each other part of the identity is refused the same way.
    for extra, says in (
        (("--settings", "smoke", "--batch", "8"), "batch_size 4 -> 8"),
        (("--settings", "smoke", "--override", "training.max_grad_l2_norm=1"), "overrides [] ->"),
    ):
        assert pekit("run", *args(tmp_path, *extra, modes="pe")) == 2
        assert says in capsys.readouterr().err
    assert len(fake_mmf()) == before

    # --force trains it again with what was asked.
    assert pekit("run", *args(tmp_path, "--force", modes="pe")) == 0
    assert run_record(tmp_path, mode="pe")["identity"]["settings"] == "paper"
    assert len(train_calls(fake_mmf())) == len(train_calls(fake_mmf()[:before])) + 1


def test_a_record_from_before_identities_is_compared_on_what_it_kept(tmp_path, fake_mmf, capsys):
    assert pekit("run", *args(tmp_path, "--settings", "smoke")) == 0
    path = run_dir(tmp_path) / record.RECORD
    old = json.loads(path.read_text())
    del old["identity"]
    path.write_text(json.dumps(old))
    assert pekit("run", *args(tmp_path, "--settings", "smoke")) == 0  # the same: reused
    assert pekit("run", *args(tmp_path)) == 2
    assert "settings smoke -> paper" in capsys.readouterr().err


def test_the_identity_names_what_changes_training_and_nothing_else(tmp_path):
    from pekit.facts import settings
    from pekit.run.spec import RunSpec

    base = RunSpec(tmp_path, "hmd", "visual_bert", "pe", 1, settings=settings.PAPER)
    ident = identity.identity(base)
    assert ident["precision"] == "fp32" and ident["gpus"] == 1 and ident["overrides"] == []
    assert ident["pretrained"]["resume_zoo"] == "visual_bert.pretrained.coco"
    assert set(ident["patches"]) == {"pe", "fast"}
    assert ident["mmf_commit"]
    elsewhere = RunSpec(tmp_path, "hmd", "visual_bert", "pe", 1, data_dir=str(tmp_path / "d"))
    assert identity.identity(elsewhere) == ident  # where the data is changes nothing trained
    other = RunSpec(tmp_path, "hmd", "vilbert", "pe", 1)
    assert identity.identity(other)["pretrained"]["resume_zoo"] == "vilbert.pretrained.cc.original"
    assert identity.paper_training(ident) is True
    smoke = identity.identity(
        RunSpec(tmp_path, "hmd", "visual_bert", "pe", 1, settings=settings.SMOKE)
    )
    assert identity.paper_training(smoke) is False and identity.label(smoke) == "smoke"
    big = identity.identity(RunSpec(tmp_path, "hmd", "visual_bert", "pe", 1, batch=32))
    assert identity.paper_training(big) is False and identity.label(big) == "paper, batch 32"


def test_the_report_shows_settings_and_judges_only_the_papers_training(tmp_path):
    results = tmp_path / "results"
    write_run(results, "hmd", "pe")  # the paper's settings, the paper's numbers: pass
    # The paper's numbers from a 4-update smoke run: shown, never a pass.
    folder = write_run(results, "mmh", "pe")
    rec = json.loads((folder / record.RECORD).read_text())
    rec["run"].update(settings="smoke", batch_size=4)
    rec["identity"] = {"settings": "smoke", "batch_size": 4, "gpus": 1, "precision": "fp32"}
    (folder / record.RECORD).write_text(json.dumps(rec))
    # An older record: no identity, only its spec's settings, and those are `fast`.
    folder = write_run(results, "mmh", "fc")
    rec = json.loads((folder / record.RECORD).read_text())
    rec["run"]["settings"] = "fast"
    (folder / record.RECORD).write_text(json.dumps(rec))

    rep = report.build_report(results, plots=False)
    rows = {(r["dataset"], r["mode"], r["settings"]): r for r in rep["table2"] if r["n"]}
    assert rows[("hmd", "pe", "paper")]["pass"] is True
    smoke = rows[("mmh", "pe", "smoke")]
    assert smoke["roc_auc"]["diff"] == pytest.approx(0.0, abs=1e-9)
    assert smoke["pass"] is None and smoke["judged"] is False
    assert rows[("mmh", "fc", "fast")]["pass"] is None
    md = report.render_markdown(rep)
    assert "| MMH | VisualBERT | PE | smoke | 1 | 0.7" in md
    assert md.count("| *not judged* |") == 2
    table2 = md.split("## Table II")[1].split("##")[0]
    assert "| HMD | VisualBERT | PE | paper | 1 | 0.7281 |" in table2
    assert [
        x.endswith("| pass |")
        for x in table2.splitlines()
        if x.startswith("| HMD | VisualBERT | PE |")
    ] == [True]
    assert {r["settings"] for r in rep["runs"]} == {"paper", "smoke", "fast"}


# --- preflight -------------------------------------------------------------------------------


def test_reproduce_without_the_dataset_refuses_before_any_mmf_run(tmp_path, fake_mmf, capsys):
    results, nodata = tmp_path / "fresh-results", tmp_path / "nodata"
    argv = ["--dataset", "hmd", "--results", str(results), "--data-dir", str(nodata)]
    assert pekit("reproduce", *argv) == 2
    err = capsys.readouterr().err
    assert fake_mmf() == []  # no mmf_run started
    assert not results.exists() and not nodata.exists()  # nothing written, not even a folder
    lines = err.strip().splitlines()
    assert "nothing started, 5 problem(s) first:" in lines[0]
    for line in lines[1:]:
        assert "blocks 3 runs (hmd/visual_bert/fc/seed1, ...); fix: pekit " in line, line
    assert any(f"pekit data hmd ZIP_OR_FOLDER --data-dir {nodata}" in x for x in lines)
    assert any("pekit assets fetch visual_bert.pretrained.coco" in x for x in lines)

    # The dry run makes the same checks, prints the commands, and says what would stop them.
    assert pekit("run", "--dry-run", *argv) == 2
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 3 and "nothing would start, 5 problem(s)" in out.err
    assert fake_mmf() == [] and not results.exists()


def test_preflight_wants_mmhs_features_and_fasts_lmdb(tmp_path, fake_mmf, capsys, monkeypatch):
    data = tmp_path / "mmh-data"
    ready_data.lay_out(data, ("mmh",), ("visual_bert",))
    features = data / "datasets" / "mmh" / "defaults" / "features"
    (features / "1.npy").unlink()
    argv = ["--dataset", "mmh", "--modes", "pe", "--results", str(tmp_path / "r")]
    assert pekit("run", "--dry-run", *argv, "--data-dir", str(data)) == 2
    assert f"{features}: no region features" in capsys.readouterr().err
    monkeypatch.setenv("PEKIT_FAST_PRECISION", "bf16")
    monkeypatch.setattr("pekit.facts.settings.mmf_has_fast_keys", lambda: True)
    assert pekit("run", "--dry-run", *argv, "--data-dir", str(data), "--settings", "fast") == 2
    assert "features.lmdb: no LMDB features (SETTINGS=fast)" in capsys.readouterr().err


def test_an_override_of_the_features_or_weights_drops_those_checks(tmp_path, fake_mmf, capsys):
    data = tmp_path / "d"
    ready_data.lay_out(data, ("hmd",), ())  # annotations only: no asset fetched
    argv = ["--dataset", "hmd", "--modes", "fc", "--results", str(tmp_path / "r")]
    own = ["--override", "dataset_config.hateful_memes.features.train[0]=x"]
    own += ["--override", "checkpoint.resume_zoo=my.zoo.key"]
    assert pekit("run", "--dry-run", *argv, "--data-dir", str(data), *own) == 2
    err = capsys.readouterr().err
    assert "hateful_memes.features" not in err and "visual_bert.pretrained" not in err
    assert "bert-base-uncased" in err  # still read: the tokenizer
    ready_data.lay_out(data, ("hmd",), ("visual_bert",))
    assert pekit("run", "--dry-run", *argv, "--data-dir", str(data)) == 0


def test_doctor_fails_naming_the_runs_a_missing_thing_blocks(tmp_path):
    from pekit.workflows import doctor

    found = doctor.check_data(tmp_path / "none", ("hmd",), ("visual_bert",))
    fails = [f for f in found if f.status == doctor.FAIL]
    assert fails and all("(blocks hmd visual_bert runs)" in f.detail for f in fails)
    assert all(f.fix.startswith("pekit ") for f in fails)
    ready_data.lay_out(tmp_path / "ready", ("hmd",), ("visual_bert",))
    found = doctor.check_data(tmp_path / "ready", ("hmd",), ("visual_bert",))
    assert [f.status for f in found] == [doctor.OK, doctor.OK]

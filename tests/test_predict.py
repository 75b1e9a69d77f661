"""`pekit predict` without MMF: a finished run made by the stand-in mmf_run (the `fake_mmf`
fixture), whose recorded command is then pointed at a stand-in scorer that does what MMF's
prediction does (reads the annotations it is given, writes id,proba,label into env.report_dir).
What MMF itself predicts, and its agreement with a run's prediction files, is in test_smoke.py."""

from __future__ import annotations

import csv
import json
import sys
import textwrap

import pytest

from helpers.runner import args, run_dir
from pekit import cli
from pekit.features.files import synthetic_features, write_features
from pekit.run import record

SCORER = textwrap.dedent(
    """
    import ast, json, os, sys
    opts = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    with open(os.environ["SCORER_CALLS"], "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\\n")
    code = int(os.environ.get("SCORER_EXIT", "0"))
    if code:
        print("scorer: failing as told", flush=True)
        sys.exit(code)
    name = opts["datasets"]
    (annotations,) = ast.literal_eval(opts[f"dataset_config.{name}.annotations.test"])
    rows = [json.loads(line) for line in open(annotations)]
    drop = int(os.environ.get("SCORER_DROP", "0"))
    report = opts["env.report_dir"]
    os.makedirs(report, exist_ok=True)
    with open(os.path.join(report, name + "_run_test_2026-12-04T10:00:00.csv"), "w") as f:
        f.write("id,proba,label\\n")
        for row in rows[drop:]:
            p = (len(row["text"]) % 10) / 10 + 0.05
            f.write(f"{row['id']},{p},{int(p > 0.5)}\\n")
    """
)


def proba(text):
    return (len(text) % 10) / 10 + 0.05


@pytest.fixture
def run(tmp_path, fake_mmf, monkeypatch):
    """A finished run whose recorded command is the stand-in scorer; returns its folder."""
    assert cli.main(["run", *args(tmp_path, "--override", "training.max_updates=3000")]) == 0
    folder = run_dir(tmp_path)
    scorer = tmp_path / "scorer.py"
    scorer.write_text(SCORER)
    data = json.loads((folder / record.RECORD).read_text())
    # The recorded command's options stay; only the program is the scorer.
    options = [c for c in data["command"] if "=" in c]
    data["command"] = [sys.executable, str(scorer), *options]
    (folder / record.RECORD).write_text(json.dumps(data))
    monkeypatch.setenv("SCORER_CALLS", str(tmp_path / "scorer_calls.jsonl"))
    for var in ("SCORER_EXIT", "SCORER_DROP"):
        monkeypatch.delenv(var, raising=False)
    return folder


def scorer_calls(tmp_path):
    path = tmp_path / "scorer_calls.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def memes(tmp_path, rows, name="memes.jsonl"):
    """A table of `rows` (dicts) and a features folder holding each row's image's features."""
    features = tmp_path / "features"
    features.mkdir(exist_ok=True)
    rng = __import__("numpy").random.default_rng(0)
    for row in rows:
        image = row.get("image") or row.get("img")
        if isinstance(image, str):
            write_features(
                features, image.rsplit("/", 1)[-1].split(".")[0], *synthetic_features(rng)
            )
    table = tmp_path / name
    if name.endswith(".csv"):
        with open(table, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return table, features


ROWS = [
    {"id": "a", "image": "img/101.png", "text": "first meme"},
    {"id": "b", "image": "img/102.png", "text": "the second one"},
    {"id": "c", "img": "img/103.png", "text": "three"},
]


def predict(run, out, *extra):
    return cli.main(["predict", "--run", str(run), "--out", str(out), *extra])


@pytest.mark.parametrize("out_name", ["scores.csv", "scores.jsonl"])
def test_a_table_is_scored_in_its_order_by_the_runs_command(tmp_path, run, out_name):
    table, features = memes(tmp_path, ROWS)
    out = tmp_path / out_name
    assert predict(run, out, "--table", str(table), "--features", str(features)) == 0
    if out_name.endswith(".csv"):
        rows = list(csv.DictReader(out.open()))
        assert list(rows[0]) == ["id", "proba", "label"]
    else:
        rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    for row, given in zip(rows, ROWS):
        assert float(row["proba"]) == proba(given["text"])
        assert int(row["label"]) == int(proba(given["text"]) > 0.5)
    (argv,) = scorer_calls(tmp_path)
    # Scoring, not training: the run's options, then the prediction's, which win (later).
    tail = argv[argv.index("run_type=test") :]
    assert "evaluation.predict=true" in tail and len(tail) == 10
    assert [a for a in argv if a.startswith("run_type=")] == ["run_type=test"]
    assert f"checkpoint.resume_file={run / 'mmf' / 'best.ckpt'}" in argv
    assert not any(a.startswith(("checkpoint.resume=", "checkpoint.max_to_keep=")) for a in argv)


def test_one_meme_gets_features_from_the_extractor(tmp_path, run):
    from pekit.workflows import predict as workflow

    class Extractor:
        calls = []

        def extract(self, paths):
            self.calls.append(list(paths))
            rng = __import__("numpy").random.default_rng(1)
            return [synthetic_features(rng) for _ in paths]

    image = tmp_path / "meme.png"
    __import__("PIL.Image").Image.new("RGB", (32, 24), "red").save(image)
    out = tmp_path / "one.jsonl"
    rows = workflow.predict(
        workflow.one_meme(image, "hello there", "m1"), run, out, extractor=Extractor
    )
    assert Extractor.calls == [[image]]
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["m1"]
    assert rows[0][1] == str(proba("hello there"))


@pytest.mark.parametrize(
    "rows, name, expected",
    [
        ([{"id": "a", "text": "x"}], "t.csv", "expected the columns id, image (or img) and text"),
        ([{"id": "", "image": "img/1.png", "text": "x"}], "t.jsonl", "t.jsonl:1: field 'id'"),
        (
            [
                {"id": "a", "image": "img/1.png", "text": "x"},
                {"id": "a", "image": "img/2.png", "text": "y"},
            ],
            "t.jsonl",
            "t.jsonl:2: id 'a' repeats the one of",
        ),
        ([{"id": "a", "image": "img/1.png", "text": 3}], "t.jsonl", "t.jsonl:1: field 'text' is 3"),
        ([{"id": "a", "image": None, "text": "x"}], "t.jsonl", "t.jsonl:1: field 'image'"),
        ([{"id": "a", "image": "img/1.png", "text": "x"}], "t.tsv", "must be .jsonl or .csv"),
    ],
)
def test_a_bad_table_is_one_line_naming_the_row_and_nothing_is_written(
    tmp_path, run, capsys, rows, name, expected
):
    table, features = memes(tmp_path, rows, name=name if not name.endswith(".tsv") else "t.jsonl")
    if name.endswith(".tsv"):
        table = table.rename(tmp_path / name)
    out = tmp_path / "out.csv"
    code = predict(run, out, "--table", str(table), "--features", str(features))
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and expected in err and len(err.splitlines()) == 1, err
    assert not out.exists() and scorer_calls(tmp_path) == []


def test_a_bad_json_line_is_named(tmp_path, run, capsys):
    table = tmp_path / "t.jsonl"
    table.write_text('{"id": "a", "image": "img/1.png", "text": "x"}\n{"id": \n')
    assert predict(run, tmp_path / "o.csv", "--table", str(table), "--features", str(tmp_path)) == 1
    assert f"{table}:2: not valid JSON" in capsys.readouterr().err


def test_missing_features_and_bad_images_are_refused_by_row(tmp_path, run, capsys):
    table, features = memes(tmp_path, ROWS)
    (features / "102.npy").unlink()
    out = tmp_path / "o.csv"
    assert predict(run, out, "--table", str(table), "--features", str(features)) == 1
    assert f"{table}:2: no features" in capsys.readouterr().err
    # Without --features the images are read: a missing one, then a truncated one.
    (tmp_path / "img").mkdir()
    assert predict(run, out, "--table", str(table), "--frcnn-dir", str(tmp_path)) == 1
    assert f"{table}:1: image {tmp_path / 'img' / '101.png'} not found" in capsys.readouterr().err
    for n in (101, 102, 103):
        __import__("PIL.Image").Image.new("RGB", (8, 8)).save(tmp_path / "img" / f"{n}.png")
    data = (tmp_path / "img" / "102.png").read_bytes()
    (tmp_path / "img" / "102.png").write_bytes(data[: len(data) // 2])
    assert predict(run, out, "--table", str(table), "--frcnn-dir", str(tmp_path)) == 1
    assert f"{table}:2: image" in capsys.readouterr().err
    assert not out.exists() and scorer_calls(tmp_path) == []


def test_mmf_failing_or_scoring_too_few_leaves_no_output(tmp_path, run, capsys, monkeypatch):
    table, features = memes(tmp_path, ROWS)
    out = tmp_path / "o.csv"
    monkeypatch.setenv("SCORER_EXIT", "3")
    assert predict(run, out, "--table", str(table), "--features", str(features)) == 1
    err = capsys.readouterr().err
    assert "exited 3" in err and not out.exists()
    assert "failing as told" in (tmp_path / "o.csv.mmf.log").read_text()
    monkeypatch.setenv("SCORER_EXIT", "0")
    monkeypatch.setenv("SCORER_DROP", "1")
    assert predict(run, out, "--table", str(table), "--features", str(features)) == 1
    assert "scored 2 of 3 memes" in capsys.readouterr().err and not out.exists()


def test_options_that_do_not_go_together_are_usage_errors(tmp_path, run, capsys):
    table, features = memes(tmp_path, ROWS)
    base = ["--features", str(features)]
    assert predict(run, tmp_path / "o.txt", "--table", str(table), *base) == 2
    assert "expected a .jsonl or .csv file" in capsys.readouterr().err
    assert predict(run, tmp_path / "o.csv", "--table", str(table), "--text", "x", *base) == 2
    assert predict(run, tmp_path / "o.csv", "--image", str(table), *base) == 2
    assert predict(run, tmp_path / "o.csv", "--table", str(table), "--adapters", "a", *base) == 2
    assert "--adapters and --base go together" in capsys.readouterr().err


def test_a_folder_that_is_no_finished_run_is_refused(tmp_path, run, capsys):
    table, features = memes(tmp_path, ROWS)
    given = ["--table", str(table), "--features", str(features)]
    assert predict(tmp_path, tmp_path / "o.csv", *given) == 1
    assert "not a run folder" in capsys.readouterr().err
    data = json.loads((run / record.RECORD).read_text())
    data.update(status="failed", exit_status=1)
    (run / record.RECORD).write_text(json.dumps(data))
    assert predict(run, tmp_path / "o.csv", *given) == 1
    assert "the run is failed; predict needs a finished run" in capsys.readouterr().err
    assert scorer_calls(tmp_path) == []


def test_a_run_trained_on_several_nodes_is_scored_by_one_local_process(tmp_path, run):
    data = json.loads((run / record.RECORD).read_text())
    srun = ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    data["command"] = [*srun, *data["command"], "distributed.port=29500"]
    (run / record.RECORD).write_text(json.dumps(data))
    table, features = memes(tmp_path, ROWS)
    assert (
        predict(run, tmp_path / "scores.csv", "--table", str(table), "--features", str(features))
        == 0
    )
    (argv,) = scorer_calls(tmp_path)  # the scorer itself ran, here, without srun
    assert not any(a.startswith(("distributed.port=", "--nodes")) for a in argv)
    assert [a for a in argv if a.startswith("distributed.world_size=")][-1].endswith("=1")

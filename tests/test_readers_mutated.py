"""Every reader of a file, fed every mutation of a valid file the kit wrote
(tests/helpers/mutations.py), through the `pekit` command that reads it.

For each mutation the command must end with exit code 0, 1 or 2, never 3 ("a bug of the kit"),
with no traceback; a refusal is one line naming the file. Each outcome is counted per reader:

- refused: a clean refusal (one line naming the file; for `pekit status`, the run's line says
  why, naming the file; for `pekit doctor`, a FAIL finding naming the metadata file);
- same: accepted, and the command's output is the valid file's (the mutation kept the meaning:
  a field no reader uses, a NaN read as null, ...);
- changed: accepted with another output, because the mutated file is still a valid one that
  says something else (seed 0 instead of 1, a checksum that no longer matches: missing);
- other: anything else. Every reader must have none.

The commands run in this process (`pekit.cli.main`, the function the `pekit` script calls): a
subprocess per mutation would take minutes; a sample goes through the `pekit` script itself
(test_a_sample_through_the_pekit_script). Mutations are sampled with a fixed seed. The table
of counts is printed (pytest -s; PEKIT_SHOW_CHANGED=1 also lists the mutations accepted with
another output) and kept in COUNTS.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import pytest

from helpers import mutations
from pekit import cli
from pekit.core import location
from pekit.run import command, record

WRITER = Path(__file__).resolve().parent / "helpers" / "mmf_log_writer.py"
SEED = 19
COUNTS = {}
SPENT = Counter()
CATEGORIES = ("refused", "same", "changed", "other")
PREFLIGHT = "problem(s) first:"
PLOT_EVERY = 20


def pekit(*argv):
    """(exit code, stdout, stderr) of `pekit ARGV`, run in this process; an exception that
    escapes the command (which the `pekit` script would show as a traceback) is the code None
    with its traceback as stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
        except BaseException:  # noqa: BLE001 - what a user would see as a traceback
            return None, out.getvalue(), err.getvalue() + traceback.format_exc()
    return code, out.getvalue(), err.getvalue()


def crashed(result):
    code, out, err = result
    return (
        code not in (0, 1, 2)
        or "Traceback" in out + err
        or "bug of the kit" in err
        or "PEKIT_DEBUG" in err
    )


def one_line_naming(err, *names):
    """Whether `err` is one line naming one of `names` (beside the line a data command prints
    first, saying which data folder it uses)."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("data: ")]
    return len(lines) == 1 and any(str(n) in lines[0] for n in names)


def judge(result, baseline, names, same=None):
    """The category of `result` against the valid file's `baseline` (see the module's doc):
    `names` are the file's names a refusal must mention; `same(result, baseline)` tells an
    accepted result that means what the valid file meant (default: the same exit code, stdout
    and stderr)."""
    if crashed(result):
        return "other"
    code, out, err = result
    if (same or _same)(result, baseline):
        return "same"
    if code == 2 and PREFLIGHT in err:
        # A valid file saying something else (a run trained otherwise, an asset missing): the
        # preflight's judgement, one line per problem.
        return "changed"
    if code != 0:
        return "refused" if one_line_naming(err, *names) else "other"
    return "changed"


def _same(result, baseline):
    return result == baseline


class Tally:
    """Counts per reader, and the first few results of each 'other' for the failure message."""

    def __init__(self, reader):
        self.reader = reader
        self.counts = Counter()
        self.others = []
        self.changed = []
        COUNTS[reader] = self.counts

    def add(self, category, mutation, result):
        self.counts["tried"] += 1
        self.counts[category] += 1
        if category == "changed":
            self.changed.append(mutation.label)
        if category == "other" and len(self.others) < 8:
            code, out, err = result
            self.others.append(f"{mutation.label}: exit {code}: {(err or out).strip()[-600:]}")

    def check(self):
        print(
            f"\n{self.reader}: "
            + ", ".join(f"{k} {self.counts[k]}" for k in ("tried", *CATEGORIES))
        )
        if self.changed and os.environ.get("PEKIT_SHOW_CHANGED"):
            print("  changed: " + "; ".join(self.changed))
        assert not self.others, "\n".join(self.others)


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("PEKIT_DEBUG", raising=False)


# ---- run records -----------------------------------------------------------------------------

RUN_ARGS = ("--dataset", "hmd", "--modes", "fc", "--override", "training.max_updates=3000")


def _fake_mmf_env(mp, root):
    mp.setenv(command.ENV_MMF_RUN, f"{sys.executable} {WRITER}")
    mp.setenv("FAKE_MMF_CALLS", str(root / "calls.jsonl"))
    mp.setenv(record.ENV_PROFILE, "modern")
    for var in ("FAKE_MMF_EXIT", "FAKE_MMF_STOP_AT", "FAKE_MMF_KILL", "CUDA_VISIBLE_DEVICES"):
        mp.delenv(var, raising=False)


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory):
    """A run the kit trained and tested (with tests/helpers/mmf_log_writer.py as MMF): its results
    folder, data folder, run folder and the valid run.json and train.log it wrote."""
    from helpers import ready_data

    root = tmp_path_factory.mktemp("kit-run")
    with pytest.MonkeyPatch.context() as mp:
        _fake_mmf_env(mp, root)
        ready_data.lay_out(root / "data")
        args = ["run", *RUN_ARGS, "--results", root / "results", "--data-dir", root / "data"]
        code, out, err = pekit(*args)
        assert code == 0, err
    folder = root / "results" / "runs" / "hmd" / "visual_bert" / "fc" / "seed1"
    return {
        "root": root,
        "results": root / "results",
        "data": root / "data",
        "folder": folder,
        "record": (folder / record.RECORD).read_bytes(),
        "log": (folder / "train.log").read_bytes(),
    }


def _run_commands(run):
    results, data = run["results"], run["data"]
    dry = ["run", "--dry-run", *RUN_ARGS, "--results", results, "--data-dir", data]
    return {
        "report": ["report", "--results", results],
        "status": ["status", "--results", results],
        "run --dry-run": dry,
    }


def _report_json(run):
    """report.json without its lists of plot files (drawn for some mutations only)."""
    path = run["results"] / "report.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    return {k: v for k, v in report.items() if k not in ("plots", "study_plots")}


def _plots(monkeypatch, draw):
    from pekit.report import build, plots
    from pekit.report import study_section as study

    monkeypatch.setattr(build, "render_plots", plots.render_plots if draw else _no_plots)
    monkeypatch.setattr(
        build, "render_study_plots", study.render_study_plots if draw else _no_plots
    )


def _no_plots(*args, **kwargs):
    return []


def drive(monkeypatch, path, mutation_list, commands, tallies, names=(), judges=None):
    """Write each mutation at `path` (restored afterwards) and run each of `commands` (name:
    argv of `pekit`, or a function giving (code, stdout, stderr)) on it; count the outcomes in
    `tallies` (name: Tally) by `judges` (name: function(result, baseline, names), default
    judge). The report draws its plots for one mutation in PLOT_EVERY (a second each)."""
    judges = judges or {}
    names = (path, *names)
    valid = path.read_bytes()

    def call(command):
        return command() if callable(command) else pekit(*command)

    _plots(monkeypatch, draw=False)
    baseline = {name: call(c) for name, c in commands.items()}
    for name, result in baseline.items():
        assert not crashed(result), (name, result)
    try:
        for i, mutation in enumerate(mutation_list):
            _plots(monkeypatch, draw=i % PLOT_EVERY == 0)
            mutations.write(path, mutation)
            for name, c in commands.items():
                started = time.monotonic()
                result = call(c)
                SPENT[name] += time.monotonic() - started
                category = judges.get(name, judge)(result, baseline[name], names)
                tallies[name].add(category, mutation, result)
    finally:
        mutations.write(path, mutations.Mutation("valid", (), valid))
        _plots(monkeypatch, draw=True)
    for tally in tallies.values():
        tally.check()


def _judge_status(result, baseline, names):
    """`pekit status` shows a run it cannot read on its line (state error) and goes on."""
    if crashed(result):
        return "other"
    code, out, err = result
    if code == 0 and " error " in out:
        lines = out.splitlines()
        return "refused" if len(lines) == 1 and any(str(n) in out for n in names) else "other"
    return "same" if _same(result, baseline) else "changed"


def _run_judges(run):
    """The report's judge (an accepted report is the same when its report.json is the valid
    record's, which the report written last holds) and status's."""
    valid = _report_json(run)

    def judge_report(result, baseline, names):
        def same(r, b):
            return r[0] == b[0] == 0 and _report_json(run) == valid

        return judge(result, baseline, names, same)

    return {"report": judge_report, "status": _judge_status}


def test_run_records_through_report_status_and_dry_run(kit_run, monkeypatch):
    _fake_mmf_env(monkeypatch, kit_run["root"])
    path = kit_run["folder"] / record.RECORD
    chosen = mutations.mutations(json.loads(kit_run["record"]), seed=SEED, limit=260)
    commands = _run_commands(kit_run)
    pekit(*commands["report"])  # the valid record's report, to compare with
    tallies = {name: Tally(f"run.json via pekit {name}") for name in commands}
    drive(monkeypatch, path, chosen, commands, tallies, judges=_run_judges(kit_run))


def test_training_logs_through_logs_status_and_report(kit_run, monkeypatch):
    _fake_mmf_env(monkeypatch, kit_run["root"])
    path = kit_run["folder"] / "train.log"
    chosen = mutations.text_mutations(kit_run["log"], seed=SEED, limit=90, lines=10)
    commands = {"logs": ["logs", path], **_run_commands(kit_run)}
    del commands["run --dry-run"]  # a dry run reads no log
    pekit(*commands["report"])
    tallies = {name: Tally(f"train.log via pekit {name}") for name in commands}
    drive(monkeypatch, path, chosen, commands, tallies, judges=_run_judges(kit_run))


# ---- asset records and MMF's markers -----------------------------------------------------------

ASSET = "visual_bert.pretrained.coco"  # fetched into the kit run's data folder, marker and all


@pytest.fixture(scope="module")
def kit_asset(kit_run):
    """The kit's record of an asset and MMF's .built.json beside it, as `pekit assets fetch`
    writes them (the download and unpacking stood in for), in the kit run's data folder."""
    from pekit import assets
    from pekit.assets import download

    facts = assets.load_facts()
    asset = next(a for a in facts.assets if a.name == ASSET)
    data = kit_run["data"]
    dest = data / asset.dest
    for stale in (download.record_path(asset, data), dest / download.MMF_MARKER):
        stale.unlink(missing_ok=True)

    def fetched(asset, spec, dest, facts, *args, **kwargs):
        path = Path(dest) / spec.file_name
        path.write_bytes(b"")
        return path, spec.sha256, True, True  # path, sha256, verified, downloaded now

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(download, "fetch_file", fetched)
        mp.setattr(download, "extract", lambda archive, dest, owned=(): [])
        result = download.fetch_asset(asset, data, facts)
    assert result["status"] == "fetched"
    return {"record": download.record_path(asset, data), "marker": dest / download.MMF_MARKER}


@pytest.mark.parametrize("which", ["record", "marker"])
def test_asset_records_and_markers_through_assets_list_and_dry_run(
    kit_run, kit_asset, monkeypatch, which
):
    _fake_mmf_env(monkeypatch, kit_run["root"])
    path = kit_asset[which]
    chosen = mutations.mutations(json.loads(path.read_bytes()), seed=SEED, limit=150)
    commands = {
        "assets list": ["assets", "list", "--data-dir", kit_run["data"]],
        # A run not trained yet (seed 2): its preflight reads the states of the assets it needs.
        "run --dry-run": [*_run_commands(kit_run)["run --dry-run"], "--seeds", "2"],
    }
    tallies = {name: Tally(f"{path.name} via pekit {name}") for name in commands}
    drive(monkeypatch, path, chosen, commands, tallies)


# ---- wheelhouse records and node freezes ------------------------------------------------------


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def kit_wheelhouse(tmp_path_factory):
    """This Python's freeze (node.py freeze) and the wheelhouse `pekit wheelhouse --node` makes
    for it (pip's downloads stood in for by empty wheels): the kit's own files."""
    from pekit.setup import node, wheelhouse

    root = tmp_path_factory.mktemp("kit-wheelhouse")
    freeze = root / "node.json"
    freeze.write_text(json.dumps(node.freeze(), indent=1))

    def pip(cmd, what, env=None):
        folder = cmd[cmd.index("--dest" if "--dest" in cmd else "--wheel-dir") + 1]
        for item in cmd:
            if "==" in item:
                name, version = item.split("==", 1)
                (Path(folder) / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(
                    b"a wheel"
                )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wheelhouse, "run_pip", pip)
        wheelhouse.build(root / "wheels", node.NodeFreeze.read(freeze), echo=lambda text: None)
    return {"root": root, "freeze": freeze, "wheels": root / "wheels"}


def _stopped_before_pip(monkeypatch):
    """pip stands in by a refusal: a command that reads its files and gets this far accepted
    them (it would download now)."""
    from pekit.core.errors import PekitError
    from pekit.setup import gpu_bundle, node, wheelhouse

    def no_pip(cmd, what, env=None):
        raise PekitError(f"{what}: STOP here (the files were read)")

    def no_copy(dest):
        raise PekitError("copying the kit: STOP here (the files were read)")

    def no_venv(venv):
        raise node.NodeError("making the venv: STOP here (the files were read)")

    monkeypatch.setattr(wheelhouse, "run_pip", no_pip)
    monkeypatch.setattr(gpu_bundle, "_copy_kit", no_copy)
    monkeypatch.setattr(node, "_clear", no_venv)


def _node_venv(wheels):
    """`python3 node.py venv` on the node (node.main, run in this process): the node's Python
    described as this one is, without running it each time."""
    import importlib.metadata

    from pekit.setup import node

    def describe(python, names):
        versions = {}
        for name in names:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = None
        return {
            "python": "{}.{}".format(*sys.version_info[:2]),
            "site_dirs": [],
            "versions": versions,
        }

    def run():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            original, node._describe = node._describe, describe
            try:
                code = node.main(
                    ["venv", "--venv", str(wheels.parent / "venv"), "--wheelhouse", str(wheels)]
                )
            except BaseException:  # noqa: BLE001 - what a user would see as a traceback
                return None, out.getvalue(), err.getvalue() + traceback.format_exc()
            finally:
                node._describe = original
        return code, out.getvalue(), err.getvalue()

    return run


def test_wheelhouse_records_through_wheelhouse_gpu_bundle_and_node_venv(
    kit_wheelhouse, monkeypatch
):
    _stopped_before_pip(monkeypatch)
    root, wheels = kit_wheelhouse["root"], kit_wheelhouse["wheels"]
    path = wheels / "wheelhouse.json"
    chosen = mutations.mutations(json.loads(path.read_bytes()), seed=SEED, limit=220)
    commands = {
        "wheelhouse": ["wheelhouse", wheels, "--node", kit_wheelhouse["freeze"]],
        "gpu-bundle": [
            "gpu-bundle",
            root / "bundle",
            "--node",
            kit_wheelhouse["freeze"],
            "--wheelhouse",
            wheels,
        ],
        "node.py venv": _node_venv(wheels),
    }
    tallies = {name: Tally(f"wheelhouse.json via {name}") for name in commands}
    drive(monkeypatch, path, chosen, commands, tallies, names=(wheels,))


def test_node_freezes_through_wheelhouse_and_gpu_bundle(kit_wheelhouse, monkeypatch):
    _stopped_before_pip(monkeypatch)
    root, freeze = kit_wheelhouse["root"], kit_wheelhouse["freeze"]
    chosen = mutations.mutations(json.loads(freeze.read_bytes()), seed=SEED, limit=220)
    commands = {
        "wheelhouse --list": ["wheelhouse", root / "other", "--node", freeze, "--list"],
        "gpu-bundle": [
            "gpu-bundle",
            root / "bundle",
            "--node",
            freeze,
            "--wheelhouse",
            kit_wheelhouse["wheels"],
        ],
    }
    tallies = {name: Tally(f"node freeze via pekit {name}") for name in commands}
    drive(monkeypatch, freeze, chosen, commands, tallies)


# ---- installed packages' metadata (pekit doctor) -----------------------------------------------

DIST = "omegaconf"  # a lock package the kit needs at exactly its version


def _doctor_fast(monkeypatch):
    """The doctor without its two slow checks that read no file of a package's: torch and the
    GPUs, and the import probe (a subprocess importing every package)."""
    from pekit.workflows import doctor

    monkeypatch.setattr(doctor, "check_torch", lambda: [])
    monkeypatch.setattr(doctor, "probe_imports", lambda *a, **k: [])


def _metadata_mutations(text):
    data = text.encode()
    version = next(line for line in text.splitlines() if line.startswith("Version: "))
    found = []
    for kind, value in {
        "missing": None,
        "empty": "",
        "not-pep440": "banana",
        "endless": "1." + "0" * 5000,
        "nul": "2.1.0\x00",
        "multi-line": "2.1.0\n\tcontinued",
        "huge": "9" * 5000,
        "negative": "-1",
        "zero": "0",
    }.items():
        line = "" if value is None else f"Version: {value}"
        found.append(
            mutations.Mutation(f"version:{kind}", (), text.replace(version, line).encode())
        )
    found.append(mutations.Mutation("name:missing", (), text.replace(f"Name: {DIST}", "").encode()))
    found.append(
        mutations.Mutation(
            "requires:garbage", (), (text + "Requires-Dist: (((((\x00\n" * 50).encode()
        )
    )
    found += mutations.text_mutations(data, seed=SEED, limit=30, lines=3)
    return found


def test_installed_metadata_through_doctor(kit_run, monkeypatch, tmp_path):
    import importlib
    import importlib.metadata

    _doctor_fast(monkeypatch)
    real = importlib.metadata.distribution(DIST)
    text = real.read_text("METADATA")
    info_name = Path(real._path).name
    commands = {"doctor": ["doctor", "--data-dir", kit_run["data"]]}
    tally = Tally(f"{DIST}'s METADATA via pekit doctor")
    baseline = pekit(*commands["doctor"])
    assert not crashed(baseline), baseline
    for i, mutation in enumerate(_metadata_mutations(text)):
        site = tmp_path / f"site{i}"
        info = site / info_name
        info.mkdir(parents=True)
        mutations.write(info / "METADATA", mutation)
        sys.path.insert(0, str(site))  # found before the real one
        importlib.invalidate_caches()
        try:
            result = pekit(*commands["doctor"])
        finally:
            sys.path.remove(str(site))
        tally.add(_judge_doctor(result, baseline, (info,)), mutation, result)
    tally.check()


def _judge_doctor(result, baseline, names):
    """The doctor reports a package with broken metadata as a FAIL finding naming the file."""
    if crashed(result):
        return "other"
    code, out, err = result
    if result == baseline:
        return "same"
    finding = [line for line in out.splitlines() if line.strip().startswith(f"FAIL  {DIST}")]
    if finding and any(str(n) in finding[0] for n in names):
        return "refused"
    return "changed" if code in (0, 1) and not err.strip() else "other"


# ---- the patch manifest ------------------------------------------------------------------------


def test_patch_manifest_through_patch_status_and_dry_run(kit_run, monkeypatch, tmp_path):

    _fake_mmf_env(monkeypatch, kit_run["root"])
    patches = tmp_path / "patches"
    shutil.copytree(location.kit_root() / "patches", patches)
    monkeypatch.setenv("PEKIT_PATCHES_DIR", str(patches))
    path = patches / "manifest.json"
    chosen = mutations.mutations(json.loads(path.read_bytes()), seed=SEED, limit=160)
    commands = {
        "patch status": ["patch", "status"],
        "run --dry-run": _run_commands(kit_run)["run --dry-run"],
    }
    tallies = {name: Tally(f"patches/manifest.json via pekit {name}") for name in commands}
    drive(monkeypatch, path, chosen, commands, tallies)


# ---- the kit's facts ---------------------------------------------------------------------------


def _facts_readers(tmp_path):
    """(facts file, function reading it from a given path) for each facts file read at run time."""
    from pekit import assets
    from pekit.facts import datasets as data_facts
    from pekit.facts import models, pins
    from pekit.setup import compat, wheelhouse

    def compat_facts(path):
        compat.facts.cache_clear()
        original, compat.FACTS = compat.FACTS, path
        try:
            return compat.facts()
        finally:
            compat.FACTS = original
            compat.facts.cache_clear()

    def dataset_facts(path):
        original, data_facts.DATASETS_FILE = data_facts.DATASETS_FILE, path
        try:
            return data_facts.dataset_facts("hmd")
        except Exception as e:  # a UsageError naming the dataset: the facts were read
            if type(e).__name__ == "UsageError" and "unknown dataset" in str(e):
                return None
            raise
        finally:
            data_facts.DATASETS_FILE = original

    def lock_graph(path):
        original, wheelhouse.GRAPH = wheelhouse.GRAPH, str(path)
        try:
            return wheelhouse.lock_graph()
        finally:
            wheelhouse.GRAPH = original

    facts = pins.FACTS_DIR
    return {
        "pins.json": (facts / "pins.json", pins.load_pins),
        "assets.json": (facts / "assets.json", assets.load_facts),
        "datasets.json": (facts / "datasets.json", dataset_facts),
        "paper_reference.json": (facts / "paper_reference.json", models.load_paper_reference),
        "node_compat.json": (facts / "node_compat.json", compat_facts),
        "modern.requires.json": (location.kit_root() / wheelhouse.GRAPH, lock_graph),
    }


def test_the_kits_facts_are_read_through_the_one_json_reader(tmp_path):
    """A facts file is the kit's own, read at run time: whatever it holds, it is read or refused
    in one line naming it (pekit.core.jsonfile), never a traceback."""
    from pekit.core.errors import PekitError

    for name, (source, read) in _facts_readers(tmp_path).items():
        tally = Tally(f"facts/{name} (its reader)")
        doc = json.loads(source.read_bytes())
        target = tmp_path / name
        target.write_bytes(source.read_bytes())
        valid = read(target)
        for mutation in mutations.mutations(doc, seed=SEED, limit=60):
            mutations.write(target, mutation)
            try:
                got = read(target)
            except PekitError as e:
                result = (1, "", str(e))
                category = "refused" if one_line_naming(str(e), target) else "other"
            except BaseException:  # noqa: BLE001 - a traceback
                result = (None, "", traceback.format_exc())
                category = "other"
            else:
                result = (0, "", "")
                category = "same" if got == valid else "changed"
            tally.add(category, mutation, result)
        tally.check()


# ---- a sample through the `pekit` script -------------------------------------------------------


def test_a_sample_through_the_pekit_script(kit_run, kit_asset, kit_wheelhouse, tmp_path):
    """A few of the mutations above through `python -m pekit` in a subprocess: one line, exit
    code 1, no traceback, as in this process."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop("PEKIT_DEBUG", None)
    deep = mutations.Mutation("deep-document", (), b"[" * 100_000 + b"]" * 100_000)
    huge = b'{"python": "3.11", "files": [{"file": "a-1-py3-none-any.whl", "bytes": 1e400}]}'
    cases = [
        (kit_run["folder"] / record.RECORD, deep, ["report", "--results", kit_run["results"]]),
        (kit_asset["record"], deep, ["assets", "list", "--data-dir", kit_run["data"]]),
        (
            kit_asset["marker"],
            mutations.Mutation("folder", (), None),
            ["assets", "list", "--data-dir", kit_run["data"]],
        ),
        (
            kit_wheelhouse["wheels"] / "wheelhouse.json",
            mutations.Mutation("huge", (), huge),
            ["wheelhouse", kit_wheelhouse["wheels"], "--python", "3.11"],
        ),
        (
            kit_wheelhouse["freeze"],
            mutations.Mutation("garbage", (), b"{\xff\xfe"),
            ["wheelhouse", tmp_path / "w", "--node", kit_wheelhouse["freeze"], "--list"],
        ),
    ]
    for path, mutation, argv in cases:
        valid = path.read_bytes()
        mutations.write(path, mutation)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pekit", *map(str, argv)],
                capture_output=True,
                text=True,
                env=env,
            )
        finally:
            mutations.write(path, mutations.Mutation("valid", (), valid))
        assert proc.returncode == 1, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and "bug of the kit" not in proc.stderr
        assert one_line_naming(proc.stderr, path), proc.stderr


# ---- readers without a mutation matrix of their own ---------------------------------------------


def _broken_dist(site, name="brokenpkg", metadata=b"Name: brokenpkg\nVersion: \xff\xfe\n"):
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_bytes(metadata)
    return info


def test_a_node_freeze_leaves_out_a_distribution_whose_metadata_is_broken(tmp_path, capsys):
    import importlib

    from pekit.setup import node

    info = _broken_dist(tmp_path / "site")
    _broken_dist(tmp_path / "site", "noversion", b"Name: noversion\n")
    sys.path.insert(0, str(tmp_path / "site"))
    importlib.invalidate_caches()
    try:
        doc = node.freeze()
    finally:
        sys.path.remove(str(tmp_path / "site"))
    err = capsys.readouterr().err
    assert "brokenpkg" not in doc["packages"] and "noversion" not in doc["packages"]
    assert f"{info}: metadata that cannot be read" in err and "noversion" in err
    assert node.NodeFreeze.from_dict(doc, "node.json").packages  # the rest is read back


def test_the_lock_graph_refuses_broken_metadata_naming_it(tmp_path):
    import importlib

    from pekit.setup import compat, wheelhouse

    info = _broken_dist(tmp_path / "site")
    sys.path.insert(0, str(tmp_path / "site"))
    importlib.invalidate_caches()
    try:
        with pytest.raises(compat.MetadataError) as err:
            wheelhouse.requires_graph(["brokenpkg"])
    finally:
        sys.path.remove(str(tmp_path / "site"))
    assert str(err.value).startswith(str(info / "METADATA")) and "\n" not in str(err.value)


def test_the_doctor_names_a_broken_asset_record_in_a_finding(kit_run, kit_asset, monkeypatch):
    _doctor_fast(monkeypatch)
    valid = kit_asset["record"].read_bytes()
    kit_asset["record"].write_text('{"name": 3}')
    try:
        code, out, err = pekit("doctor", "--data-dir", kit_run["data"])
    finally:
        kit_asset["record"].write_bytes(valid)
    assert code == 1 and not crashed((code, out, err)), err
    fails = [
        line
        for line in out.splitlines()
        if line.strip().startswith("FAIL") and "field 'name'" in line
    ]
    assert fails and all(str(kit_asset["record"]) in line for line in fails), out


@pytest.mark.parametrize(
    "content, says",
    [
        (b'{"img": "img/1.png"}\n[1]\n', ":2: field 'img' is None"),
        (b'{"img": 3}\n', ":1: field 'img' is 3"),
        (b'{"img": "/etc/passwd"}\n', ":1: field 'img'"),
        (b'{"img": "../x.png"}\n', ":1: field 'img'"),
        (b"[" * 100000 + b"\n", ":1: not valid JSON (nested deeper than 64 levels)"),
        (b'{"img": "a.png"\n', ":1: not valid JSON"),
        (b"\xff\n", "annotations are not UTF-8"),
    ],
)
def test_the_mmh_annotations_the_feature_extractor_reads_are_checked(tmp_path, content, says):
    from pekit.core.errors import PekitError
    from pekit.features import frcnn

    path = tmp_path / "train.jsonl"
    path.write_bytes(content)
    with pytest.raises(PekitError) as err:
        frcnn.annotation_images(path)
    assert str(err.value).startswith(str(path)) and says in str(err.value)
    assert "\n" not in str(err.value)


def test_counts():
    """The table of counts per reader, after the tests above (pytest -s shows it)."""
    print("\n| reader | tried | refused cleanly | accepted, same | accepted, changed | other |")
    print("|---|---|---|---|---|---|")
    for reader, c in COUNTS.items():
        cells = " | ".join(str(c[k]) for k in ("tried", *CATEGORIES))
        print(f"| {reader} | {cells} |")
    print("seconds per command: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(SPENT.items())))
    assert not any(c["other"] for c in COUNTS.values())

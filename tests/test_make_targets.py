"""The pipeline's Make targets as scripts: the command lines they build, and their refusals."""

from __future__ import annotations

import json
import shlex
import subprocess

from helpers import ready_data
from helpers.env import make_env
from pekit.core import location
from pekit.facts import pins

REPO = location.kit_root()


def _make(*args, env=None):
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=make_env(**(env or {})),
    )


def _last_command(out):
    """The recipe's last command, with make's line continuations joined."""
    text = out.stdout.decode().replace("\\\n", " ")
    return " ".join(text.strip().splitlines()[-1].split())


def test_reproduce_passes_every_option_to_the_runner_in_the_image():
    out = _make(
        "-n",
        "reproduce-hmd",
        "MODELS=vilbert",
        "MODES=pe,fc",
        "SEEDS=1,2",
        "GPUS=2",
        "BATCH=8",
        "SETTINGS=paper",
        "PROFILE=paper",
    )
    assert out.returncode == 0, out.stdout
    cmd = _last_command(out)
    assert cmd.startswith("docker run --rm")
    assert "--gpus 2 " in cmd and "pekit:paper pekit reproduce --dataset hmd" in cmd
    for flag in (
        "--models 'vilbert'",
        "--modes 'pe,fc'",
        "--seeds '1,2'",
        "--gpus '2'",
        "--batch '8'",
        "--settings 'paper'",
    ):
        assert flag in cmd, cmd
    assert "/mmf/data" in cmd and "/mmf/results" in cmd


def test_gpus_that_are_not_a_count_mean_the_runners_default():
    cmd = _last_command(_make("-n", "reproduce-mmh", "GPUS=all"))
    assert "--gpus all" in cmd and "--dataset mmh" in cmd
    assert "pekit reproduce" in cmd and "--gpus" not in cmd.split("pekit reproduce")[1]
    cmd = _last_command(_make("-n", "reproduce-mmh", "GPUS=device=1"))
    assert "--gpus '\"device=1\"'" in cmd
    assert "--gpus" not in cmd.split("pekit reproduce")[1]


def test_options_reach_the_runner_only_when_set():
    cmd = _last_command(_make("-n", "reproduce-hmd", "LOCAL=1"))
    runner = cmd.split("pekit reproduce")[1]
    for flag in ("--models", "--modes", "--seeds", "--gpus", "--batch", "--settings"):
        assert flag not in runner, runner


def test_local_runs_use_the_test_environment():
    out = _make("-n", "reproduce-hmd", "LOCAL=1", "MODES=pe", "DATA_DIR=/data/x")
    cmd = _last_command(out)
    assert cmd.startswith(".venv/bin/python -m pekit reproduce --dataset hmd")
    assert "--data-dir /data/x" in cmd and "docker" not in cmd


def test_every_results_writer_honours_results_dir():
    for target, flag in (
        ("reproduce-mmh", "--results"),
        ("report", "--results"),
        ("bench", "--out"),
    ):
        local = _last_command(_make("-n", target, "LOCAL=1", "RESULTS_DIR=/r/x"))
        assert f"{flag} /r/x" in local, local
        image = _last_command(_make("-n", target, "RESULTS_DIR=/r/x"))
        assert "-v /r/x:/mmf/results" in image and f"{flag} /mmf/results" in image, image


def test_data_targets_refuse_without_src():
    out = _make("data-hmd", "SRC=")
    assert out.returncode != 0
    assert b"set SRC to your copy" in out.stdout


def test_unknown_profile_is_refused():
    out = _make("build", "PROFILE=ancient")
    assert out.returncode != 0 and b"PROFILE must be one of: modern paper" in out.stdout


def test_data_mmh_converts_on_the_host(tmp_path):
    from pekit.workflows.synthetic_mmh import make_tree

    src = make_tree(tmp_path / "MMHS150K")
    data = tmp_path / "data"
    out = _make(
        "data-mmh",
        f"SRC={src}",
        f"DATA_DIR={data}",
        f"CACHE_DIR={tmp_path / 'cache'}",
        f"RESULTS_DIR={tmp_path / 'results'}",
        "HOST_PYTHON=python3",
    )
    assert out.returncode == 0, out.stdout.decode()
    ann = data / "datasets" / "mmh" / "defaults" / "annotations"
    rows = [json.loads(line) for line in (ann / "train.jsonl").read_text().splitlines()]
    assert rows and all({"id", "tweet_id", "text", "label", "img"} <= set(r) for r in rows)
    images = data / "datasets" / "mmh" / "defaults" / "images" / "img_resized"
    assert images.is_dir() and not images.is_symlink()  # copied: usable inside the image


def test_own_python_runs_local_targets_there_and_builds_no_venv():
    """The no-Docker path: LOCAL=1 with OWN_PYTHON never creates .venv nor installs a stack
    (which would replace the environment's own torch)."""
    for target in ("reproduce-hmd", "report", "smoke", "demo"):
        out = _make("-n", "-B", target, "LOCAL=1", "OWN_PYTHON=/opt/node/bin/python")
        text = out.stdout.decode()
        assert out.returncode == 0, text
        assert "-m venv" not in text and "pip install" not in text, text
        assert "/opt/node/bin/python -m pekit" in text, text
        if target != "report":  # the report needs no MMF
            assert "/opt/node/bin/python -m pekit prepare" in text, text
    assert "/opt/node/bin/python -m pekit reproduce --dataset hmd" in _last_command(
        _make("-n", "reproduce-hmd", "LOCAL=1", "OWN_PYTHON=/opt/node/bin/python")
    )
    # The demo keeps its folder under RESULTS_DIR, where the docs' later commands look.
    assert (
        _last_command(_make("-n", "demo", "OWN_PYTHON=/opt/node/bin/python", "RESULTS_DIR=/r"))
        == "/opt/node/bin/python -m pekit demo --results /r/demo"
    )


def _script_call(out, script):
    """(variables, arguments) of the `make -n` line that runs docker/checks/SCRIPT: the
    NAME='value' words before it, the words after it."""
    text = out.stdout.decode().replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word == f"docker/checks/{script}":
                return dict(w.split("=", 1) for w in words[:i]), words[i + 1 :]
    raise AssertionError(f"no call of {script} in:\n{text}")


def test_paper_check_passes_its_variables_to_its_script():
    out = _make(
        "-n",
        "paper-check",
        "PYTHON37=/opt/py37/bin/python3.7",
        "PAPER_VENV=/tmp/paper",
        "MMF_FROM=/m/mmf.bundle",
        "PYTEST_ARGS=-k 'pe or fc' -x",
    )
    assert out.returncode == 0, out.stdout
    variables, args = _script_call(out, "paper-check.sh")
    assert variables == {"PYTHON37": "/opt/py37/bin/python3.7", "PAPER_VENV": "/tmp/paper"}
    assert args == ["/m/mmf.bundle", "-k", "pe or fc", "-x"]
    # MMF's source: MMF_FROM, else MMF_SRC, else the pinned repository; PYTHON37 left to find.
    variables, args = _script_call(_make("-n", "paper-check", "MMF_SRC=/s"), "paper-check.sh")
    assert variables == {"PYTHON37": "", "PAPER_VENV": ".venv-paper"} and args == ["/s"]
    _, args = _script_call(_make("-n", "paper-check", "MMF_SRC="), "paper-check.sh")
    assert args == [pins.get("mmf.repository")]


def test_gpu_targets_pass_their_variables_to_their_scripts():
    given = {
        "NODE_PYTHON": "/opt/node/bin/python3",
        "GPU_BUNDLE": "/b",
        "GPU_CHECK_VENV": "/v",
        "RESULTS_DIR": "/r",
        "MINUTES": "5",
        "MMF_FROM": "/m/mmf.bundle",
        "WHEELHOUSE": "/w",
        "HOST_PYTHON": "/usr/bin/python3",
    }
    out = _make("-n", "gpu-check", *(f"{k}={v}" for k, v in given.items()))
    assert out.returncode == 0, out.stdout
    assert _script_call(out, "gpu-check.sh") == (given, [])
    bundle = {k: given[k] for k in ("GPU_BUNDLE", "MMF_FROM", "WHEELHOUSE", "HOST_PYTHON")}
    out = _make(
        "-n", "gpu-bundle", "NODE_FREEZE=node.json", *(f"{k}={v}" for k, v in bundle.items())
    )
    assert _script_call(out, "gpu-bundle.sh") == ({"NODE_FREEZE": "node.json", **bundle}, [])
    # The defaults the docs name.
    variables, _ = _script_call(_make("-n", "gpu-check", "RESULTS_DIR=/r"), "gpu-check.sh")
    assert variables["NODE_PYTHON"] == "python3" and variables["MINUTES"] == ""
    assert variables["GPU_BUNDLE"] == ".cache/gpu-bundle"
    assert variables["GPU_CHECK_VENV"] == ".venv-gpu-check"
    twin = {
        "PYTHON312": "/opt/py312/bin/python3.12",
        "TWIN_VENV": "/t",
        "RESULTS_DIR": "/r",
        "MINUTES": "",
        "MMF_FROM": "/m/mmf.bundle",
        "WHEELHOUSE": "",
        "HOST_PYTHON": "/usr/bin/python3",
    }
    out = _make("-n", "twin-check", *(f"{k}={v}" for k, v in twin.items()))
    assert out.returncode == 0, out.stdout
    assert _script_call(out, "twin-check.sh") == (twin, [])
    variables, _ = _script_call(_make("-n", "twin-check"), "twin-check.sh")
    assert variables["TWIN_VENV"] == ".venv-node-twin" and variables["PYTHON312"] == ""
    assert variables["RESULTS_DIR"] == f"{REPO}/results"


def test_data_targets_check_src_with_the_goals_named():
    variables, args = _script_call(_make("-n", "data-mmh", "SRC="), "require.sh")
    assert variables == {} and args == ["SRC", "", "data-mmh"]


def test_study_dry_run_prints_the_matrix_without_image_or_venv(tmp_path):
    matrix = ("study-mmh", "DRY_RUN=1", "LORA_RANKS=4,8", "MODES=fc,lora", "SEEDS=1,2")
    where = (f"RESULTS_DIR={tmp_path / 'results'}", f"DATA_DIR={tmp_path / 'data'}")
    empty = _make(*matrix, *where)
    text = empty.stdout.decode()
    # The matrix and its hours are printed; the runs' needs are checked as a real run would.
    assert "| VisualBERT | LoRA (rank 4) | rank 4 | 1,2 |" in text
    assert "Estimated total:" in text and "docker" not in text
    assert empty.returncode != 0 and "fix: pekit data mmh" in text, text
    ready_data.lay_out(tmp_path / "data", ("mmh",), ("visual_bert",))
    ready = _make(*matrix, *where)
    assert ready.returncode == 0, ready.stdout.decode()
    assert f"data: {tmp_path / 'data'} (--data-dir)" in ready.stdout.decode()
    assert not (tmp_path / "results").exists()


def test_study_passes_its_sizes_to_the_runner_in_the_image():
    cmd = _last_command(_make("-n", "study-hmd", "PE_REDUCTIONS=5,10", "MODELS=vilbert"))
    assert cmd.startswith("docker run --rm") and "pekit study --dataset hmd" in cmd
    assert "--pe-reductions '5,10'" in cmd and "--models 'vilbert'" in cmd
    assert "--dry-run" not in cmd and "--results /mmf/results" in cmd

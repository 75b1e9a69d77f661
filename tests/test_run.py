"""The experiment runner, driving a stand-in mmf_run (tests/helpers/mmf_log_writer.py) as a real
process."""

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from helpers.runner import args, run_dir, run_record
from pekit import cli
from pekit.core import location
from pekit.core.errors import PekitError, UsageError
from pekit.facts import pins
from pekit.run import command, devices, record
from pekit.run import options as run_cli

WRITER = Path(__file__).resolve().parent / "helpers" / "mmf_log_writer.py"
SMALL = ["--override", "training.max_updates=3000"]


def dry_run(tmp_path, capsys, *extra, **kw):
    assert cli.main(["run", "--dry-run", *args(tmp_path, *extra, **kw)]) == 0
    return [shlex.split(x) for x in capsys.readouterr().out.splitlines()]


def opts(cmd):
    return dict(a.split("=", 1) for a in cmd if "=" in a)


def test_dry_run_is_the_paper_command(tmp_path, capsys, fake_mmf):
    cmds = dry_run(tmp_path, capsys, modes="fc,pe,full")
    assert len(cmds) == 3
    fc, pe, full = (opts(c) for c in cmds)
    assert cmds[0][:2] == [sys.executable, str(WRITER)]
    assert fc["config"] == "projects/visual_bert/configs/hateful_memes/from_coco.yaml"
    assert fc["model"] == "visual_bert" and fc["datasets"] == "hateful_memes"
    assert fc["run_type"] == "train_val"
    assert fc["env.save_dir"] == str((run_dir(tmp_path) / "mmf").resolve())
    assert fc["training.seed"] == "1"
    # The paper's settings.
    assert fc["training.batch_size"] == "16"
    assert fc["training.max_updates"] == "22000"
    assert fc["optimizer.type"] == "adam_w"
    assert float(fc["optimizer.params.lr"]) == 5e-5
    assert float(fc["optimizer.params.eps"]) == 1e-8
    assert fc["scheduler.type"] == "warmup_linear"
    assert fc["scheduler.params.num_warmup_steps"] == "2000"
    assert fc["training.evaluation_interval"] == "1000"
    assert fc["training.early_stop.criteria"] == "hateful_memes/roc_auc"
    assert fc["training.early_stop.minimize"] == "False"
    assert fc["training.num_workers"] == "0"
    assert fc["training.fp16"] == "False"
    assert fc["dataset_config.hateful_memes.annotations.val[0]"] == (
        "hateful_memes/defaults/annotations/dev_seen.jsonl"
    )
    # The modes differ only in the freeze/adapter switches.
    assert (
        fc["model_config.visual_bert.freeze_base"],
        fc["model_config.visual_bert.pe_adapter"],
    ) == ("True", "False")
    assert pe["model_config.visual_bert.pe_adapter"] == "True"
    assert full["model_config.visual_bert.freeze_base"] == "False"
    assert "checkpoint.resume" not in fc
    # MMF would otherwise spread the run over every visible GPU.
    assert fc["distributed.world_size"] == "1"


def test_dry_run_options(tmp_path, capsys, fake_mmf, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # a node with 4 GPUs
    (cmd,) = dry_run(
        tmp_path, capsys, "--gpus", "4", "--batch", "8", "--seeds", "7", "--models", "vilbert"
    )
    o = opts(cmd)
    assert o["distributed.world_size"] == "4"
    assert o["training.batch_size"] == "8"
    assert o["training.seed"] == "7" and o["env.save_dir"].endswith("vilbert/fc/seed7/mmf")
    assert o["config"] == "projects/vilbert/configs/hateful_memes/from_cc.yaml"
    seeds = dry_run(tmp_path, capsys, "--seeds", "1,2,3")
    assert [opts(c)["training.seed"] for c in seeds] == ["1", "2", "3"]


def test_empty_make_variables_mean_defaults(tmp_path, capsys, fake_mmf):
    cmds = dry_run(
        tmp_path,
        capsys,
        "--models",
        "",
        "--seeds",
        "",
        "--gpus",
        "",
        "--batch",
        "",
        "--settings",
        "",
        modes="",
    )
    assert [opts(c)["model_config.visual_bert.pe_adapter"] for c in cmds] == [
        "False",
        "True",
        "False",
    ]


def test_bad_choices_are_usage_errors(tmp_path, capsys, fake_mmf):
    assert cli.main(["run", "--dry-run", *args(tmp_path, "--settings", "turbo")]) == 2
    assert "turbo" in capsys.readouterr().err
    assert cli.main(["run", "--dry-run", *args(tmp_path, modes="fc,prefix")]) == 2
    assert "prefix" in capsys.readouterr().err


def test_run_writes_its_record_and_tests(tmp_path, capsys, fake_mmf):
    (expected,) = dry_run(tmp_path, capsys, *SMALL)
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 0
    m = run_record(tmp_path)
    assert m["status"] == "finished" and m["exit_status"] == 0
    assert m["run"] == {
        "dataset": "hmd",
        "model": "visual_bert",
        "mode": "fc",
        "variant": "fc",
        "seed": 1,
        "settings": "paper",
        "batch_size": 16,
        "gpus": 1,
        "data_dir": str(tmp_path / "data"),
    }
    assert m["command"] == expected
    assert m["kit"]["version"] and "git_revision" in m["kit"]
    assert m["profile"] == "modern"
    assert m["mmf"]["commit"] == pins.get("mmf.commit")
    patches = location.kit_root() / "patches" / "manifest.json"
    if patches.exists():
        assert m["patches"]["sha256"] == hashlib.sha256(patches.read_bytes()).hexdigest()
    env = m["environment"]
    assert {"python", "torch", "transformers"} <= set(env) or "error" in env
    cfg = run_dir(tmp_path) / "mmf" / "config.yaml"
    assert m["config"] == {
        "path": "mmf/config.yaml",
        "sha256": hashlib.sha256(cfg.read_bytes()).hexdigest(),
    }
    assert m["start"] <= m["end"]
    assert len(m["attempts"]) == 1 and m["attempts"][0]["resume"] is False
    # MMF's output is kept, colour codes and all.
    assert "\x1b[32m" in (run_dir(tmp_path) / "train.log").read_text()
    # The best checkpoint was scored on both labelled HMD test splits.
    assert set(m["test"]) == {"test_seen", "test_unseen"}
    for split, t in m["test"].items():
        assert t["status"] == "finished"
        assert t["metrics"]["roc_auc"] == 0.70
        o = opts(t["command"])
        assert o["run_type"] == "test"
        best = run_dir(tmp_path) / "mmf" / "best.ckpt"
        assert o["checkpoint.resume_file"] == str(best.resolve())
        assert o["checkpoint.resume_pretrained"] == "False"
        assert o["dataset_config.hateful_memes.annotations.test[0]"].endswith(f"/{split}.jsonl")


def test_finished_run_is_not_rerun(tmp_path, capsys, fake_mmf):
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 0
    n = len(fake_mmf())
    assert n == 5  # train, two test splits, two predicting processes
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 0
    assert len(fake_mmf()) == n
    assert "not rerun" in capsys.readouterr().err


def test_visible_devices_are_the_first_n():
    assert devices.visible_devices(1, {}) == "0"
    assert devices.visible_devices(2, {}, available=4) == "0,1"
    assert devices.visible_devices(1, {"CUDA_VISIBLE_DEVICES": "3, 5"}) == "3"
    assert (
        devices.visible_devices(2, {"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b,GPU-c"}) == "GPU-a,GPU-b"
    )
    assert devices.visible_devices(1, {"CUDA_VISIBLE_DEVICES": ""}) == ""  # no GPU: a CPU run
    with pytest.raises(UsageError, match="makes only 0 visible"):
        devices.visible_devices(2, {"CUDA_VISIBLE_DEVICES": ""})
    with pytest.raises(UsageError, match="GPUS=3, but CUDA_VISIBLE_DEVICES=3,5 makes only 2"):
        devices.visible_devices(3, {"CUDA_VISIBLE_DEVICES": "3,5"})


def test_mmf_sees_only_the_runs_gpus(tmp_path, fake_mmf, monkeypatch):
    # MMF with world_size 1 would otherwise wrap the model in DataParallel over every GPU.
    seen = tmp_path / "devices.txt"
    monkeypatch.setenv("FAKE_MMF_DEVICES", str(seen))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 0
    # train, test_seen, test_unseen, then the predictions (one GPU: see command.predict)
    assert seen.read_text().splitlines() == ["2"] * 5
    m = run_record(tmp_path)
    assert m["attempts"][0]["cuda_visible_devices"] == "2"
    # the versions and GPU recorded are those of what the run could see
    assert m["environment"]["cuda_visible_devices"] == "2"
    assert "CUDA_VISIBLE_DEVICES=2 " in (run_dir(tmp_path) / "train.log").read_text()


def test_more_gpus_than_visible_is_refused_before_anything_is_written(
    tmp_path, capsys, fake_mmf, monkeypatch
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert cli.main(["run", "--gpus", "4", *args(tmp_path, *SMALL)]) == 2
    assert "GPUS=4, but CUDA_VISIBLE_DEVICES=2,3 makes only 2 visible" in capsys.readouterr().err
    assert fake_mmf() == [] and not run_dir(tmp_path).exists()


def test_failed_run_is_marked_then_resumed(tmp_path, capsys, fake_mmf, monkeypatch):
    monkeypatch.setenv("FAKE_MMF_EXIT", "3")
    monkeypatch.setenv("FAKE_MMF_STOP_AT", "1500")
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 1
    m = run_record(tmp_path)
    assert m["status"] == "failed" and m["exit_status"] == 3
    assert m["test"] == {}  # a failed run is not tested
    assert "failed" in capsys.readouterr().err
    monkeypatch.delenv("FAKE_MMF_EXIT")
    monkeypatch.delenv("FAKE_MMF_STOP_AT")
    (cmd,) = dry_run(tmp_path, capsys, *SMALL)
    assert opts(cmd)["checkpoint.resume"] == "True"
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 0
    m = run_record(tmp_path)
    assert m["status"] == "finished"
    assert [a["resume"] for a in m["attempts"]] == [False, True]
    assert [a["exit_status"] for a in m["attempts"]] == [3, 0]


def test_killed_run_is_interrupted_and_resumes_from_checkpoint(tmp_path, fake_mmf, monkeypatch):
    from pekit.run import mmf_log as logs

    monkeypatch.setenv("FAKE_MMF_STOP_AT", "1500")
    monkeypatch.setenv("FAKE_MMF_KILL", "1")
    assert cli.main(["run", *args(tmp_path, *SMALL, "--no-test")]) == 1
    assert run_record(tmp_path)["status"] == "interrupted"
    monkeypatch.delenv("FAKE_MMF_STOP_AT")
    monkeypatch.delenv("FAKE_MMF_KILL")
    assert cli.main(["run", *args(tmp_path, *SMALL, "--no-test")]) == 0
    train_calls = [c for c in fake_mmf() if "run_type=train_val" in c]
    assert "checkpoint.resume=True" not in train_calls[0]
    assert "checkpoint.resume=True" in train_calls[1]
    parsed = logs.parse_file(run_dir(tmp_path) / "train.log")
    assert [v["update"] for v in parsed["val"]] == [1000, 2000, 3000]
    assert parsed["attempts"] == 2


def test_runner_that_died_leaves_a_resumable_run(tmp_path, fake_mmf):
    spec = run_cli.specs_from_args(cli.build_parser().parse_args(["run", *args(tmp_path)]))[0]
    spec.dir.mkdir(parents=True)
    # What a runner killed with SIGKILL leaves behind: status running, its pid gone.
    (spec.dir / record.RECORD).write_text(
        json.dumps(
            {
                "run": spec.describe(),
                "status": "running",
                "pid": 2**22 + 12345,
                "host": __import__("socket").gethostname(),
                "attempts": [],
                "test": {},
            }
        )
    )
    assert record.state(spec) == "interrupted"
    assert "checkpoint.resume=True" in command.train(spec, resume=True)


def test_unlabelled_test_split_is_skipped(tmp_path, fake_mmf):
    annotations = tmp_path / "data" / "datasets" / "hateful_memes" / "defaults" / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    (annotations / "test_unseen.jsonl").write_text('{"id": 1, "img": "img/1.png", "text": "a"}\n')
    assert cli.main(["run", *args(tmp_path, *SMALL)]) == 0
    tests = run_record(tmp_path)["test"]
    assert tests["test_unseen"]["status"] == "skipped"
    assert tests["test_seen"]["status"] == "finished"


def test_mmh_config_is_the_kits_plugin_config(tmp_path, capsys, fake_mmf):
    from pekit.data.paths import plugin_dir

    expected = plugin_dir() / "configs" / "projects" / "mmh" / "visual_bert" / "from_coco.yaml"
    if not expected.is_file():
        pytest.skip(f"the MMH plugin config is not in this checkout: {expected}")
    (cmd,) = dry_run(tmp_path, capsys, dataset="mmh")
    assert opts(cmd)["config"] == str(expected)
    assert opts(cmd)["env.user_dir"] == str(plugin_dir())


def test_mmh_uses_the_plugin(tmp_path, capsys, fake_mmf, monkeypatch):
    plugin = tmp_path / "plugin"
    config = plugin / "configs" / "projects" / "mmh" / "visual_bert" / "from_coco.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("includes: []\n")
    monkeypatch.setattr(command, "plugin_dir", lambda: plugin)
    (cmd,) = dry_run(tmp_path, capsys, dataset="mmh")
    o = opts(cmd)
    assert o["env.user_dir"] == str(plugin)
    assert o["datasets"] == "mmh"
    assert o["config"] == str(config)
    assert o["training.early_stop.criteria"] == "mmh/roc_auc"
    assert not any(k.startswith("dataset_config.mmh.annotations") for k in o)


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--batch", "3", "--gpus", "2"], "--batch 3 is not a positive multiple of --gpus 2"),
        (["--gpus", "2"], "--gpus 2, but this machine has 0 NVIDIA GPUs"),
        (["--batch", "abc"], "--batch: expected a whole number"),
        (["--batch", "0"], "--batch: expected a whole number"),
        (["--gpus", "-1"], "--gpus: expected a whole number"),
    ],
)
def test_a_dry_run_refuses_what_a_real_run_refuses(
    tmp_path, capsys, fake_mmf, monkeypatch, extra, says
):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "machine_gpus", lambda: 0)
    for dry in (["--dry-run"], []):
        assert _exit_code(["run", *dry, *args(tmp_path, *extra)]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def _exit_code(argv):
    """pekit's exit code, argparse's usage errors (SystemExit) included."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def test_gpus_are_counted_against_the_machine_when_none_are_named():
    assert devices.visible_devices(2, {}, available=2) == "0,1"
    assert devices.visible_devices(1, {}, available=0) == "0"  # one GPU, or MMF's CPU fallback
    with pytest.raises(UsageError, match="--gpus 3, but this machine has 2"):
        devices.visible_devices(3, {}, available=2)


def test_a_malformed_run_record_is_refused_naming_the_field(tmp_path, capsys, fake_mmf):
    folder = run_dir(tmp_path)
    folder.mkdir(parents=True)
    good = {"dataset": "hmd", "model": "visual_bert", "mode": "fc", "seed": 1}
    for text, says in (
        ("[]", "is a JSON list"),
        (json.dumps({"run": good, "status": 3, "attempts": []}), "field 'status' is 3"),
        (json.dumps({"run": dict(good, seed="1"), "status": "failed"}), "field 'run.seed'"),
        ('{"status": NaN}', "NaN is not JSON"),
    ):
        (folder / record.RECORD).write_text(text)
        assert cli.main(["run", *args(tmp_path, *SMALL)]) == 1
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err


# ---- sizes: PE's reduction and LoRA's rank, one run each -----------------------------------


def test_sizes_make_distinct_runs_with_their_own_overrides(tmp_path, capsys, fake_mmf):
    cmds = dry_run(
        tmp_path,
        capsys,
        "--pe-reductions",
        "5,10,20",
        "--lora-ranks",
        "4, 8",
        modes="pe,lora,bitfit",
    )
    got = [opts(c) for c in cmds]
    assert [o["env.save_dir"].split("/")[-3] for o in got] == [
        "pe-red5",
        "pe",
        "pe-red20",
        "lora-r4",
        "lora",
        "bitfit",
    ]
    key = "model_config.visual_bert."
    assert [o.get(key + "pe_reduction") for o in got[:3]] == ["5", None, "20"]
    assert [o.get(key + "lora_r") for o in got[3:5]] == ["4", None]
    assert all(o[key + "lora"] == "True" for o in got[3:5])
    assert got[5][key + "bitfit"] == "True" and got[5][key + "freeze_base"] == "True"


def test_a_size_run_records_its_variant_and_size(tmp_path, capsys, fake_mmf):
    assert cli.main(["run", *args(tmp_path, *SMALL, "--lora-ranks", "2", modes="lora")]) == 0
    m = run_record(tmp_path, mode="lora-r2")
    assert m["run"]["mode"] == "lora" and m["run"]["variant"] == "lora-r2"
    assert m["run"]["size"] == {"key": "lora_r", "value": 2}
    assert "model_config.visual_bert.lora_r=2" in m["command"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--pe-reductions", "5"], "--modes has no pe"),
        (["--lora-ranks", "0"], "whole numbers from 1 to 768"),
        (["--lora-ranks", "4x"], "whole numbers from 1 to 768"),
        (["--lora-ranks", "2.5"], "whole numbers from 1 to 768"),
    ],
)
def test_bad_sizes_are_usage_errors(tmp_path, capsys, fake_mmf, extra, message):
    assert cli.main(["run", "--dry-run", *args(tmp_path, *extra, modes="fc,lora")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


# --- several processes: nodes, the CPU switch, scoring ------------------------------------------


def test_nodes_start_mmf_through_srun_with_every_nodes_gpus(
    tmp_path, capsys, fake_mmf, monkeypatch
):
    from helpers.slurm import FakeSlurm

    monkeypatch.setenv("PATH", FakeSlurm(tmp_path / "slurm", nodes=2).env(os.environ)["PATH"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "machine_gpus", lambda: 4)
    (cmd,) = dry_run(tmp_path, capsys, "--gpus", "4", "--nodes", "2", "--batch", "16")
    assert cmd[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    o = opts(cmd)
    assert o["distributed.world_size"] == "8" and 0 < int(o["distributed.port"]) < 65536
    # A port the user names is the one MMF listens on.
    port = ["--override", "distributed.port=29500"]
    (cmd,) = dry_run(tmp_path, capsys, "--gpus", "4", "--nodes", "2", "--batch", "16", *port)
    assert [c for c in cmd if c.startswith("distributed.port=")] == ["distributed.port=29500"]
    # The global batch is split over every node's GPUs; the seeds' range counts them all.
    assert _exit_code(["run", "--dry-run", *args(tmp_path, "--gpus", "3", "--nodes", "2")]) == 2
    assert "--batch 16 is not a positive multiple of 6 (--gpus 3 --nodes 2)" in (
        capsys.readouterr().err
    )


def test_nodes_without_srun_are_refused_before_anything_starts(
    tmp_path, capsys, fake_mmf, monkeypatch
):
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    assert _exit_code(["run", *args(tmp_path, "--nodes", "2")]) == 2
    err = capsys.readouterr().err
    assert "--nodes 2: SLURM's srun is not on PATH" in err and "sbatch or salloc" in err
    assert not (tmp_path / "results").exists()


def test_the_cpu_switch_runs_the_processes_without_a_gpu(tmp_path, capsys, fake_mmf, monkeypatch):
    monkeypatch.setattr(devices, "machine_gpus", lambda: 0)
    monkeypatch.setenv(devices.ENV_CPU, "1")
    (cmd,) = dry_run(tmp_path, capsys, "--gpus", "2")
    assert opts(cmd)["distributed.world_size"] == "2"
    assert devices.visible_devices(2, {devices.ENV_CPU: "1", "CUDA_VISIBLE_DEVICES": "0,1"}) == ""
    # Without a GPU MMF starts one process per node: more per node would never rendezvous.
    with pytest.raises(UsageError, match="use --gpus 1"):
        devices.visible_devices(2, {devices.ENV_CPU: "1"}, nodes=2)
    # Only "1" switches it on.
    with pytest.raises(UsageError, match="this machine has 0 NVIDIA GPUs"):
        devices.visible_devices(2, {devices.ENV_CPU: "yes"}, available=0)


def test_the_best_checkpoint_is_scored_by_one_process(tmp_path):
    from pekit.run.spec import RunSpec

    spec = RunSpec(tmp_path, "hmd", "visual_bert", "fc", 1, gpus=2, batch=4)
    assert opts(command.train(spec))["distributed.world_size"] == "2"
    scoring = command.test(spec, "test_seen")
    assert [c for c in scoring if c.startswith("distributed.world_size=")][-1].endswith("=1")


@pytest.mark.parametrize(
    "field, value",
    [("processes", 0), ("nodes", -1), ("device", "tpu"), ("processes", "2")],
)
def test_an_attempts_process_count_is_checked(field, value):
    data = {
        "run": {"dataset": "hmd", "model": "visual_bert", "mode": "fc", "seed": 1},
        "status": "failed",
        "attempts": [{"start": "2026-01-01T00:00:00+00:00", field: value}],
    }
    with pytest.raises(PekitError, match=f"attempts\\[0\\].{field}"):
        record.RunRecord.from_dict(data, "run.json")


def test_what_a_run_trains_on_is_what_mmf_falls_back_to():
    assert devices.device_kind("0,1", available=2) == "cuda"
    assert devices.device_kind("0", available=0) == "cpu"  # no driver: MMF takes the CPU
    assert devices.device_kind("", available=4) == "cpu"  # none visible

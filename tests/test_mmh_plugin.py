"""The kit's MMF user dir registers `mmh`, and MMF builds it from converted synthetic MMHS150K."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pekit.data import plugin_dir
from pekit.workflows import synthetic_mmh as mmh_data

PLUGIN = plugin_dir()
WORDPIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
    set(
        "just a normal day one says racist some ocr two say hate all three with spaces only".split()
    )
)


def test_plugin_layout():
    configs = PLUGIN / "configs"
    for rel in [
        "datasets/mmh/defaults.yaml",
        "datasets/mmh/with_features.yaml",
        "datasets/hateful_memes/paper_splits.yaml",
        "projects/mmh/visual_bert/defaults.yaml",
        "projects/mmh/visual_bert/from_coco.yaml",
        "projects/mmh/vilbert/defaults.yaml",
        "projects/mmh/vilbert/from_cc.yaml",
    ]:
        assert (configs / rel).is_file(), rel
    for model in ("visual_bert", "vilbert"):
        text = (configs / "projects" / "mmh" / model / "defaults.yaml").read_text()
        assert "criteria: mmh/roc_auc" in text
        assert "hateful_memes:" not in text and "hateful_memes/" not in text.split("\n", 1)[1]


def tiny_tokenizer(folder):
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(WORDPIECES) + "\n")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return folder


def mmh_world(tmp_path):
    """Converted synthetic MMH with synthetic 100x2048 features, as MMF's reader loads them."""
    pytest.importorskip("numpy")
    return mmh_data.build_data(tmp_path)


BUILD_SCRIPT = textwrap.dedent(
    """
    import argparse, json, sys
    from mmf.common.registry import registry
    from mmf.utils.build import build_dataset
    from mmf.utils.configuration import Configuration
    from mmf.utils.env import setup_imports

    plugin, data_dir, tokenizer = sys.argv[1:4]
    setup_imports()
    opts = [
        "config=" + plugin + "/configs/projects/mmh/visual_bert/defaults.yaml",
        "datasets=mmh",
        "model=visual_bert",
        "env.user_dir=" + plugin,
        "env.data_dir=" + data_dir,
        "dataset_config.mmh.processors.text_processor.params.tokenizer_config.type=" + tokenizer,
    ]
    configuration = Configuration(argparse.Namespace(config_override=None, opts=opts))
    configuration.import_user_dir()
    config = configuration.get_config()
    registry.register("config", config)
    builder = registry.get_builder_class("mmh")
    out = {"builder": builder.__module__ + "." + builder.__name__}
    for split in ("train", "val", "test"):
        ds = build_dataset("mmh", config.dataset_config, split)
        s = ds[0]
        out[split] = {
            "len": len(ds),
            "id": int(s.id),
            "target": int(s.targets),
            "features": list(s.image_feature_0.shape),
            "bbox": list(s.image_info_0["bbox"].shape),
            "input_ids": int(s.input_ids.shape[0]),
        }
    out["num_final_outputs"] = registry.get("mmh_num_final_outputs")
    print("RESULT " + json.dumps(out))
    """
)


def _run_ok(cmd, env, cwd):
    """Run `cmd` with this interpreter's import path; assert it exits 0 and return its output."""
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(cwd), timeout=900
    )
    log = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, log[-6000:]
    return log


@pytest.mark.mmf
def test_mmf_builds_mmh_from_plugin(mmf_installed, tmp_path):
    data_dir = mmh_world(tmp_path)
    tokenizer = tiny_tokenizer(tmp_path / "tokenizer")
    log = _run_ok(
        [sys.executable, "-c", BUILD_SCRIPT, str(PLUGIN), str(data_dir), str(tokenizer)],
        dict(os.environ),
        tmp_path,
    )
    result = json.loads(next(ln for ln in log.splitlines() if ln.startswith("RESULT "))[7:])
    assert result["builder"].endswith("builder.MMHBuilder")
    assert result["num_final_outputs"] == 2
    assert [result[s]["len"] for s in ("train", "val", "test")] == [4, 2, 2]
    assert [result[s]["id"] for s in ("train", "val", "test")] == [1, 5, 7]
    assert [result[s]["target"] for s in ("train", "val", "test")] == [0, 1, 1]
    for split in ("train", "val", "test"):
        assert result[split]["features"] == [100, 2048]
        assert result[split]["bbox"] == [100, 4]
        assert result[split]["input_ids"] == 128


def test_plugin_dir_is_a_package():
    assert Path(PLUGIN, "__init__.py").is_file()


@pytest.mark.mmf
@pytest.mark.slow
def test_mmf_run_visual_bert_pe_on_mmh(finished_runs):
    """MMF trains VisualBERT with adapters on converted synthetic MMH from the plugin's config:
    the demo's MMH PE run (the session's `finished_runs`), a runner-driven mmf_run of
    projects/mmh/visual_bert/defaults.yaml with the plugin as MMF's user dir."""
    from pekit.run import record
    from pekit.run.spec import LOG

    folder = finished_runs.run_dir("mmh", "pe")
    run = json.loads((folder / record.RECORD).read_text())
    log = (folder / LOG).read_text("utf-8", "replace")
    assert run["status"] == "finished" and run["exit_status"] == 0, log[-3000:]
    assert (run["run"]["model"], run["run"]["mode"]) == ("visual_bert", "pe")
    opts = dict(a.split("=", 1) for a in run["command"] if "=" in a)
    assert opts["config"] == str(
        PLUGIN / "configs" / "projects" / "mmh" / "visual_bert" / "defaults.yaml"
    )
    assert opts["env.user_dir"] == str(PLUGIN) and opts["datasets"] == "mmh"
    assert "val/mmh/roc_auc" in log, log[-3000:]
    assert "val/mmh/accuracy" in log and "val/mmh/binary_f1" in log

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


def mmh_run_command(root, data_dir, vocab_dir, model="visual_bert", mode="pe", updates=2):
    """`mmf_run` of `model` in `mode` on converted MMH: offline, random init, a few updates."""
    from pekit.facts import models, vocabulary

    offline = [
        o for o in models.offline_overrides(model, root) if not o.startswith("env.data_dir=")
    ]
    text = "dataset_config.mmh.processors.text_processor.params."
    opts = [
        f"config={PLUGIN}/configs/projects/mmh/{model}/defaults.yaml",
        f"model={model}",
        "dataset=mmh",
        "run_type=train_val",
        f"env.user_dir={PLUGIN}",
        *offline,
        f"env.data_dir={data_dir}",
        *vocabulary.mode_overrides(model, mode),
        f"{text}tokenizer_config.type={vocab_dir}",
        f"{text}max_seq_length=32",
        f"training.max_updates={updates}",
        "training.batch_size=2",
        "training.num_workers=0",
        "training.log_interval=1",
        f"training.evaluation_interval={updates}",
        f"training.checkpoint_interval={updates + 1}",
        "training.tensorboard=False",
        "training.seed=1",
        "scheduler.params.num_warmup_steps=1",
        "checkpoint.save_git_details=False",
    ]
    return [sys.executable, "-m", "mmf_cli.run", *opts]


@pytest.mark.mmf
@pytest.mark.slow
def test_mmf_run_visual_bert_pe_on_mmh(mmf_installed, tmp_path):
    from pekit.workflows import synthetic as mmf_world

    data_dir = mmh_world(tmp_path)
    world = mmf_world.World(root=tmp_path / "run", vocab_dir=tmp_path / "vocab")
    mmf_world.write_vocab(world.vocab_dir)
    for folder in (world.root / "cache", world.save_dir):
        folder.mkdir(parents=True, exist_ok=True)
    log = _run_ok(
        mmh_run_command(world.root, data_dir, world.vocab_dir), mmf_world.run_env(world), tmp_path
    )
    assert "val/mmh/roc_auc" in log, log[-3000:]
    assert "val/mmh/accuracy" in log and "val/mmh/binary_f1" in log

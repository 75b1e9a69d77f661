"""SETTINGS=fast: what it asks of MMF, where it is refused, and that it trains what `paper` trains.

The same-seed runs train VisualBERT (full size, random init) with mmf_run in the offline
synthetic world: the paper's settings; `fast` without mixed precision (DataLoader workers, pinned
memory, persistent workers, cudnn benchmark, TF32, LMDB features), which must log the same losses
and validation metrics; and `fast` with bf16 autocast (the kit's `fast` MMF patches run it on
CPU too), whose losses must stay within LOSS_RTOL of the paper's. TF32 and pinned memory act on a
GPU only, so here they are only shown to be accepted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types

import pytest

from pekit.core.errors import UsageError
from pekit.facts import settings
from pekit.workflows import synthetic as mmf_world

# bf16 keeps 8 bits of mantissa: over a few updates of a 12-layer model its losses differ from
# fp32 by a few tenths of a percent; 2% leaves room without hiding a real divergence.
LOSS_RTOL = 0.02
UPDATES = 4
HANG_TIMEOUT_S = 1800


@pytest.fixture
def gpu(monkeypatch):
    """Pretend to be on a machine whose GPU has (or lacks) bf16, with or without `fast` patches."""

    def _set(present=True, bf16=True, patched=True):
        monkeypatch.delenv(settings.ENV_PRECISION, raising=False)
        monkeypatch.setattr(settings, "_cuda_capabilities", lambda: (present, bf16))
        monkeypatch.setattr(settings, "mmf_has_fast_keys", lambda: patched)

    return _set


def opts(overrides):
    return dict(o.split("=", 1) for o in overrides)


def test_paper_command_line_is_unchanged():
    o = opts(settings.overrides(settings.get("paper"), "mmh"))
    assert o["training.num_workers"] == "0" and o["training.fp16"] == "False"
    for key in (
        "training.pin_memory",
        "training.bf16",
        "training.tf32",
        "training.lmdb_readahead",
        "training.cudnn_benchmark",
    ):
        assert key not in o
    assert not any(k.startswith("dataset_config.") for k in o)


def test_fast_on_a_bf16_gpu(gpu):
    gpu(bf16=True)
    o = opts(settings.overrides(settings.get("fast"), "mmh"))
    assert o["training.bf16"] == "True" and o["training.fp16"] == "False"
    assert o["training.tf32"] == "True" and o["training.cudnn_benchmark"] == "True"
    assert o["training.lmdb_readahead"] == "True"
    assert o["training.pin_memory"] == "True" and o["training.persistent_workers"] == "True"
    assert 1 <= int(o["training.num_workers"]) <= 4
    for split in settings.MMF_SPLITS:
        assert o[f"dataset_config.mmh.features.{split}[0]"] == "mmh/defaults/features.lmdb"
    # the paper's training is kept: updates, batch, optimiser, schedule, evaluation
    paper = opts(settings.overrides(settings.get("paper"), "mmh"))
    for key in (
        "training.max_updates",
        "training.batch_size",
        "optimizer.params.lr",
        "scheduler.params.num_warmup_steps",
        "training.evaluation_interval",
    ):
        assert o[key] == paper[key]
    # HMD's zoo features are an LMDB already
    assert not any(
        k.startswith("dataset_config.")
        for k in opts(settings.overrides(settings.get("fast"), "hateful_memes"))
    )


def test_fast_falls_back_to_mmf_fp16(gpu):
    gpu(bf16=False)
    o = opts(settings.overrides(settings.get("fast"), "mmh"))
    assert o["training.fp16"] == "True" and o["training.bf16"] == "False"
    # MMF without the kit's `fast` patches: fp16 through MMF's own switch, no unknown keys
    gpu(bf16=True, patched=False)
    o = opts(settings.overrides(settings.get("fast"), "mmh"))
    assert o["training.fp16"] == "True"
    assert not {"training.bf16", "training.tf32", "training.lmdb_readahead"} & set(o)


@pytest.mark.parametrize(
    "capability, bf16", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)]
)
def test_bf16_is_chosen_on_ampere_and_newer_only(monkeypatch, capability, bf16):
    # A stand-in torch whose is_bf16_supported() says yes everywhere, as torch's does by default
    # (it counts emulated bf16): V100 (7.0) and T4 (7.5) must still get fp16.
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        get_device_capability=lambda device=None: capability,
        is_bf16_supported=lambda including_emulation=True: True,
    )
    monkeypatch.setitem(
        sys.modules,
        "torch",
        types.SimpleNamespace(cuda=cuda, version=types.SimpleNamespace(hip=None)),
    )
    monkeypatch.delenv(settings.ENV_PRECISION, raising=False)
    monkeypatch.setattr(settings, "mmf_has_fast_keys", lambda: True)
    settings._cuda_capabilities.cache_clear()
    try:
        assert settings._cuda_capabilities() == (True, bf16)
        assert settings.auto_precision() == ("bf16" if bf16 else "fp16")
    finally:
        settings._cuda_capabilities.cache_clear()


def test_fast_is_refused_without_a_gpu(gpu, monkeypatch):
    gpu(present=False)
    with pytest.raises(UsageError, match="SETTINGS=fast.*CUDA GPU.*fp16 cannot be used on cpu"):
        settings.overrides(settings.get("fast"), "hateful_memes")
    monkeypatch.setenv(settings.ENV_PRECISION, "fp16")
    assert opts(settings.overrides(settings.get("fast"), "mmh"))["training.fp16"] == "True"
    monkeypatch.setenv(settings.ENV_PRECISION, "fp8")
    with pytest.raises(UsageError, match="bf16 or fp16"):
        settings.overrides(settings.get("fast"), "mmh")
    gpu(patched=False)
    monkeypatch.setenv(settings.ENV_PRECISION, "bf16")
    with pytest.raises(UsageError, match="`fast` patches"):
        settings.overrides(settings.get("fast"), "mmh")


def test_the_preflight_wants_fasts_lmdb(tmp_path):
    from pekit.run import preflight

    def lmdb_needs(name, dataset, data_dir):
        found = preflight.needs(dataset, "visual_bert", settings.get(name), data_dir)
        return [fix for what, fix in found if "LMDB" in what]

    assert lmdb_needs("fast", "mmh", tmp_path) == [
        "pekit features lmdb --data-dir " + str(tmp_path)
    ]
    (tmp_path / "datasets" / "mmh" / "defaults" / "features.lmdb").mkdir(parents=True)
    assert lmdb_needs("fast", "mmh", tmp_path) == []
    assert lmdb_needs("fast", "hmd", tmp_path) == []
    assert lmdb_needs("paper", "mmh", tmp_path / "none") == []


# --- same-seed training through MMF ------------------------------------------------------------

LOSS_LINE = re.compile(r"progress: (\d+)/\d+, train/hateful_memes/cross_entropy: ([0-9.]+)")
VAL_METRIC = re.compile(r"val/hateful_memes/(cross_entropy|accuracy|binary_f1|roc_auc): ([0-9.]+)")


def fast_additions(monkeypatch, bf16):
    """What `fast` adds to the paper's command line, on this CPU; fp32 unless bf16."""
    with monkeypatch.context() as m:
        m.setenv(settings.ENV_PRECISION, "bf16")
        fast = settings.overrides(settings.get("fast"), mmf_world.DATASET)
    paper = settings.overrides(settings.get("paper"), mmf_world.DATASET)
    added = [o for o in fast if o not in paper]
    if not bf16:
        added = [o.replace("training.bf16=True", "training.bf16=False") for o in added]
    # HMD's zoo features are an LMDB; the world's LMDB stands for it.
    lmdb = f"{mmf_world.FEATURES}.lmdb"
    added += [f"dataset_config.{mmf_world.DATASET}.features.{s}={lmdb}" for s in mmf_world.SPLITS]
    return added


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from pekit.features import lmdb

    w = mmf_world.build_world(tmp_path_factory.mktemp("fast_world"))
    lmdb.convert(w.dataset_dir / "features")
    return w


def train(world, name, extra):
    save = world.root / f"save-{name}"
    cmd = mmf_world.run_command(world, "visual_bert", "fc", max_updates=UPDATES)
    cmd += extra + [f"env.save_dir={save}"]
    proc = subprocess.run(
        cmd,
        env=mmf_world.run_env(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=HANG_TIMEOUT_S,
    )
    log = proc.stdout.decode("utf-8", "replace")
    shutil.rmtree(str(save), ignore_errors=True)
    assert proc.returncode == 0, f"mmf_run ({name}) exited {proc.returncode}:\n{log[-6000:]}"
    losses = [float(v) for _, v in LOSS_LINE.findall(log)]
    assert len(losses) == UPDATES, log[-6000:]
    metrics = VAL_METRIC.findall(log)
    assert len(metrics) >= 4, log[-6000:]
    return log, losses, metrics


@pytest.mark.mmf
@pytest.mark.slow
def test_fast_trains_what_paper_trains(mmf_installed, world, monkeypatch):
    _, paper, paper_val = train(world, "paper", [])
    log, data, data_val = train(world, "fast-fp32", fast_additions(monkeypatch, bf16=False))
    for option in (
        "training.pin_memory to True",
        "training.persistent_workers to True",
        "training.tf32 to True",
        "training.lmdb_readahead to True",
        "features.train to hateful_memes/defaults/features.lmdb",
    ):
        assert f"Overriding option {option}" in log or f".{option}" in log, option
    assert re.search(r"Overriding option training.num_workers to [1-9]", log)
    # the loading path changes nothing: same batches, same losses, same validation
    assert data == paper and data_val == paper_val
    log, mixed, _ = train(world, "fast-bf16", fast_additions(monkeypatch, bf16=True))
    assert "Overriding option training.bf16 to True" in log
    for a, b in zip(mixed, paper):
        assert abs(a - b) <= LOSS_RTOL * abs(b), (mixed, paper)

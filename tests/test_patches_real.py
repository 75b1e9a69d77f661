"""The kit's real patches against the real upstream files: the transformers wheel and MMF."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from helpers.trees import sha_tree
from pekit.core.errors import PekitError
from pekit.facts import pins
from pekit.setup.patching import engine, manifest, targets


def _entries(target):
    return manifest.load().select(sets=manifest.SETS, targets=(target,))


def test_manifest_matches_pins_and_diffs():
    m = manifest.load()
    assert m.entries, "patches/manifest.json lists no patches"
    p = pins.load_pins()
    seen = set()
    for e in m.entries:
        want = p["transformers"]["version"] if e.target == "transformers" else p["mmf"]["commit"]
        assert e.pin == want, f"{e.diff} was made against {e.pin}, pins say {want}"
        assert (manifest.patches_dir() / e.diff).is_file()
        assert (e.target, e.path) not in seen, f"{e.path} is patched by two sets"
        seen.add((e.target, e.path))
    sets = {(e.target, e.set) for e in m.entries}
    assert {("transformers", "pe"), ("mmf", "pe")} <= sets


def test_pristine_wheel_matches_the_manifest(pristine_transformers):
    for e in _entries("transformers"):
        states = engine.file_states([e], {"transformers": pristine_transformers})
        assert states[0].state == engine.PRISTINE, f"{e.path}: {states[0].sha256}"


def test_transformers_apply_twice_and_revert(pristine_transformers):
    root = pristine_transformers
    roots = {"transformers": root}
    entries = _entries("transformers")
    before = sha_tree(root)
    out = engine.apply(entries, roots)
    assert sorted(out.files) == sorted(root / e.path for e in entries)
    for s in engine.file_states(entries, roots):
        assert s.state == engine.PATCHED and s.sha256 == s.entry.sha256_after
    patched = sha_tree(root)
    assert engine.apply(entries, roots).action == "already applied"
    assert sha_tree(root) == patched
    engine.revert(entries, roots)
    assert sha_tree(root) == before


def test_wrong_transformers_version_refused(pristine_transformers):
    init = pristine_transformers / "transformers" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "4.10.1"', '__version__ = "4.10.2"'))
    before = sha_tree(pristine_transformers)
    with pytest.raises(PekitError, match="4.10.2, expected 4.10.1"):
        engine.apply(_entries("transformers"), {"transformers": pristine_transformers})
    assert sha_tree(pristine_transformers) == before


def test_modified_modeling_bert_refused(pristine_transformers):
    f = pristine_transformers / "transformers" / "models" / "bert" / "modeling_bert.py"
    data = bytearray(f.read_bytes())
    data[100] ^= 0x01
    f.write_bytes(bytes(data))
    before = sha_tree(pristine_transformers)
    with pytest.raises(PekitError, match="modeling_bert.py: sha256"):
        engine.apply(_entries("transformers"), {"transformers": pristine_transformers})
    assert sha_tree(pristine_transformers) == before


def test_cli_on_the_wheel(pristine_transformers):
    args = ["--transformers", str(pristine_transformers), "--only", "transformers"]
    run = [sys.executable, "-m", "pekit", "patch"]
    first = subprocess.run([*run, "apply", *args, "--sets", "compat,pe"], capture_output=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*run, "apply", *args, "--sets", "compat,pe"], capture_output=True)
    assert again.returncode == 0 and b"already applied" in again.stdout
    status = subprocess.run([*run, "status", *args, "--sets", "compat,pe"], capture_output=True)
    lines = status.stdout.decode().splitlines()
    assert len(lines) == len(_entries("transformers"))
    assert all(line.startswith("patched") for line in lines)


def _clone(mmf_checkout, dest):
    subprocess.run(["git", "clone", "-q", str(mmf_checkout), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", pins.get("mmf.commit")], check=True)
    return dest


@pytest.mark.mmf
def test_mmf_patches_apply_to_the_real_files(mmf_checkout, tmp_path):
    clone = _clone(mmf_checkout, tmp_path / "mmf")
    entries = _entries("mmf")
    roots = {"mmf": clone}
    assert targets.check_version("mmf", clone).startswith("mmf a34bc2d")
    assert {s.state for s in engine.file_states(entries, roots)} == {engine.PRISTINE}
    engine.apply(entries, roots)
    assert {s.state for s in engine.file_states(entries, roots)} == {engine.PATCHED}
    # the PE switches are declared in both models' defaults, off by default
    for model in ("visual_bert", "vilbert"):
        text = (clone / "mmf" / "configs" / "models" / model / "defaults.yaml").read_text()
        assert "pe_adapter: false" in text
    engine.revert(entries, roots)
    dirty = subprocess.run(
        ["git", "-C", str(clone), "status", "--porcelain"], capture_output=True, check=True
    )
    assert dirty.stdout == b"", dirty.stdout


def test_manifest_is_valid_json_with_one_entry_per_diff():
    doc = json.loads((manifest.patches_dir() / "manifest.json").read_text())
    diffs = sorted(
        p.relative_to(manifest.patches_dir()).as_posix()
        for p in manifest.patches_dir().rglob("*.diff")
    )
    assert sorted(e["diff"] for e in doc["patches"]) == diffs


@pytest.mark.mmf
@pytest.mark.parametrize("action, trials", [("apply", 20), ("revert", 12)])
def test_sigkill_at_random_moments_leaves_all_or_nothing(
    action, trials, pristine_transformers, mmf_checkout, tmp_path
):
    """Every patch of both targets (two roots, so two journals), killed at random moments."""
    roots = {"transformers": pristine_transformers, "mmf": _clone(mmf_checkout, tmp_path / "mmf")}
    entries = manifest.load().select()
    pristine = {t: sha_tree(r) for t, r in roots.items()}
    args = [
        "--transformers",
        str(roots["transformers"]),
        "--mmf",
        str(roots["mmf"]),
        "--sets",
        ",".join(manifest.SETS),
    ]
    pekit = [sys.executable, "-m", "pekit", "patch"]
    start, end = (engine.PRISTINE, engine.PATCHED)
    if action == "revert":
        start, end = end, start
    began = time.monotonic()
    subprocess.run([*pekit, "apply", *args], check=True, capture_output=True)
    duration = time.monotonic() - began  # what one whole run takes here, start-up included
    rng = random.Random(20261201)
    outcomes = {"killed": 0, "finished": 0}
    for _ in range(trials):
        (engine.revert if action == "apply" else engine.apply)(entries, roots)
        proc = subprocess.Popen(
            [*pekit, action, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0, duration))
        proc.kill()
        outcomes["killed" if proc.wait() == -signal.SIGKILL else "finished"] += 1
        status = subprocess.run([*pekit, "status", *args], capture_output=True)
        states = {s.state for s in engine.file_states(entries, roots)}
        assert status.returncode == 0 and states in ({start}, {end}), status.stdout.decode()
        scratch = [p for r in roots.values() for p in r.rglob("*") if ".pekit-" in p.name]
        assert not scratch, scratch
        subprocess.run([*pekit, action, *args], check=True, capture_output=True)
        assert {s.state for s in engine.file_states(entries, roots)} == {end}
    engine.revert(entries, roots)
    assert {t: sha_tree(r) for t, r in roots.items()} == pristine
    print(f"real patch {action}: {outcomes}")
    assert outcomes["killed"], outcomes

"""The patch engine on a small synthetic target: apply, idempotence, revert, refusals, rollback."""

from __future__ import annotations

import difflib
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from helpers.kills import kit_scratch, pekit_killed_at
from helpers.trees import sha_tree
from pekit.core import atomic
from pekit.core.digests import sha256_bytes
from pekit.core.errors import PekitError
from pekit.facts import pins
from pekit.setup.patching import engine, manifest, unidiff

ORIGINAL = {
    "transformers/a.py": "def a():\n    return 1\n\n\nX = [1, 2, 3]\n",
    "transformers/sub/b.py": "import os\n\nVALUE = 'old'\nOTHER = 2\n",
}
EDITED = {
    "transformers/a.py": "def a():\n    return 2  # patched\n\n\nX = [1, 2, 3]\nY = 4\n",
    "transformers/sub/b.py": "import os\n\nVALUE = 'new'\nOTHER = 2",  # no newline at end
}


def _diff(rel, old, new):
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"
    )
    out = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A fake transformers root, a patches/ folder with one diff per file, and its manifest."""
    root = tmp_path / "site"
    for rel, text in ORIGINAL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    version = pins.get("transformers.version")
    (root / "transformers" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    patches = tmp_path / "patches"
    for rel, set_name in (("transformers/a.py", "pe"), ("transformers/sub/b.py", "compat")):
        d = patches / manifest.target_dirname("transformers") / set_name / (rel + ".diff")
        d.parent.mkdir(parents=True, exist_ok=True)
        d.write_text(_diff(rel, ORIGINAL[rel], EDITED[rel]))
    monkeypatch.setenv("PEKIT_PATCHES_DIR", str(patches))
    entries = manifest.build({"transformers": root}, base=patches)
    manifest.write(entries)
    return root, manifest.load().select(targets=("transformers",))


def test_apply_twice_then_revert_is_byte_identical(world):
    root, entries = world
    before = sha_tree(root)
    roots = {"transformers": root}
    out = engine.apply(entries, roots)
    assert out.action == "applied" and len(out.files) == 2
    for rel, text in EDITED.items():
        assert (root / rel).read_text() == text
    patched = sha_tree(root)
    assert engine.apply(entries, roots) == engine.Outcome("already applied", [])
    assert sha_tree(root) == patched
    assert {s.state for s in engine.file_states(entries, roots)} == {engine.PATCHED}
    assert engine.revert(entries, roots).action == "reverted"
    assert sha_tree(root) == before
    assert engine.revert(entries, roots).action == "already pristine"


def test_wrong_version_is_refused_with_nothing_written(world):
    root, entries = world
    (root / "transformers" / "__init__.py").write_text('__version__ = "4.11.0"\n')
    before = sha_tree(root)
    with pytest.raises(PekitError, match=r"version is 4\.11\.0, expected"):
        engine.apply(entries, {"transformers": root})
    assert sha_tree(root) == before


def test_one_changed_byte_is_refused_naming_file_and_hashes(world):
    root, entries = world
    b = root / "transformers" / "sub" / "b.py"
    b.write_bytes(b.read_bytes().replace(b"old", b"olD"))
    before = sha_tree(root)
    with pytest.raises(PekitError) as err:
        engine.apply(entries, {"transformers": root})
    msg = str(err.value)
    entry_b = next(e for e in entries if e.path.endswith("b.py"))
    found = sha256_bytes(b.read_bytes())
    assert f"{b}: sha256 {found} is neither pristine {entry_b.sha256_before}" in msg
    assert "nothing written" in msg
    assert sha_tree(root) == before
    states = {s.file.name: s.state for s in engine.file_states(entries, {"transformers": root})}
    assert states == {"b.py": engine.MODIFIED, "a.py": engine.PRISTINE}


def test_missing_file_is_refused(world):
    root, entries = world
    (root / "transformers" / "a.py").unlink()
    before = sha_tree(root)
    with pytest.raises(PekitError, match="a.py: missing"):
        engine.apply(entries, {"transformers": root})
    assert sha_tree(root) == before


def test_a_failure_while_staging_changes_nothing(world, monkeypatch):
    """A full disk while the new contents are staged: the tree is as it was, and no scratch."""
    root, entries = world
    before = sha_tree(root)
    real, calls = atomic.FileSet.add, []

    def flaky(self, path, data, mode=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, path, data, mode)

    monkeypatch.setattr(atomic.FileSet, "add", flaky)
    with pytest.raises(PekitError, match="No space left on device; nothing written"):
        engine.apply(entries, {"transformers": root})
    assert len(calls) == 2
    assert sha_tree(root) == before


def test_half_applied_tree_is_completed(world):
    root, entries = world
    roots = {"transformers": root}
    engine.apply(entries[:1], roots)
    states = {s.state for s in engine.file_states(entries, roots)}
    assert states == {engine.PATCHED, engine.PRISTINE}
    out = engine.apply(entries, roots)
    assert len(out.files) == 1
    assert {s.state for s in engine.file_states(entries, roots)} == {engine.PATCHED}


def test_file_mode_is_kept(world):
    root, entries = world
    a = root / "transformers" / "a.py"
    a.chmod(0o640)
    engine.apply(entries, {"transformers": root})
    assert a.stat().st_mode & 0o777 == 0o640


def _cli(*args, env=None):
    """`pekit patch ARGS`, its output (stdout and stderr together)."""
    return subprocess.run(
        [sys.executable, "-m", "pekit", "patch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_cli_exit_codes_and_status(world):

    root, _ = world
    env = dict(os.environ)
    common = ["--transformers", str(root), "--only", "transformers", "--sets", "compat,pe"]
    status = _cli("status", *common, env=env)
    assert status.returncode == 0
    assert status.stdout.decode().count("pristine") == 2
    first = _cli("apply", *common, env=env)
    assert first.returncode == 0, first.stdout
    second = _cli("apply", *common, env=env)
    assert second.returncode == 0 and b"already applied" in second.stdout
    assert _cli("check", *common, env=env).returncode == 0
    (root / "transformers" / "a.py").write_text("changed\n")
    refused = _cli("revert", *common, env=env)
    assert refused.returncode == 1 and b"refusing" in refused.stdout
    assert _cli("apply", *common[:-2], "--sets", "bogus", env=env).returncode == 2
    assert _cli("explode", env=env).returncode == 2


def test_unidiff_rejects_context_mismatch():
    diff = unidiff.parse(_diff("x.py", "a\nb\nc\n", "a\nB\nc\n"))
    assert unidiff.apply(diff, b"a\nb\nc\n") == b"a\nB\nc\n"
    assert unidiff.apply(diff, b"a\nB\nc\n", reverse=True) == b"a\nb\nc\n"
    with pytest.raises(unidiff.DiffError, match="does not apply at line 2"):
        unidiff.apply(diff, b"a\nq\nc\n")


def test_unidiff_pure_insert_and_delete():
    old, new = "a\nb\n", "a\nnew1\nnew2\nb\n"
    diff = unidiff.parse(_diff("x.py", old, new).replace("@@ -1,2", "@@ -1,2"))
    assert unidiff.apply(diff, old.encode()) == new.encode()
    assert unidiff.apply(diff, new.encode(), reverse=True) == old.encode()
    ins = unidiff.parse("--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+top\n")
    assert unidiff.apply(ins, b"a\n") == b"top\na\n"


def test_manifest_build_refuses_a_file_in_two_sets(world, tmp_path):
    root, _ = world
    patches = manifest.patches_dir()
    src = patches / manifest.target_dirname("transformers") / "pe" / "transformers" / "a.py.diff"
    dup = (
        patches / manifest.target_dirname("transformers") / "compat" / "transformers" / "a.py.diff"
    )
    dup.write_text(src.read_text())
    with pytest.raises(PekitError, match="one set only"):
        manifest.build({"transformers": root}, base=patches)


def test_an_empty_or_malformed_manifest_is_refused(world, tmp_path):
    path = tmp_path / "m.json"
    for doc, says in (
        ({"patches": []}, "'patches' is empty"),
        ([], "the patch manifest is a JSON list; expected an object"),
        ({"patches": ["transformers/a.py"]}, "patches[0]: expected an object, got str"),
        ({"patches": [{"target": "transformers"}]}, "patches[0] lacks field 'set'"),
    ):
        path.write_text(json.dumps(doc))
        with pytest.raises(PekitError, match=re.escape(says)):
            manifest.load(path)
    good = json.loads((manifest.patches_dir() / "manifest.json").read_text())
    for field, value, says in (
        ("path", "../../etc/passwd", "without '..'"),
        ("path", "/etc/passwd", "without '..'"),
        ("diff", 7, "expected a string"),
        ("sha256_after", "abc", "not a sha256"),
        ("set", "evil", "expected one of"),
    ):
        doc = json.loads(json.dumps(good))
        doc["patches"][0][field] = value
        path.write_text(json.dumps(doc))
        with pytest.raises(PekitError, match=re.escape(says)):
            manifest.load(path)


def test_a_binary_diff_is_refused_in_one_line(world):
    root, entries = world
    (manifest.patches_dir() / entries[0].diff).write_bytes(b"\xff\xfe\x00binary")
    proc = _cli("apply", "--transformers", str(root), "--only", "transformers")
    out = proc.stdout.decode()
    assert proc.returncode == 1 and "not a text diff" in out and "Traceback" not in out


def test_a_mixed_tree_is_reported_and_refused_by_check(world):
    root, entries = world
    engine.apply(entries[:1], {"transformers": root})
    common = ["--transformers", str(root), "--only", "transformers"]
    for action in ("check", "status"):
        proc = _cli(action, *common)
        out = proc.stdout.decode()
        assert proc.returncode == 1, out
        assert "mixed tree" in out and "pekit patch apply" in out and "pekit patch revert" in out
    assert _cli("apply", *common).returncode == 0
    assert _cli("check", *common).returncode == 0


def test_a_closed_pipe_ends_quietly(world):
    root, _ = world
    proc = subprocess.run(
        f"{sys.executable} -m pekit patch status --transformers {root} --only transformers"
        " | head -c 1",
        shell=True,
        capture_output=True,
    )
    assert proc.stderr == b""


# ---------------------------------------------------------------------------------------------
# A kill at any point of apply or revert: the next command finds the old tree or the new one.


def _states(entries, root):
    return {s.state for s in engine.file_states(entries, {"transformers": root})}


@pytest.mark.parametrize("action", ["apply", "revert"])
def test_a_kill_at_any_step_leaves_all_or_nothing(world, action):
    root, entries = world
    roots = {"transformers": root}
    start, end = (
        (engine.PRISTINE, engine.PATCHED)
        if action == "apply"
        else (engine.PATCHED, engine.PRISTINE)
    )
    common = ["patch", action, "--transformers", str(root), "--only", "transformers"]
    killed = 0
    for step in range(1, 40):
        if action == "revert":
            engine.apply(entries, roots)
        else:
            engine.revert(entries, roots)
        rc, out = pekit_killed_at(step, *common)
        if rc != -signal.SIGKILL:
            assert rc == 0, out
            break  # the run finished before its step-th call: every step was tried
        killed += 1
        # The next command, whichever, finishes or leaves the change: never a mixed tree.
        status = _cli("status", "--transformers", str(root), "--only", "transformers")
        assert status.returncode == 0, status.stdout.decode()
        assert _states(entries, root) in ({start}, {end}), (step, status.stdout.decode())
        assert not kit_scratch(root), (step, kit_scratch(root))
        # ... and the interrupted command, run again, ends where it should.
        assert _cli(action, "--transformers", str(root), "--only", "transformers").returncode == 0
        assert _states(entries, root) == {end}
    print(f"patch {action}: {killed} kill points, each all-or-nothing")
    assert killed >= 5  # staging, the journal, each rename and the journal's removal

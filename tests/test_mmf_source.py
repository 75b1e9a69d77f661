"""Fetching MMF at a pinned commit into the cache: verified, idempotent, nothing half-written."""

from __future__ import annotations

import subprocess

import pytest

from pekit.core.errors import PekitError
from pekit.setup import mmf_source


def _git(cwd, *args):
    out = subprocess.run(["git", *args], cwd=str(cwd), check=True, capture_output=True)
    return out.stdout.decode().strip()


@pytest.fixture
def upstream(tmp_path):
    """A small git repository shaped like MMF, with two commits."""
    repo = tmp_path / "upstream"
    (repo / "mmf").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    (repo / "mmf" / "__init__.py").write_text("V = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "mmf" / "__init__.py").write_text("V = 2\n")
    _git(repo, "commit", "-qam", "two")
    return repo, first, _git(repo, "rev-parse", "HEAD")


def test_fetch_checks_out_the_pinned_commit_and_is_idempotent(upstream, tmp_path):
    repo, first, _ = upstream
    dest = tmp_path / "cache" / "mmf" / first
    path, fetched = mmf_source.fetch(str(repo), dest, commit=first)
    assert fetched and path == dest
    assert (dest / "mmf" / "__init__.py").read_text() == "V = 1\n"
    assert mmf_source.fetch(str(repo), dest, commit=first) == (dest, False)


def test_existing_checkout_at_another_commit_is_refused(upstream, tmp_path):
    repo, first, second = upstream
    dest = tmp_path / "co"
    mmf_source.fetch(str(repo), dest, commit=second)
    with pytest.raises(PekitError, match=f"at {second}, expected {first}"):
        mmf_source.fetch(str(repo), dest, commit=first)


def test_unknown_commit_leaves_nothing_behind(upstream, tmp_path):
    repo, _, _ = upstream
    dest = tmp_path / "cache" / "x"
    with pytest.raises(PekitError, match="git"):
        mmf_source.fetch(str(repo), dest, commit="0" * 40)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_mmf_src_at_wrong_commit_is_an_error(upstream, monkeypatch):
    repo, _, _ = upstream
    monkeypatch.setenv("MMF_SRC", str(repo))
    with pytest.raises(PekitError, match="expected a34bc2d"):
        mmf_source.find_checkout()


def test_cache_location_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PEKIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mmf_source.cache_dir() == tmp_path / "xdg" / "pekit"
    monkeypatch.setenv("PEKIT_CACHE_DIR", str(tmp_path / "mine"))
    assert mmf_source.cached_checkout("abc") == tmp_path / "mine" / "mmf" / "abc"


def test_fetch_from_a_remote_that_never_answers_gives_up_in_time(tmp_path):
    """A server on loopback that accepts the connection and says nothing: `make test` on a
    machine without MMF's repository must not hang on it."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    stop = threading.Event()

    def hold():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    dest = tmp_path / "cache" / "mmf" / "abc"
    url = f"http://127.0.0.1:{server.getsockname()[1]}/mmf.git"
    try:
        with pytest.raises(PekitError, match="did not finish in time"):
            mmf_source.fetch(url, dest, commit="a" * 40, timeout=2)
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    assert not dest.exists() and not list(dest.parent.glob(".*.pekit-*"))


@pytest.fixture
def nothing_installed(monkeypatch):
    """An environment where MMF is nowhere and fetching it fails; patching is recorded only."""
    from pekit.setup import prepare as environment

    calls = []
    monkeypatch.setattr(environment.mmf_source, "locate", lambda: (None, "not found"))

    def fail(source=None, dest=None, commit=None, timeout=None):
        calls.append(("fetch", source, timeout))
        raise PekitError("git clone failed: Could not resolve host: github.com")

    monkeypatch.setattr(environment.mmf_source, "fetch", fail)
    monkeypatch.setattr(environment, "_mmf_importable", lambda: False)
    monkeypatch.setattr(
        environment.engine, "check", lambda entries, roots: calls.append(("check", tuple(roots)))
    )
    monkeypatch.setattr(
        environment.engine,
        "apply",
        lambda entries, roots: (
            calls.append(("apply", tuple(roots))),
            environment.engine.Outcome("applied", []),
        )[1],
    )
    return environment, calls


def test_prepare_offline_goes_on_without_mmf(nothing_installed):
    environment, calls = nothing_installed
    said = []
    assert environment.prepare(timeout=5, echo=said.append) is False
    assert calls[0] == ("fetch", None, 5)
    assert ("apply", ("transformers",)) in calls  # transformers is patched alone
    assert any("tests that need MMF will be skipped" in line for line in said)


def test_prepare_refuses_when_the_named_source_fails(nothing_installed):
    environment, calls = nothing_installed
    with pytest.raises(PekitError, match="Could not resolve host"):
        environment.prepare(mmf_from="/no/such/bundle", echo=lambda _: None)
    assert not [c for c in calls if c[0] == "apply"]

"""`pekit --version`, and every command's --help description a whole sentence."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

import pekit
from pekit import cli
from pekit.core import argtypes, gitinfo, location


def commands(parser=None, path=("pekit",)):
    """(command words, parser) of `pekit` and of every subcommand, nested ones included."""
    parser = parser or cli.build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def test_version_prints_the_kit_version_and_its_revision(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"pekit {pekit.__version__}") and "\n" not in line
    rev = gitinfo.revision(location.kit_root())
    if (location.kit_root() / ".git").exists() and rev["git_revision"]:
        assert f"(git {rev['git_revision']}" in line
        assert line.endswith(", modified)") == rev["git_dirty"]
    else:
        assert line == f"pekit {pekit.__version__}"


def test_version_without_a_checkout(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(location, "kit_root", lambda: tmp_path)
    assert cli.version_line() == f"pekit {pekit.__version__}"


def test_version_from_the_command_line():
    env = dict(os.environ, PYTHONPATH=str(location.kit_root() / "scripts"))
    out = subprocess.run(
        [sys.executable, "-m", "pekit", "--version"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"pekit {pekit.__version__}") and not out.stderr


COMMANDS = list(commands())


@pytest.mark.parametrize("words, parser", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_help_descriptions_are_whole_sentences(words, parser):
    """A description taken from a docstring's first line is cut where the line wraps; one that
    ends with its full stop (and opens no parenthesis it does not close) is whole."""
    text = parser.description
    if text is None:
        return
    assert text.rstrip().endswith((".", ".)")), f"{' '.join(words)} --help: cut short: {text!r}"
    assert text.count("(") == text.count(")"), f"{' '.join(words)} --help: {text!r}"
    assert text.count("`") % 2 == 0, f"{' '.join(words)} --help: {text!r}"


def test_summary_joins_the_first_paragraph():
    doc = """`pekit x`: one sentence that wraps
    over two lines.

    More detail.
    """
    assert argtypes.summary(doc) == "`pekit x`: one sentence that wraps over two lines."
    assert re.fullmatch(r"[^\n]+\.", argtypes.summary(cli.__doc__))

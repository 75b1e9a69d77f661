"""The names of the paper's datasets, models and modes are spelled in scripts/pekit/facts/ only.

Every other module of the kit takes them from pekit.facts.vocabulary (its constants, MODES,
MODELS, DATASETS, Dataset.mmf_name), so that a fact about a dataset, model or mode has one
place. A string constant equal to one of those names elsewhere is reported as file:line;
docstrings are prose and are not looked at.
"""

import ast
from pathlib import Path

from pekit.facts import vocabulary

PACKAGE = Path(__file__).resolve().parents[1] / "scripts" / "pekit"
FACTS = PACKAGE / "facts"

# (module, name): why the literal stays there. Each is a different thing that has the same
# spelling, or a module that cannot import the kit.
ALLOWED = {
    ("mmf_plugin/builder.py", "mmh"): "MMF imports its user_dir plugin on its own, without pekit",
    ("setup/patching/manifest.py", "pe"): "the name of a patch set (patches/*/pe), not the mode",
    ("run/identity.py", "pe"): "the name of a patch set (patches/*/pe), not the mode",
    ("adapters/structure.py", "lora"): "the attribute of the `pe` patch's LoRALinear (*.lora.A)",
}


def names():
    """{name: what it names}: the vocabulary's datasets (with MMF's names), models and modes."""
    out = {}
    for name, dataset in vocabulary.DATASETS.items():
        out[name] = "dataset"
        out[dataset.mmf_name] = "MMF's dataset name"
    out.update({name: "model" for name in vocabulary.MODELS})
    out.update({name: "mode" for name in vocabulary.MODES})
    return out


def _docstrings(tree):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def spelled_out(path, known):
    """[(line, name)] of the string constants of `path` (docstrings aside) in `known`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in known
        and id(node) not in docstrings
    ]


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if FACTS not in p.parents)


def test_names_of_datasets_models_and_modes_are_spelled_in_the_facts_only():
    known = names()
    found, used = [], set()
    for path in modules():
        rel = path.relative_to(PACKAGE).as_posix()
        for line, name in spelled_out(path, known):
            if (rel, name) in ALLOWED:
                used.add((rel, name))
                continue
            found.append(f"scripts/pekit/{rel}:{line}: {name!r} ({known[name]})")
    assert not found, (
        "names spelled outside scripts/pekit/facts/ (take them from pekit.facts.vocabulary):\n"
        + "\n".join(found)
    )
    assert used == set(ALLOWED), f"allowed but no longer there: {sorted(set(ALLOWED) - used)}"


def test_the_check_finds_a_name_and_skips_docstrings(tmp_path):
    mode, mmf = vocabulary.PE, vocabulary.DATASETS[vocabulary.HMD].mmf_name
    source = tmp_path / "example.py"
    source.write_text(
        f'"""{mode}"""\n\ndef f():\n    """{mmf}"""\n    return "{mode}", "{mmf}", "other"\n',
        encoding="utf-8",
    )
    assert spelled_out(source, names()) == [(5, mode), (5, mmf)]

"""`pekit doctor`: one screen saying what this environment has for the kit, what is missing or
incompatible, and the command that fixes each.

Checked: Python, torch and its CUDA build, the GPUs and their compute capability (bf16), the
locked packages beside torch, MMF at
the pinned commit, the state of each patch set, the datasets laid out, the assets verified.
Nothing is written. Exit code 1 when something the training needs is missing or wrong.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from . import mmf_source
from .core import pins
from .core.errors import PekitError
from .data.facts import dataset_facts
from .data.paths import dataset_dir, mmf_data_dir
from .patching import engine, manifest, targets
from .vocabulary import DATASETS

OK, WARN, FAIL = "ok", "warn", "FAIL"
SUPPORTED_PYTHONS = {"modern": ("3.11", "3.12"), "paper": ("3.7",)}
MIN_TORCH = (2, 4)
SAFE_CHECKPOINTS_TORCH = (2, 5)  # torch.serialization.get_unsafe_globals_in_checkpoint


@dataclass
class Finding:
    status: str  # ok, warn (the training does not need it yet), FAIL
    what: str
    detail: str
    fix: str = ""


def _version_tuple(text):
    parts = []
    for piece in str(text).split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_python():
    version = "{}.{}".format(*sys.version_info[:2])
    if version in SUPPORTED_PYTHONS["modern"] + SUPPORTED_PYTHONS["paper"]:
        return Finding(OK, "Python", f"{sys.version.split()[0]} ({sys.executable})")
    return Finding(
        FAIL,
        "Python",
        f"{version} is not one the kit is tested on (3.11, 3.12; 3.7 for the paper's stack)",
        "use Python 3.11 or 3.12 (make venv PYTHON=python3.12)",
    )


def check_torch():
    """torch and the GPUs it sees: findings, and whether bf16 is native."""
    try:
        import torch
    except ImportError as e:
        return [
            Finding(
                FAIL,
                "torch",
                f"not importable ({e})",
                "install torch 2.4 or newer for your CUDA (https://pytorch.org), or `make venv`",
            )
        ]
    found = []
    version = torch.__version__
    modern = sys.version_info >= (3, 8)
    if modern and _version_tuple(version) < MIN_TORCH:
        found.append(
            Finding(
                FAIL,
                "torch",
                f"{version}: the modern stack needs 2.4 or newer",
                "install torch 2.4 or newer",
            )
        )
    else:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
        found.append(Finding(OK, "torch", f"{version}, {build}"))
        if modern and _version_tuple(version) < SAFE_CHECKPOINTS_TORCH:
            found.append(
                Finding(
                    WARN,
                    "torch",
                    "reading MMF checkpoints without running their code (pekit adapters) "
                    "needs torch 2.5 or newer",
                    "install torch 2.5 or newer",
                )
            )
    try:
        import torchvision

        found.append(Finding(OK, "torchvision", torchvision.__version__))
    except Exception as e:  # a torchvision built for another torch fails in many ways
        found.append(
            Finding(
                FAIL,
                "torchvision",
                f"not importable ({type(e).__name__}: {e})",
                "install the torchvision built for your torch",
            )
        )
    if not torch.cuda.is_available():
        found.append(
            Finding(
                WARN,
                "GPUs",
                "none visible: training runs on the CPU (SETTINGS=fast needs a GPU)",
                "check `nvidia-smi` and CUDA_VISIBLE_DEVICES",
            )
        )
        return found
    arches = torch.cuda.get_arch_list()
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        name = torch.cuda.get_device_name(i)
        bf16 = "bf16 native" if major >= 8 else "no native bf16: fast uses fp16"
        runs = any(
            a.startswith(f"sm_{major}") and int(a[3:]) <= major * 10 + minor
            for a in arches
            if a.startswith("sm_")
        )
        if arches and not runs:
            found.append(
                Finding(
                    FAIL,
                    f"GPU {i}",
                    f"{name} (compute capability {major}.{minor}): "
                    f"this torch has no kernels for it ({' '.join(arches)})",
                    "install a torch built for it, or use the paper image on a V100",
                )
            )
        else:
            found.append(
                Finding(OK, f"GPU {i}", f"{name}, compute capability {major}.{minor}, {bf16}")
            )
    return found


def check_packages():
    """The locked packages the kit installs beside torch: missing ones fail; other versions are
    a warning, except a numpy of another major release (the lock's compiled packages, pandas
    and scikit-learn, are built for numpy 1.x)."""
    from . import wheelhouse

    fix = (
        "pip install --no-deps -r <(python3 docker/profiles.py image-requirements modern"
        " | grep -v '^torch'), or offline: pekit wheelhouse (docs/no-docker.md)"
    )
    if sys.version_info < (3, 8):
        return []  # the paper image's own stack: its lock is checked where it is built
    import importlib.metadata

    missing, other = [], []
    wanted, _ = wheelhouse.plan()
    # numpy comes with torchvision, yet its major release must be the lock's (compiled packages).
    for line in [*wanted, wheelhouse.locked("numpy")]:
        name, locked = line.split("==", 1)
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if have != locked:
            other.append((name, have, locked))
    findings = []
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        findings.append(Finding(FAIL, "packages", f"{len(missing)} missing: {shown}", fix))
    numpy = [(h, lk) for n, h, lk in other if n == "numpy" and h.split(".")[0] != lk.split(".")[0]]
    if numpy:
        findings.append(
            Finding(
                FAIL,
                "numpy",
                f"{numpy[0][0]}: the lock's pandas and scikit-learn are built for numpy "
                f"{numpy[0][1].split('.')[0]}.x",
                f"pip install numpy=={numpy[0][1]}",
            )
        )
    if other and not numpy:
        shown = ", ".join(f"{n} {h} (lock {lk})" for n, h, lk in other[:4])
        more = f" and {len(other) - 4} more" if len(other) > 4 else ""
        findings.append(
            Finding(WARN, "packages", f"other versions than the lock's: {shown}{more}", fix)
        )
    if not findings:
        findings.append(Finding(OK, "packages", f"the {len(wanted)} locked packages"))
    return findings


def check_mmf():
    kind, where = mmf_source.locate()
    if kind == "installed":
        try:
            return Finding(OK, "MMF", targets.check_version("mmf", where))
        except PekitError as e:
            return Finding(FAIL, "MMF", str(e), "pekit prepare (reinstalls MMF at the pin)")
    if kind == "checkout":
        return Finding(
            FAIL, "MMF", f"a checkout at the pin ({where}), not installed", "pekit mmf install"
        )
    return Finding(
        FAIL, "MMF", where, "pekit mmf fetch [--from CLONE_OR_BUNDLE] && pekit mmf install"
    )


def check_patches():
    findings = []
    roots = {t: targets.find_root(t) for t in manifest.TARGETS}
    wanted = targets.default_sets()
    try:
        entries = manifest.load().select(sets=manifest.SETS)
    except PekitError as e:
        return [Finding(FAIL, "patches", str(e))]
    for name in manifest.SETS:
        chosen = [e for e in entries if e.set == name]
        states = engine.file_states(chosen, roots)
        if len(states) < len(chosen):
            missing = sorted({e.target for e in chosen if roots.get(e.target) is None})
            findings.append(
                Finding(
                    WARN if name not in wanted else FAIL,
                    f"patch set {name}",
                    f"{', '.join(missing)} not installed",
                    "pekit prepare",
                )
            )
            continue
        counts = {}
        for s in states:
            counts[s.state] = counts.get(s.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        if counts == {engine.PATCHED: len(states)}:
            findings.append(Finding(OK, f"patch set {name}", f"applied ({summary})"))
        elif name not in wanted and counts == {engine.PRISTINE: len(states)}:
            findings.append(Finding(OK, f"patch set {name}", "not applied (not this stack's)"))
        else:
            findings.append(
                Finding(
                    FAIL,
                    f"patch set {name}",
                    summary,
                    "pekit patch apply (pekit prepare when files are modified)",
                )
            )
    return findings


def check_data(data_dir=None):
    findings = []
    for name in DATASETS:
        facts = dataset_facts(name)
        folder = dataset_dir(facts["mmf_dataset"], data_dir) / "annotations"
        splits = [s + ".jsonl" for s in facts["splits"]]
        have = [s for s in splits if (folder / s).is_file()]
        if len(have) == len(splits):
            findings.append(Finding(OK, f"data {name}", f"laid out in {folder.parent}"))
        else:
            command = "pekit data hmd ZIP_OR_FOLDER" if name == "hmd" else "pekit data mmh FOLDER"
            findings.append(
                Finding(WARN, f"data {name}", f"not laid out in {folder.parent}", command)
            )
    return findings


def check_assets(data_dir=None):
    from . import assets

    try:
        facts = assets.load_facts()
    except PekitError as e:
        return [Finding(FAIL, "assets", str(e))]
    root = mmf_data_dir(data_dir)
    findings = []
    for asset in facts.assets:
        state = assets.state(asset, root)
        status = OK if state in ("present", "built-by-mmf") else WARN
        fix = (
            ""
            if status == OK
            else f"pekit assets fetch {asset.name}"
            + ("" if asset.verified else " --allow-unverified")
        )
        findings.append(Finding(status, f"asset {asset.name}", state, fix))
    return findings


def diagnose(data_dir=None):
    findings = [check_python(), *check_torch(), *check_packages(), check_mmf(), *check_patches()]
    findings += check_data(data_dir) + check_assets(data_dir)
    return findings


def register(subparsers):
    p = subparsers.add_parser(
        "doctor",
        help="what this environment has for the kit, what is missing, and the fix for each",
        description=__doc__.strip().splitlines()[0],
    )
    p.add_argument("--data-dir", metavar="DIR", help="MMF's data dir (default: MMF's own)")
    p.set_defaults(func=_main)


def _main(args):
    findings = diagnose(args.data_dir)
    width = max(len(f.what) for f in findings)
    print(
        f"pekit doctor: kit {pins.REPO_ROOT}, MMF pin {pins.get('mmf.commit')[:7]}, "
        f"transformers {pins.get('transformers.version')}"
    )
    for f in findings:
        print(f"  {f.status:4}  {f.what:<{width}}  {f.detail}")
        if f.fix:
            print(f"  {'':4}  {'':<{width}}  -> {f.fix}")
    failed = [f for f in findings if f.status == FAIL]
    print(
        f"{len(failed)} problem{'s' if len(failed) != 1 else ''} to fix"
        if failed
        else "ready to train"
    )
    return 1 if failed else 0

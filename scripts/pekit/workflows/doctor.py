"""`pekit doctor`: one screen saying what this environment has for the kit, what is missing or
incompatible, and the command that fixes each.

Checked: Python, torch and its CUDA build, the GPUs and their compute capability (bf16), the
GPUs and the world size a run with `--gpus N --nodes M` would use, the kit's packages beside torch, MMF at the pinned commit, the state of each patch set, the data
folder, and what a paper run of each dataset and model needs (annotations, features, pre-trained
assets: the checks `pekit run` makes before it starts), each missing thing with the runs it
blocks. Packages are judged by the versions the kit is tested with
(compat, facts/node_compat.json) and by what imports and works (a subprocess imports them):
missing, not importing, or another version of one the kit needs exactly fails; another version
of any other is a warning (on torch's side, numpy and the like, only outside a tested range).
Nothing is written. Exit code 1 when something the training needs is missing or wrong.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from ..core.errors import PekitError
from ..data.paths import mmf_data_dir, mmf_data_dir_source
from ..facts import pins, settings
from ..facts.vocabulary import DATASETS, DEFAULT_MODELS
from ..setup import mmf_source
from ..setup.patching import engine, manifest, targets

OK, WARN, FAIL = "ok", "warn", "FAIL"
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
    supported = pins.supported_pythons()
    if any(version in found for found in supported.values()):
        return Finding(OK, "Python", f"{sys.version.split()[0]} ({sys.executable})")
    tested = supported.pop(pins.get("test_env.profile"))
    others = [f"{', '.join(v)} for the {name}'s stack" for name, v in supported.items()]
    return Finding(
        FAIL,
        "Python",
        f"{version} is not one the kit is tested on ({'; '.join([', '.join(tested), *others])})",
        f"use Python {' or '.join(tested)} (make venv PYTHON=python{tested[-1]})",
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
        native = settings.native_bf16((major, minor), hip=torch.version.hip)
        bf16 = "bf16 native" if native else "no native bf16: fast uses fp16"
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


# The import probe: these modules (and MMF's where it is installed) must import, and these
# checks run; in a subprocess, so that a module built for another numpy, or a crash, cannot take
# the doctor down.
PROBED = tuple(
    "numpy pandas scipy sklearn.metrics matplotlib PIL yaml omegaconf tokenizers huggingface_hub"
    " transformers transformers.models.bert.modeling_bert pytorch_lightning torchmetrics lmdb".split()
)
PROBED_MMF = ("mmf", "mmf.utils.configuration")
WORKS = {
    "sklearn.metrics.roc_auc_score": "from sklearn.metrics import roc_auc_score\n"
    "auc = roc_auc_score([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])\nassert auc == 1.0, auc",
    "pandas.DataFrame jsonl round trip": "import io, pandas\n"
    "df = pandas.DataFrame({'id': [1, 2], 'text': ['a', 'b']})\n"
    "back = pandas.read_json(io.StringIO(df.to_json(orient='records', lines=True)), lines=True)\n"
    "assert back.to_dict('records') == df.to_dict('records'), back",
}
PROBE_TIMEOUT = 300
DISTS = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "PyYAML"}  # module: distribution
_PROBE = r"""
import importlib, io, json, sys, traceback
modules, works = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
def attempt(name, run):
    sys.__stderr__.write("pekit-probe: " + name + "\n")
    sys.__stderr__.flush()
    caught, sys.stderr, error = sys.stderr, io.StringIO(), None
    try:
        run()
    except BaseException as e:
        error = traceback.format_exception_only(type(e), e)[-1].strip().splitlines()[0]
    finally:
        said, sys.stderr = sys.stderr.getvalue(), caught
    if "compiled using NumPy 1.x" in said:
        error = "built for NumPy 1.x, cannot run with NumPy 2.x" + (f" ({error})" if error else "")
    out[name] = error
for m in modules:
    attempt(m, lambda: importlib.import_module(m))
for name, code in works.items():
    attempt(name, lambda: exec(code, {}))
print("pekit-probe " + json.dumps(out))
"""


def _kit_versions():
    """{name: locked version} of the packages a training environment needs beside torch and
    torchvision (the modern lock and transformers at the pin), and the torch side's names."""
    from ..setup import wheelhouse

    versions = wheelhouse.pinned(wheelhouse._lock_lines(False))
    for name in ("pip", *wheelhouse.NODE_TORCH):
        versions.pop(name, None)
    return versions, wheelhouse.provided(wheelhouse.NODE_TORCH, wheelhouse.lock_graph())


def _tested(name, have, locked):
    """The accepted version nearest to `have`."""
    from ..setup import compat

    span = compat.accepted_range(name)
    if span is None:
        return locked
    low = compat.parse_version(span[0])
    return span[0] if (compat.parse_version(have) or low) < low else span[1]


def _import_fix(module, check=False):
    """Reinstalling the failing module's package; `check`: `module` names a WORKS check."""
    from ..setup import compat

    top = module.split(".")[0]
    shows = f"python -c 'import {module}' shows the whole error"
    if check:
        shows = f"the check is WORKS[{module!r}] in scripts/pekit/workflows/doctor.py"
    if top == "mmf":
        return f"pekit prepare (reinstalls MMF at the pin); {shows}"
    versions, _ = _kit_versions()
    dist = compat.normalize(DISTS.get(top, top))
    if dist not in versions:
        return shows
    try:
        numpy = compat.installed("numpy")
    except compat.MetadataError:
        numpy = None  # a finding of its own (check_packages)
    version = compat.build_for(dist, versions[dist], numpy)
    return f"pip install --no-deps --force-reinstall {dist}=={version}; {shows}"


def probe_imports(modules=None, works=None, timeout=PROBE_TIMEOUT):
    """Import `modules` and run the `works` checks ({name: code}) in a subprocess of this
    Python: a FAIL finding for each that fails (its error's last line and a fix), or one OK."""
    import importlib.util
    import json
    import os
    import subprocess

    if modules is None:
        modules = PROBED + (PROBED_MMF if importlib.util.find_spec("mmf") else ())
    works = WORKS if works is None else works
    command = [sys.executable, "-c", _PROBE, json.dumps(list(modules)), json.dumps(works)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        out, err, ended = proc.stdout, proc.stderr, None
    except subprocess.TimeoutExpired as e:
        out, err, ended = "", e.stderr, f"did not finish in {timeout} s"
    if isinstance(err, bytes):
        err = err.decode(errors="replace")
    results = [
        ln[len("pekit-probe ") :] for ln in out.splitlines() if ln.startswith("pekit-probe ")
    ]
    if ended or not results:
        at = [
            ln.split(": ", 1)[1]
            for ln in (err or "").splitlines()
            if ln.startswith("pekit-probe: ")
        ]
        if not ended:
            rc = proc.returncode
            ended = f"crashed ({f'signal {-rc}' if rc < 0 else f'exit {rc}'})"
        where = f" importing {at[-1]}" if at else ""
        first = at[-1] if at else next(iter(modules), "sys")
        fix = f"python -X faulthandler -c 'import {first}' shows where"
        return [Finding(FAIL, "imports", f"the import probe {ended}{where}", fix)]
    failed = [(m, error) for m, error in json.loads(results[-1]).items() if error]
    found = [
        Finding(FAIL, "imports", f"{m}: {error}", _import_fix(m, m in works))
        for m, error in failed[:6]
    ]
    if len(failed) > 6:
        rest = ", ".join(m for m, _ in failed[6:])
        fix = "python -c 'import MODULE' shows each one's error"
        found.append(Finding(FAIL, "imports", f"{len(failed) - 6} more fail: {rest}", fix))
    return found or [Finding(OK, "imports", f"{len(modules)} modules import and work")]


def check_packages():
    """The packages the kit works with beside torch, judged by the versions it is tested with
    (compat) and by what imports and works: a missing one fails, and so does one that does not
    import or work, or one at another version where the kit needs exactly the lock's
    (compat.exact_why); another version of any other is a warning, as is one on the torch side
    (numpy, pillow, ...: the environment's own) only outside a tested range."""
    if sys.version_info < (3, 8):
        return []  # the paper image's own stack: its lock is checked where it is built
    from ..setup import compat

    versions, torch_side = _kit_versions()
    missing, exact, other, broken = [], [], [], []
    for name, locked in versions.items():
        try:
            have = compat.installed(name)
        except compat.MetadataError as e:  # its metadata, not the doctor, is broken
            fix = f"pip install --no-deps --force-reinstall {name}=={locked}"
            broken.append(Finding(FAIL, name, str(e), fix))
            continue
        if have is None:
            if name not in torch_side or name in ("numpy", "pillow"):  # the kit imports these
                missing.append(name)
            continue
        if compat.accepts(name, have, locked):
            continue
        why = compat.exact_why(name)
        if why and name not in torch_side:
            exact.append(
                Finding(FAIL, name, f"{have}: {why}", f"pip install --no-deps {name}=={locked}")
            )
        elif name not in torch_side or compat.accepted_range(name):
            other.append((name, have, locked))
    findings = []
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        fix = (
            "pip install --no-deps -r <(python3 docker/profiles.py image-requirements modern"
            " | grep -v '^torch'), or offline: pekit wheelhouse (docs/no-docker.md)"
        )
        findings.append(Finding(FAIL, "packages", f"{len(missing)} missing: {shown}", fix))
    findings += broken + exact
    if other:
        shown = ", ".join(f"{n} {h} (tested: {compat.describe(n, lk)})" for n, h, lk in other[:4])
        more = f" and {len(other) - 4} more" if len(other) > 4 else ""
        fix = "pip install --no-deps " + " ".join(
            f"{n}=={_tested(n, h, lk)}" for n, h, lk in other[:4]
        )
        detail = f"other versions than the kit is tested with: {shown}{more}"
        findings.append(Finding(WARN, "packages", detail, fix))
    if not findings:
        findings.append(
            Finding(OK, "packages", f"the kit's {len(versions)}, at versions it is tested with")
        )
    return findings + probe_imports()


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


def check_data(data_dir=None, datasets=DATASETS, models=DEFAULT_MODELS):
    """The data folder, then what a paper run of each (dataset, model) needs (the checks
    `pekit run` makes before it starts: run/preflight.py): each missing thing one FAIL naming
    the runs it blocks and its fix; a dataset with everything, one ok."""
    from ..run import preflight

    folder, source = mmf_data_dir_source(data_dir)
    findings = [Finding(OK, "data dir", f"{folder} ({source})")]
    blocked = {}
    for dataset in datasets:
        for model in models:
            try:
                needed = preflight.needs(dataset, model, settings.PAPER, data_dir)
            except PekitError as e:  # a broken record of the data folder: named, never a crash
                needed = [(str(e), "")]
            for what, fix in needed:
                blocked.setdefault((what, fix), []).append(f"{dataset} {model}")
        if not any(r.startswith(f"{dataset} ") for runs in blocked.values() for r in runs):
            findings.append(Finding(OK, f"data {dataset}", "annotations, features, assets there"))
    for (what, fix), runs in blocked.items():
        on = sorted({r.split()[0] for r in runs})
        label = f"data {on[0]}" if len(on) == 1 else "data " + ", ".join(on)
        findings.append(Finding(FAIL, label, f"{what} (blocks {', '.join(runs)} runs)", fix))
    return findings


def check_assets(data_dir=None, datasets=DATASETS, models=DEFAULT_MODELS):
    """Assets no training run of `datasets` x `models` reads (the feature extractor, other
    checkpoints): a warning when missing. Those training reads are check_data's."""
    from .. import assets
    from ..run import preflight

    try:
        facts = assets.load_facts()
    except PekitError as e:
        return [Finding(FAIL, "assets", str(e))]
    root = mmf_data_dir(data_dir)
    findings = []
    for asset in facts.assets:
        if any(asset.needed_by(d, m) for d in datasets for m in models):
            continue
        if not set(asset.used_by) & set(datasets):
            continue
        try:
            state = assets.state(asset, root)
        except PekitError as e:  # its record or MMF's marker is broken
            findings.append(Finding(FAIL, f"asset {asset.name}", str(e)))
            continue
        status = OK if state in ("present", "built-by-mmf") else WARN
        fix = "" if status == OK else preflight.fetch_command(asset, data_dir)
        findings.append(Finding(status, f"asset {asset.name}", state, fix))
    return findings


def check_processes(gpus=1, nodes=1, environ=None):
    """The devices and the world size a run with `--gpus gpus --nodes nodes` would use, as the
    runner decides them (run/devices.py), or why it would refuse."""
    from ..core.errors import UsageError
    from ..run import command, devices

    what = f"--gpus {gpus}" + (f" --nodes {nodes}" if nodes > 1 else "")
    try:
        shown = devices.visible_devices(gpus, environ=environ, nodes=nodes)
    except UsageError as e:
        return [Finding(FAIL, what, str(e), "ask for at most the GPUs this node shows")]
    world = gpus * nodes
    if devices.distributed_cpu(environ):
        where = f"no GPU ({devices.ENV_CPU}=1): {gpus} process{'es' if gpus > 1 else ''} on the CPU"
    elif shown:
        where = f"CUDA_VISIBLE_DEVICES={shown}"
    else:
        where = "no GPU: one process on the CPU"
    per_node = " on each node" if nodes > 1 else ""
    found = [Finding(OK, what, f"{where}{per_node}; world size {world}")]
    if nodes > 1 and shutil.which(command.SRUN[0]) is None:
        found.append(
            Finding(
                FAIL,
                what,
                f"SLURM's {command.SRUN[0]} is not on PATH",
                "run pekit inside a SLURM allocation (sbatch or salloc; docs/reproduce.md)",
            )
        )
    return found


def diagnose(data_dir=None, datasets=DATASETS, models=DEFAULT_MODELS, gpus=1, nodes=1):
    findings = [check_python(), *check_torch(), *check_processes(gpus, nodes)]
    findings += [*check_packages(), check_mmf(), *check_patches()]
    findings += check_data(data_dir, datasets, models) + check_assets(data_dir, datasets, models)
    return findings

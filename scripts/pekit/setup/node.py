"""A GPU node's Python, as the kit sees it: its freeze, and the kit's venv on top of it.

Run on the node, with the node's own Python (standard library only, nothing to install):

    python3 scripts/pekit/setup/node.py freeze > node.json

prints the node's *freeze*: every installed distribution with its version and its requirements
(Requires-Dist), the Python, the platform (glibc) and the environment markers, and the site
folders where the packages live. `pekit wheelhouse --node node.json` decides from it, by version,
what the kit ships and what it takes from the node (docs/no-docker.md).

    python3 node.py venv --venv DIR --wheelhouse WHEELS [--wheel EXTRA.whl ...] [--kit KIT]

makes the kit's venv on that Python, offline: a venv without pip, pip itself bootstrapped from
the wheelhouse's pip wheel (no ensurepip: Debian's and Ubuntu's Pythons may lack it), the
wheelhouse installed with --no-deps and --no-index, the kit installed editable, then a `.pth`
that adds the node's site folders *after* the venv's own. The kit's packages shadow the node's
(transformers 4.10.1 over the node's 5.x, huggingface_hub 0.36 over 1.x) and torch, which the
kit never installs, comes from the node. It works alike for a system Python, a venv (whose own
packages are not its base interpreter's) and a conda environment: the site folders are read
from the node Python's own sys.path.

This file is imported by the kit too (pekit.setup.wheelhouse reads freezes through it), so it keeps to
the standard library and runs as a script or as a module.
"""

import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

KIND = "pekit-node-freeze"
FORMAT = 1
# Written into a venv this module made: the only kind of folder `venv` replaces.
VENV_MARK = ".pekit-node-venv"
PTH_NAME = "_pekit_node_site.pth"


def normalize(name):
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", str(name)).lower()


# ---- on the node: the freeze ------------------------------------------------------------------


def _marker_environment():
    """PEP 508's marker variables for this interpreter (what `packaging` computes)."""
    impl = sys.implementation
    info = impl.version
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def site_dirs():
    """This Python's package folders, in its import order: sys.path without the standard
    library, the current folder and what does not exist."""
    paths = sysconfig.get_paths()
    stdlib = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if paths.get(k)}
    # This file's folder (sys.path[0] when it runs as a script) and the kit's scripts/ folder
    # are the kit's, not the node's.
    kit = set()
    if "__file__" in globals():  # not when the file is fed to `python3 -` over ssh
        here = os.path.dirname(os.path.realpath(__file__))
        kit = {here, os.path.dirname(os.path.dirname(here))}
    out = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real in kit or real in stdlib:
            continue
        if os.path.dirname(real) in stdlib and "site-packages" not in real:
            continue  # lib-dynload and the like
        if real not in out:
            out.append(real)
    return out


def freeze():
    """The node's freeze (see the module's doc), as a JSON-ready dict."""
    import importlib.metadata  # Python 3.8+: every Python the kit's modern stack runs on

    packages = {}
    for dist in importlib.metadata.distributions():  # in sys.path order: the first one wins
        where = getattr(dist, "_path", "a distribution")
        try:  # importlib.metadata parsing each METADATA: whatever a broken one raises
            name, version = dist.metadata["Name"], dist.version
            requires = list(dist.requires or ())
        except Exception as e:
            _warn(f"{where}: metadata that cannot be read ({type(e).__name__}); left out")
            continue
        if not isinstance(name, str) or not _NAME.match(name) or normalize(name) in packages:
            continue
        if not isinstance(version, str) or not _VERSION.match(version):
            _warn(f"{where}: version {_short(version)} is not one; left out")
            continue
        packages[normalize(name)] = {
            "name": name,
            "version": version,
            "requires": [r for r in requires if isinstance(r, str) and 0 < len(r) <= 1000],
        }
    libc, libc_version = platform.libc_ver()
    return {
        "kind": KIND,
        "format": FORMAT,
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "base_prefix": getattr(sys, "base_prefix", sys.prefix),
            "venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
            "conda": os.path.isdir(os.path.join(sys.prefix, "conda-meta")),
        },
        "glibc": libc_version if libc == "glibc" else None,
        "markers": _marker_environment(),
        "site_dirs": site_dirs(),
        "packages": dict(sorted(packages.items())),
    }


def _warn(text):
    print(f"node.py freeze: warning: {text}", file=sys.stderr)


# ---- where the wheelhouse is made: reading a freeze -------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")


class Package:
    """One installed distribution of the node: its name, version and Requires-Dist lines."""

    __slots__ = ("name", "version", "requires")

    def __init__(self, name, version, requires=()):
        self.name, self.version, self.requires = name, version, tuple(requires)

    def __repr__(self):
        return f"Package({self.name!r}, {self.version!r})"


class NodeFreeze:
    """A node's freeze, checked field by field (`from_dict`): made by `freeze()` on the node,
    or a plain `pip freeze` (names and versions only: no requirements, no markers)."""

    def __init__(self, source, python, packages, glibc=None, markers=None, site_dirs=()):
        self.source = source
        self.python = python  # "3.12"
        self.packages = packages  # {normalized name: Package}
        self.glibc = glibc
        self.markers = markers  # None for a plain pip freeze
        self.site_dirs = list(site_dirs)

    @property
    def has_requirements(self):
        return self.markers is not None

    def version(self, name):
        pkg = self.packages.get(normalize(name))
        return pkg.version if pkg else None

    @classmethod
    def from_dict(cls, doc, source):
        def bad(field, expected, value):
            return NodeError(f"{source}: {field} is {_short(value)}; expected {expected}")

        def text(value, field, pattern=None, expected="a string"):
            if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
                raise bad(field, expected, value)
            return value

        if not isinstance(doc, dict):
            raise bad("the document", "a JSON object from node.py freeze", type(doc).__name__)
        if doc.get("kind") != KIND:
            raise bad("kind", repr(KIND) + " (made by node.py freeze)", doc.get("kind"))
        if type(doc.get("format")) is not int or doc.get("format") != FORMAT:
            raise bad("format", str(FORMAT), doc.get("format"))
        py = doc.get("python")
        if not isinstance(py, dict):
            raise bad("python", "an object", py)
        full = text(
            py.get("version"),
            "python.version",
            re.compile(r"^3\.\d{1,2}\.\d{1,3}"),
            "a version like 3.12.3",
        )
        glibc = doc.get("glibc")
        if glibc is not None:
            text(glibc, "glibc", _GLIBC, "null or a glibc version from 2.5 to 2.99, like 2.39")
        markers = doc.get("markers")
        if not isinstance(markers, dict) or not all(
            isinstance(v, str) and len(v) <= 1000 for v in markers.values()
        ):
            raise bad("markers", "an object of strings (PEP 508 marker variables)", markers)
        dirs = doc.get("site_dirs")
        if not isinstance(dirs, list) or not all(
            isinstance(d, str) and 0 < len(d) <= 4096 for d in dirs
        ):
            raise bad("site_dirs", "a list of folder names", dirs)
        raw = doc.get("packages")
        if not isinstance(raw, dict):
            raise bad("packages", "an object of name: {name, version, requires}", raw)
        packages = {}
        for key, entry in raw.items():
            field = f"packages.{_key(key)}"
            if not isinstance(entry, dict):
                raise bad(field, "an object", entry)
            name = text(entry.get("name"), field + ".name", _NAME, "a distribution name")
            if normalize(name) != key:
                raise bad(field + ".name", f"a name that normalizes to {key!r}", name)
            version = text(entry.get("version"), field + ".version", _VERSION, "a version")
            requires = entry.get("requires")
            if not isinstance(requires, list) or not all(
                isinstance(r, str) and 0 < len(r) <= 1000 for r in requires
            ):
                raise bad(field + ".requires", "a list of requirement strings", requires)
            packages[key] = Package(name, version, requires)
        return cls(source, ".".join(full.split(".")[:2]), packages, glibc, markers, dirs)

    @classmethod
    def from_pip_freeze(cls, text, source, python):
        packages = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue  # comments, options, editable installs
            name, sep, version = line.partition("==")
            name, version = name.strip(), version.strip()
            if not sep:
                name = re.split(r"[ @;]", line, maxsplit=1)[
                    0
                ]  # "name @ url": a version pip cannot tell
                version = None
            if not _NAME.match(name) or (version is not None and not _VERSION.match(version)):
                raise NodeError(f"{source}:{number}: expected 'name==version', got {line!r}")
            if version is not None:
                packages[normalize(name)] = Package(name, version)
        return cls(source, python, packages)

    @classmethod
    def read(cls, path, python=None):
        """A freeze from `path`: node.py's JSON, or a plain `pip freeze` (then `python`, the
        node's X.Y, must be given)."""
        data = _read_file(path, "the node's freeze")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NodeError(
                f"{path}: not UTF-8 (byte {e.start}); expected a node's freeze"
            ) from None
        if text.lstrip().startswith(("{", "[")):
            try:
                doc = _loads(text)
            except ValueError as e:
                detail = " ".join(str(e).split())[:200]
                raise NodeError(
                    f"{path}: not valid JSON ({detail}); expected node.py freeze's output"
                ) from None
            return cls.from_dict(doc, str(path))
        if python is None:
            raise NodeError(
                f"{path}: a plain pip freeze does not say the node's Python; give --python, or"
                " use node.py freeze (which also records what each package requires)"
            )
        return cls.from_pip_freeze(text, str(path), python)


# ---- on the node: the kit's venv --------------------------------------------------------------


try:  # imported as pekit.setup.node: the kit's refusal; run as a script on the node: a plain one
    from ..core.errors import PekitError as _Refusal
except ImportError:
    _Refusal = Exception
try:  # the kit's one JSON reader; on the node, the plain reading below
    from ..core import jsonfile as _jsonfile
except ImportError:
    _jsonfile = None


class NodeError(_Refusal):
    """A refusal, said in one line."""


def _short(value, limit=60):
    """`value` as a refusal shows it: short, flat, one line (a list or object by its size)."""
    if isinstance(value, dict):
        return f"an object of {len(value)} fields"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number of over 19 digits"
    text = repr(value[: 4 * limit] if isinstance(value, str) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _loads(text):
    """JSON text as the kit reads it (pekit.core.jsonfile: no NaN, no number beyond a float's
    range, no nesting deeper than any file of the kit's); on the node, without the kit, as
    Python reads it less NaN and the infinities."""
    if _jsonfile is not None:
        return _jsonfile.loads(text)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _read_file(path, what, limit=64 * 1024 * 1024):
    """The bytes of the regular file `path`; a NodeError naming it otherwise (a folder, a pipe
    or device, never waited on; over `limit` bytes; an error of the system)."""
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise NodeError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NodeError(f"{path}: cannot read {what}: not a regular file")
        with os.fdopen(fd, "rb") as f:
            fd = None
            data = f.read(limit + 1)
    except OSError as e:
        raise NodeError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    finally:
        if fd is not None:
            os.close(fd)
    if len(data) > limit:
        raise NodeError(f"{path}: over {limit >> 20} MiB; expected {what}")
    return data


def _load_json(path, what):
    """The JSON object of the file `path`; a NodeError naming it otherwise, whatever it holds."""
    data = _read_file(path, what)
    try:
        doc = _loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise NodeError(f"{path}: not UTF-8 (byte {e.start}); expected {what}") from None
    except ValueError as e:
        detail = " ".join(str(e).split())[:200]
        raise NodeError(f"{path}: not valid JSON ({detail}); expected {what}") from None
    if not isinstance(doc, dict):
        raise NodeError(f"{path}: {_short(doc)}; expected {what}, a JSON object")
    return doc


# ---- the wheelhouse's record: one reader, here (the node reads it without the kit) -----------

_WHEEL = re.compile(r"^[A-Za-z0-9_.+!-]{1,255}\.whl$")
_PYTHON_XY = re.compile(r"^3\.\d{1,2}$")
_GLIBC = re.compile(r"^2\.(?:[5-9]|[1-9][0-9])$")


class WheelhouseRecord:
    """A wheelhouse's wheelhouse.json (written by `pekit wheelhouse`), checked field by field:
    the Python it is for, its wheels and their sizes, what it keeps of the node."""

    __slots__ = (
        "path",
        "python",
        "glibc",
        "node",
        "requirements",
        "left_out",
        "shadows",
        "warnings",
        "kept",
        "files",
        "bytes",
    )

    def __init__(self, path, **fields):
        self.path = path
        for name in self.__slots__[1:]:
            setattr(self, name, fields.get(name))


def read_wheelhouse_record(path, hint=""):
    """The WheelhouseRecord of `path`; a NodeError naming the file, the field and what was
    expected (then `hint`) otherwise, in one line."""
    doc = _load_json(path, "a wheelhouse record (pekit wheelhouse)")

    def bad(field, value, expected):
        return NodeError(f"{path}: field {field!r} is {_short(value)}; expected {expected}{hint}")

    def text(value, field, pattern=None, expected="a string", optional=False, limit=10000):
        if value is None and optional:
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise bad(field, value, expected)
        if pattern is not None and not pattern.match(value):
            raise bad(field, value, expected)
        return value

    def count(value, field):
        if type(value) is not int or not 0 <= value <= 2**63 - 1:
            raise bad(field, value, "a whole number of 0 or more")
        return value

    def texts(value, field):
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad(field, value, "a list of strings")
        for i, item in enumerate(value):
            text(item, f"{field}[{i}]")
        return value

    def mapping(value, field):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad(field, value, "an object of strings")
        for key, item in value.items():
            text(item, f"{field}.{_key(key)}")
        return value

    python = text(doc.get("python"), "python", _PYTHON_XY, "a Python version like 3.12")
    glibc = text(doc.get("glibc"), "glibc", _GLIBC, "null or a glibc version like 2.28", True)
    files = doc.get("files")
    if not isinstance(files, list):
        raise bad("files", files, "a list of {file, bytes}")
    for i, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise bad(f"files[{i}]", entry, "an object {file, bytes}")
        text(entry.get("file"), f"files[{i}].file", _WHEEL, "a wheel's file name")
        count(entry.get("bytes"), f"files[{i}].bytes")
    total = doc.get("bytes")
    if total is not None and count(total, "bytes") != sum(f["bytes"] for f in files):
        raise bad("bytes", total, f"the sum of its files' bytes, {sum(f['bytes'] for f in files)}")
    kept = doc.get("kept")
    if kept is not None:
        if not isinstance(kept, dict):
            raise bad("kept", kept, "an object of name: {version, ...}")
        for name, want in kept.items():
            _check_kept_entry(want, f"kept.{_key(name)}", bad)
    return WheelhouseRecord(
        path,
        python=python,
        glibc=glibc,
        node=text(doc.get("node"), "node", optional=True),
        requirements=texts(doc.get("requirements"), "requirements"),
        left_out=mapping(doc.get("left_out"), "left_out"),
        shadows=mapping(doc.get("shadows"), "shadows"),
        warnings=texts(doc.get("warnings"), "warnings"),
        kept=kept,
        files=files,
        bytes=total,
    )


def _key(name):
    return name if _NAME.match(name) else _short(name, 24)


def _check_kept_entry(want, field, bad):
    """What the wheelhouse takes from the node for one package: its version in the freeze and
    what the kit accepts: the same major version ("major"), exactly one ("exact"), or a range
    ("min" and "max"); versions as pip writes them."""
    if not isinstance(want, dict):
        raise bad(field, want, "an object {version, and major, exact or min and max}")
    for key in ("version", "exact", "min", "max"):
        value = want.get(key)
        if (key in want or key == "version") and (
            not isinstance(value, str) or not _VERSION.match(value)
        ):
            raise bad(f"{field}.{key}", value, "a version")
    kinds = [k for k in ("major", "exact", "min") if k in want]
    if len(kinds) != 1 or ("min" in want) != ("max" in want):
        raise bad(field, want, "one of major, exact, or min with max")
    if "major" in want and want["major"] != want["version"].split(".")[0]:
        raise bad(f"{field}.major", want["major"], f"the major of {want['version']!r}")


def _run(cmd, what):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.strip()]
        raise NodeError(f"{what} failed: {lines[-1] if lines else 'exit ' + str(proc.returncode)}")
    return proc.stdout.decode(errors="replace")


def _venv_python(venv):
    return Path(venv) / "bin" / "python"


def _venv_site(venv):
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(
        _run([str(_venv_python(venv)), "-c", probe], "reading the venv's site folder").strip()
    )


def _clear(venv):
    """Make room for the venv: only a folder this module made (its mark) is replaced."""
    venv = Path(venv)
    if venv.is_symlink() or (venv.exists() and not venv.is_dir()):
        raise NodeError(
            f"{venv}: exists and is not a folder; expected the kit's venv folder: move it away"
            " or name another folder"
        )
    if venv.is_dir() and any(venv.iterdir()):
        mark = venv / VENV_MARK
        if mark.is_symlink() or not mark.is_file():
            names = sorted(p.name for p in venv.iterdir())
            shown = ", ".join(n if n.isprintable() else ascii(n) for n in names[:3])
            raise NodeError(
                f"{venv}: a folder that is not a kit venv (no {VENV_MARK}; it holds {shown}"
                f"{', ...' if len(names) > 3 else ''}), left as it is: move it"
                " away or name another folder"
            )
        shutil.rmtree(str(venv))


def _read_record(record):
    """The wheelhouse's record: its `python` and `kept`, checked."""
    checked = read_wheelhouse_record(record, "; make the wheelhouse again (pekit wheelhouse)")
    if checked.kept is None:
        raise NodeError(
            f"{record}: field 'kept' is missing; expected what the wheelhouse keeps of the node"
            " (made by pekit wheelhouse)"
        )
    return checked.python, checked.kept


def _describe(python, names):
    """What `python` is: its X.Y, its site folders (site_dirs) and the versions of `names`
    installed there (None: missing), in one run of it."""
    here = os.path.abspath(__file__)
    code = (
        "import json, runpy, sys, importlib.metadata as m\n"
        "def version(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        f"dirs = runpy.run_path({here!r})['site_dirs']()\n"
        "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'site_dirs': dirs,"
        " 'versions': {n: version(n) for n in json.loads(sys.argv[1])}}))"
    )
    out = _run([python, "-c", code, json.dumps(sorted(names))], f"reading {python}")
    return json.loads(out.strip().splitlines()[-1])


def _version_key(text):
    """A comparable form of a version: packaging's (pip carries it), else its numbers."""
    try:
        from pip._vendor.packaging.version import Version

        return Version(text)
    except Exception:
        return tuple(int(n) for n in re.findall(r"\d+", text.split("+")[0])[:4])


def _check_kept(kept, record, live):
    """Refuse unless the node still has what the wheelhouse was made to take from it (`live`:
    {name: version or None}): each kept package at a version the kit works with, numpy of the
    same major version."""
    wrong = []
    for name, want in sorted(kept.items()):
        have = live.get(name)
        if have is None:
            wrong.append(f"{name} is missing (the freeze had {want.get('version')})")
        elif "major" in want:
            if have.split(".")[0] != want["major"]:
                wrong.append(f"{name} is {have} (the freeze had {want['version']})")
        elif "exact" in want:
            if _version_key(have) != _version_key(want["exact"]):
                wrong.append(f"{name} is {have} (the kit works with {want['exact']} only)")
        elif not _version_key(want["min"]) <= _version_key(have) <= _version_key(want["max"]):
            wrong.append(f"{name} is {have} (the kit works with {want['min']} to {want['max']})")
    if wrong:
        shown = "; ".join(wrong[:4]) + (f"; and {len(wrong) - 4} more" if len(wrong) > 4 else "")
        raise NodeError(
            f"{record}: made for another node: here {shown}. Make the bundle or wheelhouse"
            " from this node's freeze (node.py freeze)"
        )


def make_venv(venv, wheelhouse, wheels=(), kit=None, python=None, echo=print):
    """The kit's venv on this (the node's) Python; see the module's doc. Returns the venv's
    python."""
    python = python or sys.executable
    venv, wheelhouse = Path(venv).absolute(), Path(wheelhouse).absolute()
    requirements = wheelhouse / "requirements.txt"
    if not requirements.is_file():
        raise NodeError(f"{wheelhouse}: no requirements.txt; expected a kit wheelhouse")
    record = wheelhouse / "wheelhouse.json"
    made_for, kept = _read_record(record)
    node = _describe(python, kept)
    if made_for != node["python"]:
        raise NodeError(
            f"{record}: python is {made_for!r}; this node's Python is {node['python']}: make"
            " the wheelhouse from this node's freeze"
        )
    _check_kept(kept, record, node["versions"])
    pips = sorted(wheelhouse.glob("pip-*.whl"))
    if not pips:
        raise NodeError(f"{wheelhouse}: no pip wheel; expected one (pekit wheelhouse adds it)")
    _clear(venv)
    echo(f"node venv: {venv} on {python}")
    # The mark first: a venv killed half made is still the kit's to replace.
    venv.mkdir(parents=True, exist_ok=True)
    (venv / VENV_MARK).write_text("made by pekit node.py venv\n", encoding="utf-8")
    _run([python, "-m", "venv", "--without-pip", str(venv)], "making the venv")
    vpy = str(_venv_python(venv))
    offline = ["--no-index", "--no-deps", "--disable-pip-version-check", "--quiet"]
    # pip runs from its own wheel to install itself: no ensurepip, no network.
    _run([vpy, str(pips[-1] / "pip"), "install", *offline, str(pips[-1])], "installing pip")
    pip = [vpy, "-m", "pip", "install", *offline, "--find-links", str(wheelhouse)]
    echo(f"node venv: installing the wheelhouse ({requirements})")
    _run([*pip, "-r", str(requirements), *map(str, wheels)], "installing the wheelhouse")
    if kit:
        echo(f"node venv: installing the kit from {kit}")
        _run([*pip, "--no-build-isolation", "-e", str(kit)], "installing the kit")
    # Last, so that pip above never saw (nor tried to replace) the node's packages.
    dirs = [d for d in node["site_dirs"] if os.path.realpath(d) != os.path.realpath(venv)]
    lines = ["# The node's packages, after the venv's own (pekit node.py)."]
    lines += [f"import site; site.addsitedir({d!r})" for d in dirs]
    (_venv_site(venv) / PTH_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vpy


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="node.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser("freeze", help="print this Python's freeze (JSON) for pekit wheelhouse --node")
    v = sub.add_parser("venv", help="make the kit's venv on this Python, offline")
    v.add_argument("--venv", required=True, help="the venv's folder (made; a kit venv replaced)")
    v.add_argument("--wheelhouse", required=True, help="the wheelhouse made for this node")
    v.add_argument("--wheel", action="append", default=[], help="another wheel to install")
    v.add_argument("--kit", help="the kit's folder, installed editable")
    args = parser.parse_args(argv)
    if args.command == "freeze":
        print(json.dumps(freeze(), indent=1))
        return 0
    try:
        print(make_venv(args.venv, args.wheelhouse, args.wheel, args.kit))
    except NodeError as e:
        print(f"node.py venv: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

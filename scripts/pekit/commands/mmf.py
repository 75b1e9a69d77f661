"""`pekit mmf fetch|install|where`."""

from __future__ import annotations

from ..core import argtypes
from ..core.errors import PekitError
from ..setup.mmf_source.checkout import fetch, install, locate


def register(subparsers):
    p = subparsers.add_parser("mmf", help="fetch, install or locate MMF at the pinned commit")
    sub = p.add_subparsers(dest="mmf_action", metavar="ACTION")
    sub.required = True
    f = sub.add_parser(
        "fetch",
        help="clone MMF at the pinned commit into the kit's cache",
        description="Clone MMF at the pinned commit into the kit's cache (or --dest), from "
        "GitHub or from --from: another clone, a mirror's URL, or a git bundle (offline). The "
        "commit is verified before the checkout is put in place.",
    )
    f.add_argument(
        "--from",
        dest="source",
        metavar="URL|PATH",
        help="a clone (folder or URL) or a git bundle file holding the pinned commit "
        "(default: MMF's GitHub repository)",
    )
    f.add_argument("--dest", metavar="DIR", help="where to put the checkout (default: the cache)")
    f.add_argument(
        "--timeout",
        type=argtypes.optional(argtypes.number(0.0, argtypes.SECONDS_MAX, above=True)),
        metavar="SECONDS",
        help="give up after this long (default: no limit)",
    )
    f.set_defaults(func=_cmd_fetch)
    i = sub.add_parser("install", help="pip-install MMF (no deps) from MMF_SRC or the cache")
    i.add_argument("--src", metavar="DIR", help="the checkout (default: MMF_SRC, else the cache)")
    i.set_defaults(func=_cmd_install)
    w = sub.add_parser("where", help="print where MMF is found, or why not (exit 1)")
    w.set_defaults(func=_cmd_where)


def _cmd_fetch(args):
    path, fetched = fetch(args.source, args.dest, timeout=args.timeout)
    print(f"{'fetched' if fetched else 'already present'}: {path}")
    return 0


def _cmd_install(args):
    print(f"installed MMF from {install(args.src)}")
    return 0


def _cmd_where(args):
    kind, where = locate()
    if kind is None:
        raise PekitError(where)
    print(f"{kind}: {where}")
    return 0

"""`pekit assets list|fetch`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..assets.download import fetch, state
from ..assets.specs import load_facts
from ..core import argtypes
from ..core.bars import progress
from ..data.paths import mmf_cache_dir, mmf_data_dir


class _Bar:
    """One byte progress bar per file, started once the file's size is known."""

    def __init__(self, stream):
        self.stream = stream
        self.bar = None

    def start(self, label, done, total):
        self.bar = progress(total, label, unit="B", initial=done, stream=self.stream)

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def asset_name(text):
    """An asset's name, a pattern of names (vilbert.*) or a use (hmd, mmh), in ASCII."""
    if not re.fullmatch(r"[A-Za-z0-9_.*?\[\]-]{1,100}", text, re.ASCII):
        raise argparse.ArgumentTypeError(
            f"expected an asset's name, a pattern or a use (`pekit assets list`), "
            f"got {argtypes.shown(text)}"
        )
    return text


def register(subparsers):
    p = subparsers.add_parser(
        "assets",
        help="download and verify what an offline run needs (checkpoints, features, BERT)",
        description="Exit codes: 0 done, 1 refused or failed (a checksum mismatch names the "
        "asset and both hashes), 2 usage error.",
    )
    sub = p.add_subparsers(dest="assets_action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="list the assets and whether they are present")
    _common(ls)
    ls.set_defaults(func=_cmd_list)
    f = sub.add_parser("fetch", help="download, verify, unpack and mark the assets")
    _common(f)
    f.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        type=asset_name,
        help="assets (or patterns, or a use: hmd, mmh); default: all",
    )
    f.add_argument(
        "--transformers-cache",
        metavar="DIR",
        type=argtypes.optional(argtypes.path),
        help="transformers' cache (default: $TRANSFORMERS_CACHE, else $HF_HOME/transformers)",
    )
    f.add_argument(
        "--allow-unverified",
        action="store_true",
        help="also fetch files with no recorded sha256, and print their hashes",
    )
    f.add_argument(
        "--mirror",
        metavar="URL",
        type=argtypes.optional(argtypes.url),
        help="download every file as URL/<file name> instead (a local mirror)",
    )
    f.add_argument(
        "--keep-archives", action="store_true", help="keep the .tar.gz files after unpacking"
    )
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_cmd_fetch)


def _common(p):
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        type=argtypes.optional(argtypes.path),
        help="MMF's data dir (default: $MMF_DATA_DIR, else <cache dir>/data)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=argtypes.optional(argtypes.path),
        help="MMF's cache dir (default: $MMF_CACHE_DIR, else ~/.cache/torch/mmf)",
    )


def _cmd_list(args):
    facts = load_facts()
    cache_dir = Path(args.cache_dir) if args.cache_dir else mmf_cache_dir()
    data_dir = mmf_data_dir(args.data_dir, cache_dir)
    for asset in facts.assets:
        verified = "" if asset.verified else " (no recorded sha256)"
        print(f"{state(asset, data_dir):13} {asset.name:32} {asset.dest}{verified}")
    return 0


def _cmd_fetch(args):
    names = argtypes.no_repeats(args.names, "NAME")
    progress = None if args.quiet else _Bar(sys.stderr)
    results = fetch(
        names,
        args.data_dir,
        args.cache_dir,
        args.transformers_cache,
        allow_unverified=args.allow_unverified,
        mirror=args.mirror,
        keep_archives=args.keep_archives,
        progress=progress,
    )
    for r in results:
        print(f"{r['status']:18} {r['name']:32} {r['dest']}")
        for file_name, info in sorted(r.get("files", {}).items()):
            if not info.get("verified"):
                print(f"  unverified: {file_name} sha256 {info.get('sha256')}")
    skipped = [r["name"] for r in results if r["status"] == "skipped-unverified"]
    if skipped:
        print(
            f"skipped (no recorded sha256; name them with --allow-unverified to fetch): "
            f"{', '.join(skipped)}"
        )
    return 0

"""`pekit bench`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..bench import options
from ..bench.runner import BenchRequest, plan, run


def register(subparsers):
    p = subparsers.add_parser(
        "bench",
        help="training, loading and extraction throughput (paper vs fast settings)",
        description=options.__doc__.splitlines()[0],
    )
    options.add_arguments(p)
    p.set_defaults(func=_main)


def _echo(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _main(args):
    from ..core.atomic import output_file
    from ..core.errors import UsageError

    measured = plan(BenchRequest.from_args(args))  # every option checked before anything is made
    if Path(args.out).name in ("", ".", ".."):
        raise UsageError(f"--out {args.out}: expected a file's path (like results/bench.json)")
    for path in (Path(args.out), Path(args.out).with_suffix(".md")):
        output_file(path)  # refused now, not after minutes of measuring
    result = run(measured, args.out, echo=_echo)
    out, md, text = options.write_outputs(result, args.out)
    print(text)
    _echo(f"wrote {out} and {md}")
    return 0

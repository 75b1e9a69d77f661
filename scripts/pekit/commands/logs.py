"""`pekit logs`."""

from __future__ import annotations

from ..core import jsonfile
from ..run import mmf_log


def register(subparsers):
    lg = subparsers.add_parser(
        "logs",
        help="parse MMF training logs into JSON",
        description="Print one JSON object per MMF log: validation and train curves, best "
        "validation metrics, parameter counts, updates per second, peak memory, wall time.",
    )
    lg.add_argument("logs", nargs="+", metavar="LOG", help="MMF log file (stdout or train.log)")
    lg.add_argument("--compact", action="store_true", help="one line per log (JSON Lines)")
    lg.set_defaults(func=_main)


def _main(args):
    for path in args.logs:
        parsed = mmf_log.parse_file(path)  # a log it cannot read: one line naming it
        print(jsonfile.dumps(parsed, indent=None if args.compact else 2))
    return 0

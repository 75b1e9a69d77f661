"""`pekit reproduce`: the run matrix, then the report on its results folder (also the end of
`pekit study`)."""

from __future__ import annotations

from ..report import options as report_options
from ..run import options as run_options


def matrix(args):
    """The RunSpecs `args` ask for, the report's options checked first: a bad --paper-log is
    refused before hours of training."""
    report_options.parse_paper_log_args(args.paper_log)
    return run_options.specs_from_args(args)


def run_then_report(specs, args, echo):
    """Run `specs` (finished ones skipped), then write the report with the options in `args`;
    returns 0 when every run finished, else 1 (the report is written either way)."""
    code = run_options.run_specs(specs, args)
    report_options.write_report_from_args(args, echo)
    return code

"""The report: the paper's tables with our numbers beside them, and curves instead of log lines.

    tables.py     Tables I and II and the test-split table, from the finished runs
    plots.py      validation AUROC and losses against updates
    markdown.py   report.md
    build.py      the report as data (report.json), and writing it with the plots
    study_section.py  the study's variants against their trained parameters, the Pareto front
    options.py    the report's options (`pekit report`, `reproduce`, `study`)
    stats.py      AUROC, bootstrap intervals, DeLong's test and the sentence that states a comparison
    predictions.py  reading the runs' per-example predictions and the memes' texts
    evidence.py   intervals, paired comparisons and disagreements from those predictions

Reads every run folder under <results>/runs (pekit.run; MMF's logs through pekit.run.mmf_log), keeps the finished ones, and writes
<results>/report.md, <results>/report.json and PNG plots under <results>/plots/.
"""

from .build import build_report, write_report
from .markdown import render_markdown
from .options import add_report_options, parse_paper_log_args, write_report_from_args
from .plots import plot_specs
from .tables import DEFAULT_TOLERANCE, collect_runs, paper_reference, table2_reference

__all__ = [
    "DEFAULT_TOLERANCE",
    "add_report_options",
    "build_report",
    "collect_runs",
    "paper_reference",
    "parse_paper_log_args",
    "plot_specs",
    "render_markdown",
    "table2_reference",
    "write_report",
    "write_report_from_args",
]

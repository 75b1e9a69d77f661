"""`pekit demo`: the whole pipeline on CPU in minutes, kept, so every later step can be tried.

Synthetic Hateful Memes and MMHS150K (pekit.workflows.synthetic, pekit.workflows.synthetic_mmh) with random-init
full-size VisualBERT, trained with the `smoke` settings (4 updates) through the same runner as
`pekit run`: HMD FC, PE and Full-FT, MMH FC and PE, each scored on its test splits; then the
report with its plots and PE's adapters exported. Everything stays in one folder
(results/demo by default): run records, MMF logs, checkpoints, report.md, plots/, adapters/, and
the synthetic data under data/. Offline: nothing is downloaded. Run again, it reuses what is
finished (the runner's rule), so an interrupted demo resumes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..core import oneline, ownership
from ..core.errors import PekitError
from ..facts.settings import SMOKE
from ..facts.vocabulary import DATASETS, FC, HMD, MMH, PAPER_MODEL, PAPER_MODES, PE

MODEL = PAPER_MODEL
RUNS = {HMD: PAPER_MODES, MMH: (FC, PE)}
SETTINGS = SMOKE.name
WORLD = "data"  # under the demo folder
MARK = ".pekit-demo"  # in WORLD: the demo made it (and may remove it)
ADAPTERS = f"adapters/{HMD}-{PE}"
PE_RUN = f"runs/{HMD}/{MODEL}/{PE}/seed1"  # the run whose adapters the demo exports
NEXT_STEPS = """next, on the demo's results ({results}):
  pekit status --results {results}
  pekit report --results {results}
  pekit logs {results}/{run}/train.log
  pekit adapters export {results}/{run} --out {results}/{adapters}
  pekit adapters load {results}/{adapters} --base BASE.ckpt --out OUT.ckpt"""


class Demo:
    """Where the demo's worlds and runs are, and the `pekit run` arguments of each dataset."""

    def __init__(self, results):
        self.results = Path(results).resolve()
        self.root = self.results / WORLD

    def check(self):
        """Refuse a folder at the world's place that the demo did not make (no mark); returns
        whether the demo's own is there."""
        return ownership.check_marked(
            self.root, MARK, f"not the demo's data (no {MARK})", "give another --results"
        )

    def worlds(self):
        """Build the synthetic HMD world and MMH data (once: a finished world is kept)."""
        from . import synthetic, synthetic_mmh

        hmd, mmh = self.root / HMD, self.root / MMH
        done = self.root / ".built"
        if not (ownership.is_marked(self.root, MARK) and done.is_file()):
            # An interrupted build is redone; a folder the demo did not make (no mark) is
            # refused and left alone.
            if self.check():
                ownership.remove_marked(self.root, MARK)
            ownership.make_marked(self.root, MARK, "made by pekit demo\n")
            synthetic.build_world(hmd, unlabelled=("test",))
            synthetic_mmh.build_data(mmh)
            done.write_text("")
        return synthetic.World(root=hmd, vocab_dir=hmd / "vocab"), mmh / "mmf_data"

    def run_argv(self, dataset, modes, seeds="1"):
        """`pekit run` arguments of the demo's runs of `dataset` in `modes` (comma-separated)."""
        from ..data.paths import plugin_dir
        from . import synthetic

        world, mmh_data = self.worlds()
        if dataset == HMD:
            config, data_dir = synthetic.CONFIGS[MODEL], world.data_dir
            offline = synthetic.runner_overrides(world, MODEL)
        else:
            config = plugin_dir() / DATASETS[MMH].mmf_defaults_config(MODEL)
            data_dir = mmh_data
            offline = synthetic.runner_overrides(world, MODEL, dataset=DATASETS[MMH].mmf_name)
        argv = ["--dataset", dataset, "--models", MODEL, "--modes", modes, "--seeds", seeds]
        argv += ["--settings", SETTINGS, "--results", str(self.results)]
        argv += ["--data-dir", str(data_dir), "--config", str(config)]
        for item in offline:
            argv += ["--override", item]
        return argv

    def environment(self):
        """MMF offline, every cache inside the demo's world (set for the mmf_run processes)."""
        from . import synthetic

        world, _ = self.worlds()
        return synthetic.run_env(world, base={})


def _echo(text):
    print(text, file=sys.stderr, flush=True)


def run_one(argv):
    """`pekit run ARGV`, as the command runs it: its exit code, an error said in one line."""
    import argparse

    from ..run import options

    parser = argparse.ArgumentParser(prog="pekit run")
    options.add_matrix_arguments(parser)
    args = parser.parse_args(argv)
    return oneline.call("run", lambda a: options.run_specs(options.specs_from_args(a), a), args)


def demo(results):
    """Build the worlds, run the demo's runs, write the report and export PE's adapters."""
    from .. import adapters, report

    demo = Demo(results)
    demo.check()  # before any word: a refusal is its one line
    _echo(f"pekit demo: building the synthetic datasets in {demo.root}")
    os.environ.update(demo.environment())
    code = 0
    for dataset, modes in RUNS.items():
        code = max(code, run_one(demo.run_argv(dataset, ",".join(modes))))
    if code:
        raise PekitError(f"a demo run did not finish; see the logs under {demo.results}/runs")
    paths, _ = report.write_report(demo.results)
    run = demo.results / PE_RUN
    out = demo.results / ADAPTERS
    info = adapters.export(run, out_dir=out)
    _echo(f"wrote {', '.join(str(p) for p in paths)}; adapters in {info['dir']}")
    print(NEXT_STEPS.format(results=demo.results, run=PE_RUN, adapters=ADAPTERS))
    return 0

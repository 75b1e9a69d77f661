"""`pekit bench`: measure training, loading and extraction throughput with the paper and fast settings.

Defaults follow the device: on a GPU the paper's batch of 16 and enough updates for stable
figures; on CPU a scaled-down run (batch 2, 1 update, a small store) that finishes in minutes
and says so in its output.
"""

from __future__ import annotations

from pathlib import Path

from ..core import argtypes
from ..facts.vocabulary import FC, PAPER_MODES
from .runner import DEFAULTS, SECTIONS

PAPER_MODE_LIST = ",".join(PAPER_MODES)

OUT = "results/bench/bench.json"


def add_arguments(p):
    """`pekit bench`'s options, on the parser `p`."""
    p.add_argument("--models", default="", help="comma-separated (default: both models)")
    p.add_argument("--modes", default="", help=f"comma-separated (default: {PAPER_MODE_LIST})")
    p.add_argument(
        "--pipeline-models",
        default="",
        help="models measured with loading and updates together (default: the "
        "paper's runs' VisualBERT)",
    )
    p.add_argument(
        "--pipeline-modes",
        default=None,
        help=f"modes of the pipeline section (default: {PAPER_MODE_LIST} on a GPU, {FC} on CPU)",
    )
    p.add_argument("--datasets", default="", help="stores for the pipeline section (default: both)")
    p.add_argument("--only", default="", help=f"sections (default: all): {','.join(SECTIONS)}")
    p.add_argument(
        "--device",
        type=argtypes.optional(argtypes.torch_device),
        help="torch device: cpu, cuda, cuda:N or mps (default: cuda if available)",
    )
    for name, (gpu, cpu) in DEFAULTS.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=argtypes.optional(argtypes.whole(0 if name == "warmup" else 1)),
            default=None,
            help=f"default {gpu} on a GPU, {cpu} on CPU",
        )
    p.add_argument(
        "--features",
        type=argtypes.optional(argtypes.path),
        help="an existing .npy features folder for the loading section "
        "(its <folder>.lmdb too, when there); default: a synthetic store",
    )
    p.add_argument(
        "--frcnn-dir",
        type=argtypes.optional(argtypes.path),
        help="FRCNN config.yaml (+ pytorch_model.bin); default: the "
        "asset folder in the MMF data dir",
    )
    p.add_argument(
        "--data-dir",
        type=argtypes.optional(argtypes.path),
        help="MMF data dir (for the FRCNN asset)",
    )
    p.add_argument(
        "--mmf-src",
        type=argtypes.optional(argtypes.path),
        help="MMF checkout with tools/ (for the FRCNN extractor)",
    )
    p.add_argument(
        "--workdir",
        type=argtypes.optional(argtypes.path),
        help="scratch folder for stores and images (default: a temporary one beside --out, on "
        "a disk rather than /tmp, which may be in memory)",
    )
    p.add_argument(
        "--out",
        default=OUT,
        type=argtypes.optional(argtypes.path, OUT),
        help="JSON result; the Markdown table goes beside it (.md)",
    )


def write_outputs(result, out):
    from ..core.atomic import write_json, write_text
    from . import summary

    out = Path(out)
    md = out.with_suffix(".md")
    write_json(out, result)
    text = summary.markdown(result)
    write_text(md, text)
    return out, md, text

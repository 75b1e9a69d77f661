"""`pekit bench`: training, data-loading and feature-extraction throughput on this machine.

A benchmark, not a test: it prints figures beside the paper's V100 runs and never judges them.
Modules: `batch` (MMF batches at the paper's shapes), `train` (training updates of the full-size
models), `loader` (feature stores read by MMF's readers through a DataLoader), `pipeline`
(loader and updates together, per dataset), `extract` (MMF's FRCNN extractor), `report` (JSON
and the Markdown table), `cli` (the command). Everything but `cli` imports torch and MMF.
"""

from .cli import register

__all__ = ["register"]

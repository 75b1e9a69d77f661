"""`pekit bench`: training, data-loading and feature-extraction throughput on this machine.

A benchmark, not a test: it prints figures beside the paper's V100 runs and never judges them.
Modules: `batch` (MMF batches at the paper's shapes), `train` (training updates of the full-size
models), `loader` (feature stores read by MMF's readers through a DataLoader), `pipeline`
(loader and updates together, per dataset), `extract` (MMF's FRCNN extractor), `summary` (JSON
and the Markdown table), `options` (the command's options; pekit.commands.bench is the command).
Everything but `options` imports torch and MMF.
"""

"""Run the experiment matrix with MMF: one `mmf_run` per (dataset, model, mode, seed).

    spec.py      RunSpec: one point of the matrix and its folder; the matrix
    command.py   the exact mmf_run command lines for training and testing a run
    record.py    RunRecord: what ran (run.json), the run's state, provenance
    execute.py   running MMF: GPUs, subprocess, signals, resume, test splits
    mmf_log.py   MMF's training logs parsed into curves, best metrics, speed, memory
    options.py   the matrix from the command line (`pekit run`, `reproduce`, `study`)

Each run lives in <results>/runs/<dataset>/<model>/<mode>/seed<seed>/:
  run.json        the run record: what ran (versions, command, config, status, times, tests)
  train.log       MMF's output (stdout and stderr) for every attempt, appended
  mmf/            MMF's save dir (config.yaml, best.ckpt, current.ckpt, models/, logs/)
  test/<split>/   the test-split evaluation of the best checkpoint, and test/<split>.log
A finished run is skipped; an interrupted or failed one is resumed from its last checkpoint
(`checkpoint.resume=True`); only finished runs are reported.
"""

"""Running MMF: the subprocess and its signals, resuming, test splits, and MMF's per-example
predictions of the best checkpoint (run/predictions.py); the devices it sees: run/devices.py."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess

from ..core import jsonfile
from ..core.errors import PekitError, UsageError
from ..data.paths import data_dir_line, dataset_dir
from ..facts.vocabulary import DATASETS
from . import command, identity, preflight
from . import predictions as preds
from .devices import device_kind, visible_devices
from .record import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    NEW,
    RUNNING,
    RunRecord,
    check_folder,
    config_record,
    load,
    now,
    provenance,
    state,
)
from .spec import LOG, SAVE_DIR


class _Terminated(Exception):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


def _execute(cmd, log_path, header, devices, watch=None):
    """Run `cmd` with its output appended to `log_path`; returns its exit status. Interrupted,
    it stops MMF too (SIGINT, then SIGKILL), so the next call can resume cleanly. `watch`: the
    run's key, to show a training's progress on stderr meanwhile (run/progress.py)."""
    from . import progress

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(
            f"# pekit: {header} {now()}: CUDA_VISIBLE_DEVICES={devices} {command.quoted(cmd)}\n"
        )
        log.flush()
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=devices)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        watcher = progress.watch(log_path, watch, progress.max_updates(cmd)) if watch else None
        try:
            return proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        finally:
            if watcher is not None:
                watcher.stop()


def run(spec, force=False, test=True, probe=True, echo=None):
    """Train `spec` unless it finished, then score its test splits; returns its RunRecord."""
    devices = visible_devices(spec.gpus, nodes=spec.nodes)
    check_folder(spec.dir, force=force)  # a folder not the kit's is refused, left alone
    current = state(spec)
    if current == RUNNING:
        raise PekitError(f"{spec.key} is being run by process {load(spec.dir).pid} ({spec.dir})")
    record = load(spec.dir) if current != NEW else None
    if force and record is not None:
        shutil.rmtree(str(spec.dir))
        record, current = None, NEW
    wanted = identity.identity(spec)
    if record is not None:
        diff = identity.differences(identity.recorded(record), wanted)
        if diff:
            raise UsageError(
                f"{spec.key}: {spec.dir} holds a run trained otherwise ({'; '.join(diff)}); "
                f"{preflight.REUSE_FIX}"
            )
    spec.dir.mkdir(parents=True, exist_ok=True)
    if current != FINISHED:
        resume = current in (FAILED, INTERRUPTED)
        cmd = command.train(spec, resume=resume)
        if echo:
            echo(f"{spec.key}: {'resuming' if resume else 'training'} ({spec.dir})")
        if record is None:
            record = RunRecord(run=spec.describe())
        record.identity = wanted
        for key, value in provenance(probe=probe, devices=devices).items():
            setattr(record, key, value)
        attempt = {
            "start": now(),
            "resume": resume,
            "command": cmd,
            "cuda_visible_devices": devices,
            # MMF's processes over every node (its world size), and what they trained on.
            "processes": spec.world_size,
            "nodes": spec.nodes,
            "device": device_kind(devices),
        }
        record.attempts.append(attempt)
        record.status, record.command = RUNNING, cmd
        record.start = record.start or attempt["start"]
        record.end = record.exit_status = None
        record.pid, record.host = os.getpid(), socket.gethostname()
        record.log, record.save_dir = LOG, SAVE_DIR
        record.save(spec.dir)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            code = _execute(cmd, spec.dir / LOG, "train", devices, watch=spec.key)
        except (KeyboardInterrupt, _Terminated):
            attempt.update(end=now(), exit_status=None)
            record.status, record.end = INTERRUPTED, attempt["end"]
            record.save(spec.dir)
            raise KeyboardInterrupt() from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        attempt.update(end=now(), exit_status=code)
        record.status = FINISHED if code == 0 else (INTERRUPTED if code < 0 else FAILED)
        record.end, record.exit_status = attempt["end"], code
        record.config, record.resolved_config = config_record(spec)
        record.save(spec.dir)
        if record.status != FINISHED:
            return record
    if test:
        run_tests(spec, record, echo=echo)
        run_predictions(spec, record, echo=echo)
    return record


def _unlabelled(spec, split):
    """True when the split's annotations are here and carry no labels (nothing to score)."""
    dataset = DATASETS[spec.dataset]
    if split not in dataset.unlabelled_splits:
        return False
    folder = dataset_dir(dataset.mmf_name, spec.data_dir) / "annotations"
    try:
        with open(folder / f"{split}.jsonl", encoding="utf-8") as f:
            first = f.readline(1 << 20)
        row = jsonfile.loads(first) if first.strip() else None
    except (OSError, ValueError):  # not UTF-8 or not JSON: MMF's test run says what is wrong
        return False
    return isinstance(row, dict) and "label" not in row


def run_tests(spec, record, echo=None):
    """Score the best checkpoint on the dataset's test splits (once per split)."""
    from .mmf_log import parse_file

    for split in DATASETS[spec.dataset].test_splits:
        if record.test.get(split, {}).get("status") in (FINISHED, "skipped"):
            continue
        if _unlabelled(spec, split):
            record.test[split] = {"status": "skipped", "reason": "annotations carry no labels"}
            record.save(spec.dir)
            continue
        if echo:
            echo(f"{spec.key}: testing on {split}")
        cmd = command.test(spec, split)
        log = spec.dir / "test" / f"{split}.log"
        result = {
            "start": now(),
            "command": cmd,
            "log": f"test/{split}.log",
            "checkpoint": f"{SAVE_DIR}/best.ckpt",
        }
        code = _execute(cmd, log, f"test {split}", _first_device(spec))
        result.update(end=now(), exit_status=code, status=FINISHED if code == 0 else FAILED)
        if code == 0:
            parsed = parse_file(log)
            result["metrics"] = parsed["test"]
            # The update MMF restored: the best checkpoint's, as the training log names it.
            loaded = parsed.get("loaded_updates") or [None]
            result["checkpoint_update"] = loaded[-1]
        record.test[split] = result
        record.save(spec.dir)
    return record.test


def run_predictions(spec, record, echo=None):
    """MMF's per-example predictions of the best checkpoint on the validation split and each
    test split, once per split (a finished split whose file is there is not redone). A failed
    process fails its splits' predictions only, never the finished training."""
    dataset = DATASETS[spec.dataset]
    done = [s for s, p in record.predictions.items() if preds.finished(spec.dir, p)]
    for process in preds.plan(dataset.val_split, dataset.test_splits, done):
        if echo:
            echo(f"{spec.key}: predictions on {', '.join(s for s, _ in process.splits)}")
        record.predictions.update(_predict(spec, process))
        record.save(spec.dir)
        failed = [s for s, _ in process.splits if record.predictions[s]["status"] != FINISHED]
        if echo and failed:
            reason = record.predictions[failed[0]].get("reason")
            echo(
                f"{spec.key}: predictions failed on {', '.join(failed)}: {reason}; "
                f"see {spec.dir / process.log}"
            )
    return record.predictions


def _predict(spec, process):
    """Run one predicting mmf_run and publish each of its splits; returns {split: result}."""
    save_dir = spec.dir / process.save_dir
    report = save_dir / preds.REPORT
    # A killed earlier attempt's files would be taken for this one's.
    shutil.rmtree(str(report), ignore_errors=True)
    for split, _ in process.splits:
        preds.unpublish(spec.dir, split)
    cmd = command.predict(spec, save_dir, report, bool(process.val), process.test)
    log = spec.dir / process.log
    offset = log.stat().st_size if log.is_file() else 0
    start = now()
    code = _execute(cmd, log, f"predict {process.name}", _first_device(spec))
    common = {
        "start": start,
        "end": now(),
        "command": cmd,
        "exit_status": code,
        "log": process.log,
        "checkpoint": f"{SAVE_DIR}/best.ckpt",
        "checkpoint_update": _loaded_update(log, offset) if code == 0 else None,
    }
    results = {}
    for split, dataset_type in process.splits:
        published = _publish(spec, split, dataset_type, report, code)
        results[split] = dict(published, dataset_type=dataset_type, **common)
    shutil.rmtree(str(report), ignore_errors=True)
    return results


def _first_device(spec):
    """The device of a one-process scoring or predicting run (command.test, command.predict):
    the first of the run's GPUs, on this node."""
    return visible_devices(spec.gpus, nodes=spec.nodes).split(",")[0]


def _publish(spec, split, dataset_type, report, code):
    """The split's status and files: MMF's file for it checked, joined and published."""
    dataset = DATASETS[spec.dataset]
    failed = {"status": FAILED, **dict.fromkeys(("file", "submission", "examples", "labelled"))}
    if code != 0:
        return dict(failed, reason=f"mmf_run exited with status {code}")
    annotations = dataset_dir(dataset.mmf_name, spec.data_dir) / "annotations" / f"{split}.jsonl"
    try:
        found = preds.mmf_file(report, dataset.mmf_name, dataset_type)
        rows, labelled = preds.convert(found, annotations)
        submission = dataset.submission_layout and dataset_type == preds.TEST
        table, layout = preds.publish(spec.dir, split, rows, submission)
    except (PekitError, OSError) as e:  # a PredictionError, or no room left to publish
        return dict(failed, reason=" ".join(str(e).split()))
    return {
        "status": FINISHED,
        "file": table,
        "submission": layout,
        "examples": len(rows),
        "labelled": labelled,
        "reason": None,
    }


def _loaded_update(log, offset):
    """The update of the checkpoint MMF loaded, as this attempt's part of `log` (from byte
    `offset`) says; None when it says none."""
    from .mmf_log import parse_lines, read_lines

    try:
        with open(log, "rb") as raw:
            raw.seek(offset)
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
            loaded = parse_lines(read_lines(text))["loaded_updates"]
    except OSError:
        return None
    return loaded[-1] if loaded else None


def run_matrix(specs, force=False, test=True, echo=None):
    """Run every spec, going on past failures; returns {key: status}. What any run needs is
    checked first (run/preflight.py): a problem refuses the whole matrix, nothing written.
    First of all, a run folder the kit cannot prove its own refuses it in one line."""
    for spec in specs:
        check_folder(spec.dir, force=force)
    preflight.refuse(preflight.check(specs, force=force, test=test))
    if echo and specs:
        echo(f"data: {data_dir_line(specs[0].data_dir)}")
    statuses = {}
    for spec in specs:
        if state(spec) == FINISHED and not force and echo:
            echo(f"{spec.key}: finished already, not rerun ({spec.dir})")
        record = run(spec, force=force, test=test, echo=echo)
        statuses[spec.key] = record.status
        if record.status != FINISHED and echo:
            echo(
                f"{spec.key}: {record.status} (exit status {record.exit_status}); "
                f"see {spec.dir / LOG}"
            )
    return statuses

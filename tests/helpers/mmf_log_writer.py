"""Write training logs the way MMF a34bc2d does, for tests that must not need MMF.

Formats follow mmf/utils/logger.py (ColorfulFormatter on stdout: green "<time> | <logger>: "
prefix; plain "<time> | INFO | <logger> : " in save_dir/train.log; `log_progress` joins
"key: value" with ", "), mmf/trainers/callbacks/logistics.py (training and validation summaries),
mmf/utils/early_stopping.py (`best_update`, `best_iteration`, `best_val/...`), mmf/common/meter.py
(4-decimal values) and mmf/utils/timer.py ("1h 02m 03s 004ms").

Also runnable as a stand-in `mmf_run`: `python mmf_log_writer.py key=value ...` writes the log of a
run to stdout, MMF's config.yaml and checkpoints into env.save_dir, and exits with
$FAKE_MMF_EXIT (default 0) after $FAKE_MMF_STOP_AT updates if set ($FAKE_MMF_KILL: killed by
SIGKILL instead). Each call's arguments are
appended to $FAKE_MMF_CALLS (JSON lines), and the CUDA_VISIBLE_DEVICES it was given to
$FAKE_MMF_DEVICES.

With `evaluation.predict=true` it writes, as MMF's TestReporter does, one CSV `id,proba,label`
into env.report_dir per dataset type in run_type, for the ids of that type's annotations (read
under env.data_dir, where the `ready_data` helper lays them out), then exits with
$FAKE_MMF_PREDICT_EXIT (default 0). $FAKE_MMF_PREDICT_FAULT spoils the files: missing (an id
left out), extra (an id not annotated), duplicate (an id twice), proba (one not a number) or
none (no file); `test:missing` spoils only the test set's.
"""

import csv
import json
import math
import os
import random
import signal
import sys

GREEN, RESET = "\x1b[32m", "\x1b[0m"
CLOCK = "2021-06-01T10:00:00"


def timer(ms):
    """mmf.utils.timer.Timer.get_time_hhmmss for a gap in milliseconds."""
    s, ms = divmod(int(ms), 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    out = ""
    for value, fmt in zip([ms, s, m, h], ["%03dms", "%02ds", "%02dm", "%02dh"]):
        if value != 0:
            out = fmt % value + " " + out
    return out.strip() or "0ms"


def line(logger, message, colour=True):
    if colour:
        return f"{GREEN}{CLOCK} | {logger}: {RESET}{message}\n"
    return f"{CLOCK} | INFO | {logger} : {message}\n"


def summary(info):
    return ", ".join(f"{k}: {v}" for k, v in info.items())


def default_curve(update, max_updates):
    """A plausible validation curve: AUROC rises then flattens."""
    x = update / max_updates
    auc = 0.55 + 0.2 * (1 - math.exp(-4 * x))
    return {
        "loss": 0.69 - 0.1 * x,
        "accuracy": 0.5 + 0.15 * x,
        "binary_f1": 0.3 + 0.3 * x,
        "roc_auc": auc,
    }


def training_log(
    dataset="hateful_memes",
    max_updates=2000,
    log_interval=100,
    eval_interval=1000,
    curve=None,
    total_params=112044290,
    trained_params=593666,
    start=0,
    stop_at=None,
    colour=True,
    max_mem=1039.0,
    ups=5.0,
    finish=True,
    clock_ms=0,
):
    """The text of an MMF train_val run; `curve(update, max_updates)` gives validation metrics."""
    curve = curve or default_curve
    out = []
    log = out.append
    log(line("mmf_cli.run", "Torch version: 1.9.0+cu111", colour))
    log(line("mmf.trainers.mmf_trainer", "===== Model =====", colour))
    log(
        line(
            "mmf.utils.general",
            f"Total Parameters: {total_params}. Trained Parameters: {trained_params}",
            colour,
        )
    )
    log(line("mmf.trainers.core.training_loop", "Starting training...", colour))
    best_value, best_update = -math.inf, 0
    elapsed = clock_ms + 3000
    end = max_updates if stop_at is None else stop_at
    for update in range(start + 1, end + 1):
        elapsed += 1000.0 / ups
        if update % log_interval == 0:
            loss = 0.7 - 0.2 * update / max_updates
            info = {
                "progress": f"{update}/{max_updates}",
                f"train/{dataset}/cross_entropy": f"{loss:.4f}",
                f"train/{dataset}/cross_entropy/avg": f"{loss + 0.01:.4f}",
                "train/total_loss": f"{loss:.4f}",
                "train/total_loss/avg": f"{loss + 0.01:.4f}",
                "max mem": max_mem,
                "experiment": "run",
                "epoch": 1 + update // 532,
                "num_updates": update,
                "iterations": update,
                "max_updates": max_updates,
                "lr": f"{5e-5 * min(1, update / 2000):.5f}".rstrip("0"),
                "ups": f"{ups:.2f}",
                "time": timer(1000 * log_interval / ups),
                "time_since_start": timer(elapsed),
                "eta": timer((max_updates - update) * 1000 / ups),
            }
            log(line("mmf.trainers.callbacks.logistics", summary(info), colour))
        if update % eval_interval == 0:
            log(
                line(
                    "mmf.trainers.core.training_loop",
                    "Evaluation time. Running on full validation set...",
                    colour,
                )
            )
            m = curve(update, max_updates)
            if m["roc_auc"] > best_value:
                best_value, best_update = m["roc_auc"], update
            info = {
                "progress": f"{update}/{max_updates}",
                f"val/{dataset}/cross_entropy": f"{m['loss']:.4f}",
                "val/total_loss": f"{m['loss']:.4f}",
                f"val/{dataset}/accuracy": f"{m['accuracy']:.4f}",
                f"val/{dataset}/binary_f1": f"{m['binary_f1']:.4f}",
                f"val/{dataset}/roc_auc": f"{m['roc_auc']:.4f}",
                "num_updates": update,
                "epoch": 1 + update // 532,
                "iterations": update,
                "max_updates": max_updates,
                "val_time": "20s 337ms",
                "best_update": best_update,
                "best_iteration": best_update,
                f"best_val/{dataset}/roc_auc": f"{best_value:.6f}",
            }
            log(line("mmf.trainers.callbacks.logistics", summary(info), colour))
    if stop_at is None and finish:
        log(line("mmf.trainers.core.training_loop", "Stepping into final validation check", colour))
        log(line("mmf.trainers.mmf_trainer", "Starting inference on val set", colour))
        m = curve(best_update, max_updates)
        info = {
            "progress": f"{max_updates}/{max_updates}",
            f"val/{dataset}/cross_entropy": f"{m['loss']:.4f}",
            "val/total_loss": f"{m['loss']:.4f}",
            f"val/{dataset}/accuracy": f"{m['accuracy']:.4f}",
            f"val/{dataset}/binary_f1": f"{m['binary_f1']:.4f}",
            f"val/{dataset}/roc_auc": f"{m['roc_auc']:.4f}",
        }
        log(line("mmf.trainers.callbacks.logistics", summary(info), colour))
        log(
            line(
                "mmf.trainers.callbacks.logistics",
                f"Finished run in {timer(elapsed + 25000)}",
                colour,
            )
        )
    return "".join(out)


def mmf_test_log(dataset="hateful_memes", metrics=None, colour=True):
    """The text of an MMF run_type=test run (no max_updates, so no progress field)."""
    m = metrics or {"loss": 0.65, "accuracy": 0.61, "binary_f1": 0.52, "roc_auc": 0.70}
    info = {
        f"test/{dataset}/cross_entropy": f"{m['loss']:.4f}",
        "test/total_loss": f"{m['loss']:.4f}",
        f"test/{dataset}/accuracy": f"{m['accuracy']:.4f}",
        f"test/{dataset}/binary_f1": f"{m['binary_f1']:.4f}",
        f"test/{dataset}/roc_auc": f"{m['roc_auc']:.4f}",
    }
    return (
        line("mmf.trainers.mmf_trainer", "Starting inference on test set", colour)
        + line("mmf.trainers.callbacks.logistics", summary(info), colour)
        + line("mmf.trainers.callbacks.logistics", "Finished run in 31s 200ms", colour)
    )


def fake_proba(item_id):
    """A probability of class 1 for an example, at full float precision as MMF writes it."""
    return random.Random(int(item_id)).random()


def _annotation_ids(opts, dataset, dataset_type):
    """MMF's ids of the examples of `dataset_type`: int(id) of each line of its annotations."""
    default = f"{dataset}/defaults/annotations/{dataset_type}.jsonl"
    name = opts.get(f"dataset_config.{dataset}.annotations.{dataset_type}[0]", default)
    path = os.path.join(opts["env.data_dir"], "datasets", name)
    with open(path) as f:
        return [int(json.loads(row)["id"]) for row in f if row.strip()]


def _spoiled(rows, fault):
    if fault == "missing":
        return rows[:-1]
    if fault == "extra":
        return rows + [[max(r[0] for r in rows) + 1, 0.5, 0]]
    if fault == "duplicate":
        return rows + rows[:1]
    if fault == "proba":
        return [[rows[0][0], "0.5x", 0]] + rows[1:]
    return rows


def _fake_predict(opts):
    """MMF's prediction_loop with its TestReporter writing CSV files."""
    dataset = opts.get("datasets", "hateful_memes")
    report_dir = opts["env.report_dir"]
    os.makedirs(report_dir, exist_ok=True)
    fault = os.environ.get("FAKE_MMF_PREDICT_FAULT", "")
    log = line("mmf.utils.checkpoint", "Checkpoint loaded.")
    log += line("mmf.utils.checkpoint", f"Current num updates: {opts.get('training.max_updates')}")
    for dataset_type in [t for t in ("val", "test") if t in opts["run_type"]]:
        only, _, what = fault.rpartition(":")
        what = what if only in ("", dataset_type) else ""
        log += line("mmf.trainers.core.evaluation_loop", f"Starting {dataset_type} inference")
        rows = []
        for item_id in _annotation_ids(opts, dataset, dataset_type):
            proba = fake_proba(item_id)
            rows.append([item_id, proba, int(proba > 0.5)])
        if what == "none":
            continue
        path = os.path.join(report_dir, f"{dataset}_run_{dataset_type}_{CLOCK}.csv")
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "proba", "label"])
            writer.writerows(_spoiled(rows, what))
        log += line("mmf.common.test_reporter", f"Wrote predictions for {dataset} to {path}")
    sys.stdout.write(log)
    return int(os.environ.get("FAKE_MMF_PREDICT_EXIT", "0"))


def _fake_mmf_run(argv):
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    calls = os.environ.get("FAKE_MMF_CALLS")
    if calls:
        with open(calls, "a") as f:
            f.write(json.dumps(argv) + "\n")
    seen = os.environ.get("FAKE_MMF_DEVICES")
    if seen:
        with open(seen, "a") as f:
            f.write(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>") + "\n")
    save_dir = opts["env.save_dir"]
    os.makedirs(save_dir, exist_ok=True)
    with open(os.path.join(save_dir, "config.yaml"), "w") as f:
        f.write("".join(f"{k}: {v}\n" for k, v in sorted(opts.items())))
    dataset = opts.get("datasets", "hateful_memes")
    if opts.get("evaluation.predict") == "true":
        return _fake_predict(opts)
    if opts.get("run_type") == "test":
        sys.stdout.write(mmf_test_log(dataset))
        return 0
    max_updates = int(opts.get("training.max_updates", 2000))
    current = os.path.join(save_dir, "current.ckpt")
    start = 0
    if opts.get("checkpoint.resume") == "True" and os.path.exists(current):
        with open(current) as f:
            start = int(f.read())
    stop = os.environ.get("FAKE_MMF_STOP_AT")
    trained = (
        2004626 if opts.get(f"model_config.{opts.get('model')}.pe_adapter") == "True" else 593666
    )
    sys.stdout.write(
        training_log(
            dataset,
            max_updates=max_updates,
            log_interval=int(opts.get("training.log_interval", 100)),
            eval_interval=int(opts.get("training.evaluation_interval", 1000)),
            start=start,
            stop_at=int(stop) if stop else None,
            trained_params=trained,
        )
    )
    sys.stdout.flush()
    every = int(opts.get("training.checkpoint_interval", 1000))
    with open(current, "w") as f:
        f.write(str(int(stop) // every * every if stop else max_updates))
    with open(os.path.join(save_dir, "best.ckpt"), "w") as f:
        f.write("best")
    if os.environ.get("FAKE_MMF_KILL"):
        # Die the way a killed MMF does: by a signal, mid-run.
        os.kill(os.getpid(), signal.SIGKILL)
    return int(os.environ.get("FAKE_MMF_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(_fake_mmf_run(sys.argv[1:]))

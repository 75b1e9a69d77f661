"""The bench's result as JSON and as Markdown tables beside the paper's V100 runs."""

from __future__ import annotations

from ..facts import models
from ..facts.vocabulary import DATASETS, FC, HMD, MMH, MODELS, MODES, PAPER_MODEL, PE, label
from .train import FAST, PAPER

# The targets on a GPU: (description, ratio key, comparison, bound).
TARGETS = (
    ("fast / paper updates/s on MMH", "fast_over_paper_mmh", ">=", 5.0),
    ("fast / paper updates/s on HMD", "fast_over_paper_hmd", ">=", 2.0),
    ("MMH / HMD updates/s with fast", "mmh_over_hmd_fast", ">=", 0.9),
    ("PE / FC time per update with fast", "pe_over_fc_step_fast", "<=", 1.15),
)


def paper_runs():
    """The paper's V100 rows keyed by (dataset, mode)."""
    rows = models.load_paper_reference().get("v100_runs", {}).get("rows", [])
    return {(r["dataset"], r["mode"]): r for r in rows}


def _find(rows, **keys):
    for row in rows:
        if all(row.get(k) == v for k, v in keys.items()):
            return row
    return None


def _ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def ratios(result):
    """fast/paper per dataset, MMH/HMD with fast, PE/FC step time; means over the modes run."""
    out = {}
    pipe = result.get("pipeline", [])
    model = PAPER_MODEL if _find(pipe, model=PAPER_MODEL) else (pipe[0]["model"] if pipe else None)
    for dataset in DATASETS:
        per_mode = []
        for mode in MODES:
            fast = _find(pipe, model=model, dataset=dataset, mode=mode, settings=FAST)
            paper = _find(pipe, model=model, dataset=dataset, mode=mode, settings=PAPER)
            if fast and paper:
                per_mode.append(_ratio(fast["updates_per_s"], paper["updates_per_s"]))
        out[f"fast_over_paper_{dataset}"] = _mean(per_mode)
    per_mode = []
    for mode in MODES:
        mmh = _find(pipe, model=model, dataset=MMH, mode=mode, settings=FAST)
        hmd = _find(pipe, model=model, dataset=HMD, mode=mode, settings=FAST)
        if mmh and hmd:
            per_mode.append(_ratio(mmh["updates_per_s"], hmd["updates_per_s"]))
    out["mmh_over_hmd_fast"] = _mean(per_mode)
    steps = result.get("train", [])
    for settings in (PAPER, FAST):
        per_model = []
        for m in sorted({r["model"] for r in steps}):
            pe = _find(steps, model=m, mode=PE, settings=settings)
            fc = _find(steps, model=m, mode=FC, settings=settings)
            if pe and fc:
                per_model.append(_ratio(pe["seconds_per_update"], fc["seconds_per_update"]))
        out[f"pe_over_fc_step_{settings}"] = _mean(per_model)
    return out


def _f(value, digits=2):
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def _mb(value):
    return "–" if value is None else f"{value:,.0f}"


def markdown(result):
    dev = result["device"]
    p = result["params"]
    lines = [
        f"## pekit bench on {dev['name']} ({dev['type']})",
        "",
        f"torch {dev.get('torch')}, CUDA {dev.get('cuda')}, {dev.get('cpu_count')} CPU cores. "
        f"Batch {p['batch_size']}, sequence length {p['seq_len']}, {p['num_boxes']} boxes x "
        f"{p['feature_dim']}; {p['updates']} timed updates after {p['warmup']} warm-up ones "
        f"({p.get('pipeline_updates', p['updates'])} with loading, after the warm-up and the "
        "batches the loader workers prefetch). "
        f"Settings: paper = {result['settings'][PAPER]['note']}; fast = "
        f"{result['settings'][FAST]['note']}.",
    ]
    if p.get("scaled_down"):
        lines += ["", f"**Scaled down for this device:** {p['scaled_down']}"]
    lines += _pipeline_table(result) + _train_table(result) + _loader_table(result)
    lines += _extract_table(result) + targets_table(result)
    return "\n".join(lines) + "\n"


def _pipeline_table(result):
    pipe = result.get("pipeline", [])
    if not pipe:
        return []
    anchors = paper_runs()
    memory = result.get("memory_kind", "peak memory")
    lines = [
        "",
        "### Training runs: loading and updates together (updates/s)",
        "",
        "| run | model | paper, V100 | paper MB, V100 | paper settings, here | fast, here "
        f"| fast / paper | {memory} MB paper / fast, here |",
        "|---|---|---|---|---|---|---|---|",
    ]
    seen = []
    for row in pipe:
        key = (row["dataset"], row["model"], row["mode"])
        if key not in seen:
            seen.append(key)
    for dataset, model, mode in seen:
        paper = _find(pipe, dataset=dataset, model=model, mode=mode, settings=PAPER)
        fast = _find(pipe, dataset=dataset, model=model, mode=mode, settings=FAST)
        anchor = anchors.get((dataset, mode)) if model == PAPER_MODEL else None
        steps = result.get("train", [])
        mem_p = _find(steps, model=model, mode=mode, settings=PAPER)
        mem_f = _find(steps, model=model, mode=mode, settings=FAST)
        ups_a = None
        if anchor:
            ups_a = ("~" if anchor.get("approx") else "") + _f(anchor["updates_per_s"])
        lines.append(
            f"| {label(dataset)} {label(mode)} | {label(model)} "
            f"| {ups_a or '–'} | {_mb(anchor['peak_memory_mb']) if anchor else '–'} "
            f"| {_f(paper and paper['updates_per_s'])} | {_f(fast and fast['updates_per_s'])} "
            f"| {_f(_ratio(fast and fast['updates_per_s'], paper and paper['updates_per_s']))}x "
            f"| {_mb(mem_p and mem_p['peak_memory_mb'])} / {_mb(mem_f and mem_f['peak_memory_mb'])} |"
        )
    lines += [
        "",
        "paper settings: HMD features from an LMDB (MMF's zoo), MMH from the .npy folder, "
        "num_workers 0, fp32. fast: LMDB with read-ahead, DataLoader workers (pinned memory on a GPU), mixed "
        "precision, TF32. HMD runs read the store from memory (HMD's features, about 7 GB, stay "
        "cached), MMH runs from disk (about 120 GB). The paper's MB "
        "are MMF's logged peak GPU memory.",
    ]
    return lines


def _train_table(result):
    steps = result.get("train", [])
    if not steps:
        return []
    lines = [
        "",
        "### Training updates alone (resident batch)",
        "",
        "| model | mode | paper upd/s | fast upd/s | fast / paper | paper samples/s "
        f"| fast samples/s | {result.get('memory_kind', 'peak memory')} MB paper / fast |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        for mode in MODES:
            paper = _find(steps, model=model, mode=mode, settings=PAPER)
            fast = _find(steps, model=model, mode=mode, settings=FAST)
            if not (paper or fast):
                continue
            lines.append(
                f"| {label(model)} | {label(mode)} "
                f"| {_f(paper and paper['updates_per_s'])} | {_f(fast and fast['updates_per_s'])} "
                f"| {_f(_ratio(fast and fast['updates_per_s'], paper and paper['updates_per_s']))}x "
                f"| {_f(paper and paper['samples_per_s'], 1)} "
                f"| {_f(fast and fast['samples_per_s'], 1)} "
                f"| {_mb(paper and paper['peak_memory_mb'])} / {_mb(fast and fast['peak_memory_mb'])} |"
            )
    return lines


def _loader_table(result):
    rows = result.get("loader", [])
    if not rows:
        return []
    first = rows[0]
    lines = [
        "",
        f"### Data loading alone ({first['items']} MMH-shaped items from "
        f"{result['params'].get('store', 'a synthetic store')}, batch {first['batch_size']})",
        "",
        "| features | num_workers | pinned | page cache | samples/s | vs npy, 0 workers, same cache |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cache = row["page_cache"]
        base = _find(rows, format="npy", num_workers=0, page_cache=cache)
        ratio = _ratio(row["samples_per_s"], base and base["samples_per_s"])
        features = row["format"] + (", read-ahead" if row.get("readahead") else "")
        lines.append(
            f"| {features} | {row['num_workers']} | {'yes' if row['pin_memory'] else 'no'} "
            f"| {cache} | {_f(row['samples_per_s'], 1)} | {_f(ratio)}x |"
        )
    return lines + [
        "",
        "cold: the files a pass reads are dropped from the page cache first, so they come from "
        "disk, as the paper's 150K-file MMH folder did; warm: the same pass again, from memory. "
        "lmdb is MMF's reader as it is (read-ahead off, as in the paper's HMD runs); read-ahead "
        "is `fast`'s (training.lmdb_readahead).",
    ]


def _extract_table(result):
    ex = result.get("extract")
    if not ex:
        return []
    lines = ["", "### Region-feature extraction (MMF's FRCNN, 100 boxes)", ""]
    if ex.get("skipped"):
        return lines + [f"Not measured: {ex['skipped']}."]
    return lines + [
        "| weights | batch | image size | images/s |",
        "|---|---|---|---|",
        f"| {ex['weights']} | {ex['batch_size']} | {ex['image_size'][0]}x{ex['image_size'][1]} "
        f"| {_f(ex['images_per_s'], 2)} |",
    ]


def targets_table(result):
    r = result.get("ratios", {})
    gpu = result["device"]["type"] == "cuda"
    lines = [
        "",
        "### Targets (meaningful on a GPU only)",
        "",
        "| ratio | here | target |",
        "|---|---|---|",
    ]
    for text, key, op, bound in TARGETS:
        value = r.get(key)
        shown = _f(value)
        if not gpu and value is not None:
            shown += " (CPU)"
        lines.append(f"| {text} | {shown} | {op} {bound} |")
    return lines

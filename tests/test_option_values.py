"""Option values the kit accepts only when it can mean them, every option parsed by one strict
parser (pekit.core.argtypes), and a dry run that refuses exactly what the run refuses.

The property-style part feeds every option that takes a value, of `pekit run`, `study`,
`reproduce`, `doctor`, `wheelhouse`, `gpu-bundle`, `assets`, `bench` and `report`, mutated
values (empty, duplicated, huge, negative, zero, non-numeric, other scripts' digits, odd
whitespace, signs and decimal forms, overlong, control characters, the range's edges). Each
value is judged by the rules written out here (not by the kit's parser): a value the rules
refuse must be refused cleanly (exit 2 or 1, one line on stderr naming the option, nothing
written); a value they accept must get past the options (the command's work is stubbed), or be
refused cleanly for what it names (a missing file, a machine without GPUs). Never exit 3, never
a traceback. The counts per class of value are printed at the end.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import pytest

from pekit import cli
from pekit.core import argtypes
from pekit.core.errors import UsageError
from pekit.facts import vocabulary
from pekit.run import devices, execute, spec

# ---- the rules, written out independently of the kit's parser ------------------------------

DIGITS = re.compile(r"0|[1-9][0-9]*", re.ASCII)
DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?", re.ASCII)
SEED_MAX = 2**32 - 1  # numpy's np.random.seed takes 0 .. 2**32 - 1; MMF's set_seed skips 0
SIZE_MAX = 768  # BERT-base's hidden size: the narrowest stream of VisualBERT and ViLBERT
COUNT_MAX = 10**6
PAPER_LOG = "paper.log"


def control(text):
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def whole_ok(text, least, most):
    return len(text) <= 30 and bool(DIGITS.fullmatch(text)) and least <= int(text) <= most


def number_ok(text, least, most, above=False):
    if not DECIMAL.fullmatch(text):
        return False
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        return False
    return value > least if above else least <= value and (most is None or value <= most)


def list_items(text):
    """The items of a list value; None when an item is empty or repeated."""
    if not text.strip(" "):
        return []
    out = []
    for part in text.split(","):
        words = [w for w in part.split(" ") if w]
        if not words:
            return None
        out += words
    return out if len(set(out)) == len(out) else None


def path_ok(text, empty_ok=True):
    if text == "":
        return empty_ok
    raw = text.encode("utf-8", "surrogateescape")
    return not control(text) and len(raw) < 4096 and all(len(p) <= 255 for p in raw.split(b"/"))


def wholes(least, most):
    def ok(text):
        listed = list_items(text)
        return listed is not None and all(whole_ok(x, least, most) for x in listed)

    return ok


def names(allowed):
    def ok(text):
        listed = list_items(text)
        return listed is not None and all(x in allowed for x in listed)

    return ok


def one_of(allowed, empty_ok=False):
    return lambda text: text in allowed or (empty_ok and text == "")


def whole(least=1, most=COUNT_MAX, empty_ok=True):
    return lambda text: (empty_ok and text == "") or whole_ok(text, least, most)


def number(least, most=None, above=False, empty_ok=True):
    return lambda text: (empty_ok and text == "") or number_ok(text, least, most, above)


def path(empty_ok=True):
    return lambda text: path_ok(text, empty_ok)


def glibc(text):
    return text == "" or bool(re.fullmatch(r"2\.(?:[5-9]|[1-9][0-9])", text, re.ASCII))


def device(text):
    return text == "" or bool(re.fullmatch(r"cpu|mps|cuda(?::[0-9]{1,3})?", text, re.ASCII))


def url(text):
    if text == "":
        return True
    if control(text) or " " in text or any(not c.isprintable() for c in text):
        return False
    m = re.fullmatch(r"(https?)://([^/]+).*|file://(.+)", text)
    return bool(m)


def location(text):
    return (
        url(text)
        if "://" in text and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text)
        else (path_ok(text))
    )


OWN_KEYS = {
    "run_type",
    "env.save_dir",
    "env.data_dir",
    "training.seed",
    "training.batch_size",
    "distributed.world_size",
    "checkpoint.resume",
}


def override(text):
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*(?:\.\w+|\[[0-9]+\])*", key, re.ASCII):
        return False
    parts = key.split(".")
    mode_key = (
        len(parts) == 3
        and parts[0] == "model_config"
        and parts[2] in ("freeze_base", "pe_adapter", "lora", "bitfit", "pe_reduction", "lora_r")
    )
    return not control(value) and key not in OWN_KEYS and not mode_key


def paper_log(text):
    key, sep, log = text.partition("=")
    dataset, colon, mode = key.partition(":")
    return bool(
        sep
        and colon
        and dataset in vocabulary.DATASETS
        and mode in vocabulary.PAPER_MODES
        and log == PAPER_LOG
    )


def asset_names(text):
    return text in {
        "visual_bert.pretrained.coco",
        "vilbert.pretrained.cc",
        "hateful_memes.features",
        "bert-base-uncased",
        "visual_bert.*",
        "hmd",
    }


# ---- the options ---------------------------------------------------------------------------


@dataclass
class Option:
    argv: Sequence[str]  # the command and what every case of it needs
    flag: Optional[str]  # None: a positional argument, named `names` in a refusal
    ok: Callable[[str], bool]  # the rules: whether the value means something
    base: str  # a good value (duplicated, cut and edged by the mutations)
    context: Sequence[str] = ()  # other options the value needs to mean something
    edges: Sequence[str] = ()  # values at and beyond the range's edges
    says: Sequence[str] = ()  # what names the option in a refusal (default: the flag)

    @property
    def label(self):
        sub = [a for a in self.argv[1:2] if a in ("--dry-run", "fetch", "list")]
        return " ".join([self.argv[0], *sub, self.flag or self.says[0]])

    def case(self, value):
        if self.flag is None:
            return [*self.argv, *self.context, value]
        return [*self.argv, *self.context, self.flag, value]


def edges(least, most):
    return [str(least), str(most), str(most + 1), str(least - 1) if least else "-1"]


def matrix_options(argv, study=False, report=False):
    """The options `pekit run`, `reproduce` and `study` share (their dry runs too)."""
    lora = () if study else ("--modes", "fc,pe,lora")
    argv = [*argv, "--dataset", "hmd", "--data-dir", "data"]  # a later value wins
    out = [
        Option(argv, "--dataset", one_of(vocabulary.DATASETS), "hmd"),
        Option(argv, "--models", names(vocabulary.MODELS), "visual_bert"),
        Option(argv, "--modes", names(vocabulary.MODES), "fc"),
        Option(argv, "--pe-reductions", wholes(1, SIZE_MAX), "20", edges=edges(1, SIZE_MAX)),
        Option(
            argv, "--lora-ranks", wholes(1, SIZE_MAX), "4", context=lora, edges=edges(1, SIZE_MAX)
        ),
        Option(argv, "--seeds", wholes(1, SEED_MAX), "2", edges=edges(1, SEED_MAX)),
        Option(argv, "--gpus", whole(), "1", edges=edges(1, COUNT_MAX)),
        Option(argv, "--batch", whole(), "16", edges=edges(1, COUNT_MAX)),
        Option(argv, "--settings", one_of(("paper", "fast", "smoke"), empty_ok=True), "fast"),
        Option(argv, "--results", path(), "results"),
        Option(argv, "--data-dir", path(), "data"),
        Option(argv, "--override", override, "training.max_updates=3000"),
        Option(argv, "--config", path(), "my.yaml"),
    ]
    if report:
        out += [
            Option(argv, "--tolerance", number(0.0, 1.0), "0.02", edges=["0", "1", "1.5"]),
            Option(argv, "--paper-log", paper_log, f"hmd:fc={PAPER_LOG}"),
        ]
    return out


COUNTS = ("batch", "updates", "pipeline_updates", "loader_items", "loader_batch")
COUNTS += ("extract_images", "extract_batch")
BENCH = ["bench"]
OPTIONS = {
    "run": matrix_options(["run"]),
    "run --dry-run": matrix_options(["run", "--dry-run"]),
    "reproduce": matrix_options(["reproduce"], report=True),
    "study": matrix_options(["study"], study=True, report=True),
    "study --dry-run": matrix_options(["study", "--dry-run"], study=True, report=True),
    "doctor": [
        Option(["doctor"], "--data-dir", path(), "data"),
        Option(["doctor"], "--datasets", names(vocabulary.DATASETS), "hmd"),
        Option(["doctor"], "--models", names(vocabulary.MODELS), "vilbert"),
    ],
    "wheelhouse": [
        Option(["wheelhouse"], None, path(empty_ok=False), "wheels", says=["DIR"]),
        Option(["wheelhouse", "wheels"], "--node", path(), "node.json"),
        Option(["wheelhouse", "wheels"], "--python", one_of(("3.11", "3.12")), "3.12"),
        Option(
            ["wheelhouse", "wheels"], "--glibc", glibc, "2.28", edges=["2.5", "2.99", "2.4", "3.0"]
        ),
        Option(["wheelhouse", "wheels", "--list"], "--glibc", glibc, "2.17"),
    ],
    "gpu-bundle": [
        Option(["gpu-bundle"], None, path(empty_ok=False), "b", ["--node", "n"], says=["DIR"]),
        Option(["gpu-bundle", "b"], "--node", path(empty_ok=False), "node.json"),
        Option(["gpu-bundle", "b", "--node", "n"], "--mmf-from", location, "https://x/mmf.git"),
        Option(["gpu-bundle", "b", "--node", "n"], "--wheelhouse", path(), "wheels"),
    ],
    "assets": [
        Option(["assets", "list"], "--data-dir", path(), "data"),
        Option(["assets", "list"], "--cache-dir", path(), "cache"),
        Option(["assets", "fetch"], "--data-dir", path(), "data"),
        Option(["assets", "fetch"], "--cache-dir", path(), "cache"),
        Option(["assets", "fetch"], "--transformers-cache", path(), "tc"),
        Option(["assets", "fetch"], "--mirror", url, "https://mirror.example/x"),
        Option(["assets", "fetch"], None, asset_names, "hmd", says=["asset"]),
    ],
    "bench": [
        Option(BENCH, "--models", names(vocabulary.MODELS), "vilbert"),
        Option(BENCH, "--modes", names(vocabulary.MODES), "pe"),
        Option(BENCH, "--pipeline-models", names(vocabulary.MODELS), "vilbert"),
        Option(BENCH, "--pipeline-modes", names(vocabulary.MODES), "pe"),
        Option(BENCH, "--datasets", names(vocabulary.DATASETS), "mmh"),
        Option(BENCH, "--only", names(("loader", "train", "pipeline", "extract")), "train"),
        Option(BENCH, "--device", device, "cpu"),
        *(
            Option(BENCH, f"--{n.replace('_', '-')}", whole(), "2", edges=edges(1, COUNT_MAX))
            for n in COUNTS
        ),
        Option(BENCH, "--warmup", whole(0), "2", edges=edges(0, COUNT_MAX)),
        *(
            Option(BENCH, flag, path(), "somewhere")
            for flag in ("--features", "--frcnn-dir", "--data-dir", "--mmf-src", "--workdir")
        ),
        Option(BENCH, "--out", path(), "b.json"),
    ],
    "report": [
        Option(["report"], "--results", path(), "results"),
        Option(["report"], "--tolerance", number(0.0, 1.0), "0.02", edges=["0", "1", "1.01"]),
        Option(["report"], "--paper-log", paper_log, f"hmd:pe={PAPER_LOG}"),
    ],
}


def mutations(option):
    """{class: [values]} for `option`."""
    b = option.base
    return {
        "empty": ["", " "],
        "duplicate": [f"{b},{b}", f"{b} {b}", f"{b}, {b}"],
        "empty item": [",", f"{b},", f",{b}", f"{b},,{b}"],
        "huge": ["1" + "0" * 30, "9" * 5000],
        "negative": ["-1", "-5"],
        "zero": ["0", "00"],
        "non-numeric": ["abc", "5x", "nan", "inf", "0x10", "1e400", "true"],
        "unicode digits": ["\u0665", "\uff15", "\U0001d7d3", "\u00b2", "\u0968"],
        "whitespace": [" 5", "5 ", "\t5", "5\n", "\u00a05", "5\u200b", f" {b}", f"{b}\t"],
        "sign and form": ["+5", "5.0", "05", "1_0", "5.", ".5", "5e0"],
        "overlong": ["x" * 5000, "a/" * 3000, b * (5000 // max(len(b), 1))],
        "control": ["a\x00b", f"{b}\x00", "a\nb", "\x1b[31m"],
        "edges": list(option.edges) + [b],
    }


# ---- running a case ------------------------------------------------------------------------


class Accepted(BaseException):
    """The command got past every check of its options, to its work (stubbed here)."""


def _stop(*args, **kwargs):
    raise Accepted()


@pytest.fixture
def world(tmp_path, monkeypatch, fake_mmf):
    """tmp_path as the working folder: data laid out for the preflight, a paper log, no GPUs,
    and every command's work replaced by a stop (Accepted)."""
    from pekit.assets import download
    from pekit.commands import bench as bench_command
    from pekit.report import options as report_cli
    from pekit.setup import gpu_bundle, wheelhouse
    from pekit.workflows import doctor

    monkeypatch.chdir(tmp_path)
    (tmp_path / PAPER_LOG).write_text("")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("MMF_DATA_DIR", raising=False)
    monkeypatch.setenv("MMF_CACHE_DIR", str(tmp_path / "mmf-cache"))
    monkeypatch.setattr(devices, "machine_gpus", lambda: 0)
    monkeypatch.setattr(execute, "run", _stop)  # run_matrix's run, after the preflight
    monkeypatch.setattr(doctor, "diagnose", _stop)
    monkeypatch.setattr(wheelhouse, "build", _stop)
    monkeypatch.setattr(wheelhouse, "plan", _stop)
    monkeypatch.setattr(gpu_bundle, "build", _stop)
    monkeypatch.setattr(download, "fetch_asset", _stop)
    monkeypatch.setattr(bench_command, "run", _stop)
    monkeypatch.setattr(report_cli, "write_report", _stop)
    return tmp_path


def tree(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def invoke(argv, capsys):
    """(exit code or "accepted", stdout, stderr) of `pekit ARGV`, in this process."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code or 0
    except Accepted:
        code = "accepted"
    out, err = capsys.readouterr()
    return code, out, err


REFUSED, ACCEPTED, OTHER = "refused cleanly", "accepted correctly", "other"
TALLY = defaultdict(Counter)  # class -> Counter(tried, refused cleanly, accepted correctly, other)
FAILURES = []
WHY = Counter()  # why the cases counted "other" were


def judge(option, value, code, err, written):
    """REFUSED, ACCEPTED or OTHER, and why, for one case."""
    lines = err.strip().splitlines()
    if code == 3 or "Traceback" in err or "bug of the kit" in err:
        return OTHER, "a bug of the kit"
    if option.ok(value):
        if code in ("accepted", 0):
            return ACCEPTED, ""
        # A good value refused for what it names (no such file, no GPUs, no data there).
        if code in (1, 2) and not written and lines:
            preflight = any(": nothing started" in x or "nothing would start" in x for x in lines)
            if len(lines) == 1 or preflight:
                return ACCEPTED, ""
        return OTHER, f"a good value, exit {code}"
    if code not in (1, 2):
        return OTHER, f"accepted (exit {code})"
    if written:
        return OTHER, f"refused after writing {written[:3]}"
    if len(lines) != 1:
        return OTHER, f"{len(lines)} lines"
    names = option.says or [option.flag]
    if not any(n in lines[0] for n in names):
        return OTHER, "the line does not name the option"
    return REFUSED, ""


@pytest.mark.parametrize("command", list(OPTIONS))
def test_every_value_is_refused_cleanly_or_means_something(command, world, capsys):
    failures = []
    for option in OPTIONS[command]:
        for kind, values in mutations(option).items():
            for value in values:
                before = tree(world)
                code, _, err = invoke(option.case(value), capsys)
                after = tree(world)
                written = sorted(set(after) - set(before))
                verdict, why = judge(option, value, code, err, written)
                TALLY[kind]["tried"] += 1
                TALLY[kind][verdict] += 1
                if verdict == OTHER:
                    WHY[re.sub(r" \(exit .*|after writing .*", "", why)] += 1
                    failures.append(f"{option.label} {value[:40]!r}: {why}: {err.strip()[:300]}")
                # An accepted case may have made its outputs' folders: start the next clean.
                for name in written:
                    target = world / name
                    if target.is_file():
                        target.unlink()
                for name in sorted(written, reverse=True):
                    if (world / name).is_dir():
                        (world / name).rmdir()
    FAILURES.extend(failures)
    assert not failures, "\n".join(failures[:40])


def test_zz_counts_per_class(capsys):
    """The tally of the property test, per class of value (printed; fails on any 'other')."""
    if not TALLY:
        pytest.skip("the property test did not run")
    rows = [f"{'class':16} {'tried':>6} {'refused':>8} {'accepted':>9} {'other':>6}"]
    total = Counter()
    for kind, c in TALLY.items():
        rows.append(f"{kind:16} {c['tried']:6} {c[REFUSED]:8} {c[ACCEPTED]:9} {c[OTHER]:6}")
        total.update(c)
    rows.append(
        f"{'all':16} {total['tried']:6} {total[REFUSED]:8} {total[ACCEPTED]:9} {total[OTHER]:6}"
    )
    text = "\n".join(rows)
    with capsys.disabled():
        print("\noption values, per class (tried, refused cleanly, accepted correctly, other):")
        print(text)
        if WHY:
            print("other:", ", ".join(f"{why} {n}" for why, n in WHY.most_common()))
    assert total[OTHER] == 0, text


# ---- a dry run refuses exactly what the run refuses ----------------------------------------

BAD_OPTION_SETS = [
    # options
    (["--override", "training.seed=0"], "--override: training.seed is set by the kit"),
    (["--override", "training.max_updates"], "--override: expected KEY=VALUE"),
    (["--override", "a=1", "--override", "a=2"], "--override: a given twice"),
    (["--settings", "turbo"], "--settings: unknown 'turbo'"),
    (["--models", "visual_bert,visual_bert"], "--models: 'visual_bert' given twice"),
    (["--modes", "fc,,pe"], "--modes: an empty item"),
    # sizes
    (["--modes", "pe", "--pe-reductions", "769"], "--pe-reductions: expected whole numbers"),
    (["--modes", "lora", "--lora-ranks", "1000"], "--lora-ranks: expected whole numbers"),
    (["--modes", "pe", "--pe-reductions", "5,5"], "--pe-reductions: '5' given twice"),
    (["--modes", "fc", "--lora-ranks", "4"], "--lora-ranks sizes lora runs"),
    # seeds
    (["--seeds", "0"], "--seeds: expected whole numbers from 1 to 4294967295"),
    (["--seeds", "-1"], "--seeds: expected whole numbers from 1 to 4294967295"),
    (["--seeds", str(2**32)], "--seeds: expected whole numbers from 1 to 4294967295"),
    (["--seeds", "1,1"], "--seeds: '1' given twice"),
    (["--seeds", "+1"], "--seeds: expected whole numbers"),
    # GPUs and batch
    (["--gpus", "2"], "--gpus 2, but this machine has 0 NVIDIA GPUs"),
    (["--gpus", "0"], "--gpus: expected a whole number from 1"),
    (["--batch", "5.0"], "--batch: expected a whole number from 1"),
    (["--batch", "10" + "0" * 30], "--batch: expected a whole number from 1"),
    # the report's options (study)
    (["--paper-log", "hmd:lora=x"], "--paper-log: expected DATASET:MODE=LOG"),
    (["--paper-log", "hmd:fc=nowhere.log"], "--paper-log nowhere.log: no such file"),
]


@pytest.mark.parametrize("command", ["run", "study"])
@pytest.mark.parametrize("extra, says", BAD_OPTION_SETS)
def test_a_dry_run_refuses_what_the_run_refuses(
    command, extra, says, tmp_path, monkeypatch, capsys, fake_mmf
):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "machine_gpus", lambda: 0)
    argv = [
        command,
        "--dataset",
        "hmd",
        "--results",
        str(tmp_path / "results"),
        "--data-dir",
        str(tmp_path / "data"),
        *extra,
    ]
    before = tree(tmp_path)
    got = []
    for dry in (["--dry-run"], []):
        code, out, err = invoke([*argv, *dry], capsys)
        got.append((code, err))
        assert out == "", out
    assert got[0] == got[1], got  # the same exit code and the same line
    code, err = got[0]
    if command == "run" and "--paper-log" in extra:  # run has no report options
        assert code == 2 and "unrecognized arguments: --paper-log" in err, err
    else:
        expect_code = 1 if "no such file" in says else 2
        assert code == expect_code and says in err and len(err.strip().splitlines()) == 1, err
    assert tree(tmp_path) == before and fake_mmf() == []  # nothing written, nothing run


def test_a_dry_run_refuses_missing_data_as_the_run_does(tmp_path, monkeypatch, capsys, fake_mmf):
    """The preflight's problems: the same lines; the dry run says nothing 'would' start."""
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["run", "--dataset", "hmd", "--results", str(tmp_path / "r"), "--data-dir", str(empty)]
    code_dry, _, err_dry = invoke([*argv, "--dry-run"], capsys)
    code_run, out_run, err_run = invoke(argv, capsys)
    assert code_dry == code_run == 2
    problems = [x for x in err_dry.splitlines() if ": blocks " in x]
    assert problems and problems == [x for x in err_run.splitlines() if ": blocks " in x]
    assert not (tmp_path / "r").exists() and fake_mmf() == []


# ---- the rules themselves ------------------------------------------------------------------


def test_sizes_are_checked_against_every_model_s_widths():
    from pekit.facts import models

    widths = [w for m in vocabulary.MODELS.values() for w in m.widths]
    assert sorted(set(widths)) == [768, 1024]  # BERT-base's text stream, ViLBERT's visual one
    for mode in ("pe", "lora"):
        most, why = vocabulary.size_limit(mode)
        assert most == min(widths) == SIZE_MAX and why
        assert vocabulary.check_size(mode, most) == most
        for bad in (0, most + 1, 10**30, -1, True, 2.0):
            with pytest.raises(UsageError, match=f"from 1 to {most}"):
                vocabulary.check_size(mode, bad)
    # The patch's bottleneck is int(hidden / reduction): 768 keeps one unit on every stream.
    for hidden in widths:
        assert int(hidden / SIZE_MAX) >= 1
        assert models.adapter_parameter_count(hidden, SIZE_MAX) > hidden
    assert int(768 / (SIZE_MAX + 1)) == 0  # what the limit refuses: an adapter of 0 units


def test_the_seeds_mmf_seeds_reproducibly(tmp_path):
    """MMF's set_seed: 0 seeds nothing, -1 is a random seed, numpy refuses 2**32 and up; a run
    on N GPUs seeds seed + rank, so its seed must leave room for N - 1 ranks."""
    assert spec.SEED_MAX == SEED_MAX
    assert spec.seed_limit(1) == SEED_MAX and spec.seed_limit(4) == SEED_MAX - 3
    for seed, gpus in ((0, 1), (-1, 1), (2**32, 1), (SEED_MAX, 2)):
        with pytest.raises(UsageError, match="--seeds"):
            spec.RunSpec(tmp_path, "hmd", "visual_bert", "fc", seed, gpus=gpus, batch=16)
    assert spec.RunSpec(tmp_path, "hmd", "visual_bert", "fc", SEED_MAX).seed == SEED_MAX


def test_numpy_refuses_what_the_seed_rule_refuses():
    np = pytest.importorskip("numpy")
    np.random.seed(SEED_MAX)
    for bad in (2**32, -2):
        with pytest.raises(ValueError):
            np.random.seed(bad)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("5", 5),
        ("1000000", 10**6),
        ("0", None),
        ("+5", None),
        (" 5", None),
        ("5 ", None),
        ("05", None),
        ("5.0", None),
        ("1_0", None),
        ("\u0665", None),
        ("\uff15", None),
        ("1" + "0" * 30, None),
        ("9" * 5000, None),
        ("", None),
    ],
)
def test_one_whole_number_parser(text, expected):
    if expected is None:
        with pytest.raises(Exception, match="expected a whole number from 1 to 1000000"):
            argtypes.positive_int(text)
    else:
        assert argtypes.positive_int(text) == expected


def test_one_list_rule():
    assert argtypes.names("fc, pe full", vocabulary.MODES, (), "--modes") == ["fc", "pe", "full"]
    assert argtypes.names("", vocabulary.MODES, ("fc",), "--modes") == ["fc"]
    for bad, says in (
        ("fc,fc", "'fc' given twice"),
        ("fc,,pe", "an empty item"),
        ("fc,", "an empty item"),
        ("fc\tpe", "unknown 'fc\\tpe'"),
    ):
        with pytest.raises(UsageError, match=re.escape(f"--modes: {says}")):
            argtypes.names(bad, vocabulary.MODES, (), "--modes")
    assert argtypes.whole_numbers("2, 4,8", "--x", 1, 8) == [2, 4, 8]
    with pytest.raises(UsageError, match="'4' given twice"):
        argtypes.whole_numbers("4,4", "--x", 1, 8)


def test_messages_stay_on_one_line_and_short():
    shown = argtypes.shown("a\nb\x00" + "x" * 100)
    assert "\n" not in shown and "\\n" in shown and "\\x00" in shown
    assert shown.endswith("(104 characters)")


@pytest.mark.parametrize(
    "bad", ["2", "2.x", "3.28", "2.28.1", "2.3", "2.05", " 2.28", "2.\u0662\u0668"]
)
def test_glibc_is_major_minor(bad, tmp_path, capsys):
    code, out, err = invoke(["wheelhouse", str(tmp_path / "w"), "--list", "--glibc", bad], capsys)
    assert code == 2 and "--glibc" in err and "MAJOR.MINOR" in err and len(err.splitlines()) == 1
    assert out == "" and not (tmp_path / "w").exists()


def test_a_freeze_with_a_malformed_glibc_is_refused_naming_the_freeze(tmp_path, monkeypatch):
    from pekit.setup import wheelhouse

    class Node:
        source, python, glibc = "node.json", "3.12", "2.100"

    monkeypatch.setattr(wheelhouse, "plan", _stop)
    with pytest.raises(UsageError, match=r"node\.json: glibc: expected a glibc version"):
        wheelhouse.build(tmp_path / "w", Node(), python="3.12")
    assert not (tmp_path / "w").exists()


def test_study_dry_run_checks_the_report_options(tmp_path, capsys, fake_mmf):
    argv = ["study", "--dry-run", "--dataset", "hmd", "--results", str(tmp_path / "r")]
    argv += ["--data-dir", str(tmp_path / "data"), "--paper-log", "hmd:fc=missing.log"]
    code, out, err = invoke(argv, capsys)
    assert code == 1 and "--paper-log missing.log: no such file" in err and out == ""


def test_bench_refuses_a_device_this_machine_lacks_before_writing(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "b" / "bench.json"
    code, _, err = invoke(["bench", "--device", "cuda:1", "--out", str(out)], capsys)
    assert code == 2 and "--device cuda:1: this machine has 0 CUDA devices" in err
    assert not (tmp_path / "b").exists()


def test_every_numeric_option_uses_the_strict_parser():
    """No `type=int` or `type=float` left: every option parsed by pekit.core.argtypes."""
    root = Path(__file__).resolve().parents[1] / "scripts" / "pekit"
    loose = [
        f"{p.relative_to(root)}:{i}"
        for p in root.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"type=(int|float)\b", line)
    ]
    assert loose == [], loose


def test_help_still_builds(capsys):
    for command in ("run", "study", "bench", "wheelhouse", "gpu-bundle", "report", "doctor"):
        code, out, _ = invoke([command, "--help"], capsys)
        assert code == 0 and "usage:" in out

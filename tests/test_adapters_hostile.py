"""Hostile adapter exports, second round: `pekit adapters load` refuses every export that does
not fit its base or its own account (adapters.json), and every file that is not a regular file of
the export's folder, in one line (exit 1), writing nothing; valid exports still load bit for bit.

The exports are built without MMF: state dicts named like the patched VisualBERT (hidden 16,
three layers), trained by each frozen-base mode (PE adds adapter blocks, LoRA its updates,
BitFit trains the encoder's bias terms, FC only the head), exported by `adapters.export`.
Each hostile case changes one thing and, where the change would otherwise be caught by the
sha256 or the size that adapters.json records, records the new file's, so the check meant is the
one that refuses it.
"""

import json
import os
import shutil
import signal
import struct
from types import SimpleNamespace

import pytest

from pekit import adapters, cli
from pekit.adapters import structure, tensorfile
from pekit.core.digests import sha256_bytes
from pekit.core.errors import PekitError

torch = pytest.importorskip("torch")

H, INTER, LAYERS, REDUCTION, RANK = 16, 24, 3, 4, 2
BOTTLENECK = H // REDUCTION
LAYER = "model.bert.encoder.layer.{}."
HEAD = "model.classifier."


def base_tensors(seed=0):
    """The frozen pre-trained weights and the head, as MMF's VisualBERT names them."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    state = {"model.bert.embeddings.word_embeddings.weight": r(20, H)}
    state["model.bert.embeddings.position_ids"] = torch.arange(8)
    for i in range(LAYERS):
        p = LAYER.format(i)
        for proj in ("query", "key", "value"):
            state[f"{p}attention.self.{proj}.weight"] = r(H, H)
            state[f"{p}attention.self.{proj}.bias"] = r(H)
        state[f"{p}intermediate.dense.weight"] = r(INTER, H)
        state[f"{p}intermediate.dense.bias"] = r(INTER)
        state[f"{p}output.dense.weight"] = r(H, INTER)
        state[f"{p}output.dense.bias"] = r(H)
        state[f"{p}output.LayerNorm.weight"] = r(H)
        state[f"{p}output.LayerNorm.bias"] = r(H)
    state[HEAD + "weight"] = r(2, H)
    state[HEAD + "bias"] = r(2)
    return state


def added_tensors(mode, seed=1):
    """What `mode` adds to the model (pe: adapter blocks, lora: LoRA updates)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i in range(LAYERS):
        p = LAYER.format(i)
        if mode == "pe":
            host = p + "output."
            out[host + "AdaptComb1.weight"] = torch.randn(BOTTLENECK, H, generator=g)
            out[host + "AdaptComb1.bias"] = torch.randn(BOTTLENECK, generator=g)
            out[host + "AdaptComb2.weight"] = torch.randn(H, BOTTLENECK, generator=g)
            out[host + "AdaptComb2.bias"] = torch.randn(H, generator=g)
        if mode == "lora":
            for proj in ("query", "value"):
                host = f"{p}attention.self.{proj}."
                out[host + "lora.A"] = torch.randn(RANK, H, generator=g)
                out[host + "lora.B"] = torch.randn(H, RANK, generator=g)
    return out


def make_export(tmp_path, mode="pe", base_has_added=False):
    """A run of `mode` trained on the base, its export, and the base checkpoint."""
    switches = structure.switches(mode)
    frozen = base_tensors()
    trained = dict(frozen)
    trained.update(added_tensors(mode))
    g = torch.Generator().manual_seed(2)
    for name in trained:
        if structure.is_trained(name, mode=switches) and trained[name].is_floating_point():
            trained[name] = trained[name] + torch.randn(trained[name].shape, generator=g)
    config = {
        "model": "visual_bert",
        "model_config": {"visual_bert": dict(switches, pe_reduction=REDUCTION, lora_r=RANK)},
    }
    best = tmp_path / "best.ckpt"
    torch.save({"model": trained, "config": config}, str(best))
    base = dict(frozen)
    base[HEAD + "weight"] = torch.zeros(2, H)  # FC's head, say: replaced by the export's
    if base_has_added:
        base.update({n: torch.zeros_like(t) for n, t in added_tensors(mode, seed=3).items()})
    base_path = tmp_path / "base.ckpt"
    torch.save({"model": base}, str(base_path))
    folder = tmp_path / "export"
    adapters.export(best, out_dir=folder)
    return SimpleNamespace(
        tmp=tmp_path, mode=mode, folder=folder, base=base_path, trained=trained, out=tmp_path / "o"
    )


def run_load(ex, capsys, adapters_arg=None, base=None):
    code = cli.main(
        [
            "adapters",
            "load",
            str(adapters_arg or ex.folder),
            "--base",
            str(base or ex.base),
            "--out",
            str(ex.out),
        ]
    )
    captured = capsys.readouterr()
    return code, captured.err


@pytest.fixture
def alarm():
    """A load that hangs (an endless device, a FIFO) fails the test instead of hanging it."""

    def ring(signum, frame):
        raise TimeoutError("the load hung")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --- rewriting an export ----------------------------------------------------------------------


def info_of(ex):
    return json.loads((ex.folder / adapters.INFO).read_text())


def write_info(ex, info):
    (ex.folder / adapters.INFO).write_text(json.dumps(info))


def weights_of(ex):
    return tensorfile.load(ex.folder / adapters.WEIGHTS)[0]


def put_bytes(ex, data, edit=None):
    """The weights file's bytes, its sha256 and size recorded in adapters.json; `edit(info)`."""
    (ex.folder / adapters.WEIGHTS).write_bytes(data)
    info = info_of(ex)
    info["weights"].update(sha256=sha256_bytes(data), bytes=len(data))
    if edit:
        edit(info)
    write_info(ex, info)


def put_tensors(ex, tensors, keys=True, edit=None):
    """Rewrite the export's tensors; with `keys`, adapters.json's keys and counts follow them,
    so only what the tensors themselves do wrong is left to refuse."""

    def fix(info):
        if keys:
            names = sorted(tensors)
            info.update(
                keys=names,
                tensors=len(names),
                parameters=sum(int(t.numel()) for t in tensors.values()),
                adapter_parameters=sum(
                    int(t.numel())
                    for n, t in tensors.items()
                    if not structure.is_trained(n, mode={})
                ),
            )
        if edit:
            edit(info)

    put_bytes(ex, tensorfile.dumps(tensors, {"format": adapters.FORMAT}), fix)


def with_header(ex, change):
    """The weights file with its header changed by `change(header)`, its data as it was."""
    data = (ex.folder / adapters.WEIGHTS).read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    change(header)
    text = json.dumps(header).encode()
    put_bytes(ex, struct.pack("<Q", len(text)) + text + data[8 + size :])


def first(names, text):
    return sorted(n for n in names if text in n)[0]


# --- the cases -------------------------------------------------------------------------------
# (id, mode, mutation, what the one line must say). A mutation returns the --base to use, or
# None for the export's own base.


def m_shape(ex):
    w = weights_of(ex)
    w[HEAD + "weight"] = torch.randn(3, H)
    put_tensors(ex, w)


def m_dtype(ex):
    w = weights_of(ex)
    w[HEAD + "weight"] = w[HEAD + "weight"].half()
    put_tensors(ex, w)


def m_added_dtype(ex):
    w = weights_of(ex)
    name = first(w, "AdaptComb1.weight")
    w[name] = w[name].double()
    put_tensors(ex, w)


def m_added_shape(ex):
    w = weights_of(ex)
    name = first(w, "AdaptComb1.weight")
    w[name] = torch.randn(BOTTLENECK + 1, H)
    w[name.replace(".weight", ".bias")] = torch.randn(BOTTLENECK + 1)
    put_tensors(ex, w)


def m_bottleneck_everywhere(ex):
    """Every adapter one wider, sizes.hosts says so, but its reduction still says 4."""
    w = weights_of(ex)
    for name in list(w):
        if "AdaptComb1" in name:
            w[name] = torch.randn((BOTTLENECK + 1,) + tuple(w[name].shape[1:]))
        elif "AdaptComb2.weight" in name:
            w[name] = torch.randn(H, BOTTLENECK + 1)

    def edit(info):
        info["sizes"]["hosts"]["model.bert.encoder.layer.#.output"]["bottleneck"] += 1

    put_tensors(ex, w, edit=edit)


def m_hidden_everywhere(ex):
    """Adapters of hidden size 8 on a base of 16, adapters.json consistent with them."""
    w = weights_of(ex)
    for name in list(w):
        if "AdaptComb1.weight" in name:
            w[name] = torch.randn(2, 8)
        elif "AdaptComb1.bias" in name:
            w[name] = torch.randn(2)
        elif "AdaptComb2.weight" in name:
            w[name] = torch.randn(8, 2)
        elif "AdaptComb2.bias" in name:
            w[name] = torch.randn(8)

    def edit(info):
        info["sizes"]["hosts"]["model.bert.encoder.layer.#.output"].update(
            hidden_size=8, bottleneck=2
        )

    put_tensors(ex, w, edit=edit)


def m_lora_in_pe(ex):
    w = weights_of(ex)
    w[LAYER.format(0) + "attention.self.query.lora.A"] = torch.randn(RANK, H)
    put_tensors(ex, w)


def m_lora_in_pe_file_only(ex):
    w = weights_of(ex)
    w[LAYER.format(0) + "attention.self.query.lora.A"] = torch.randn(RANK, H)
    put_tensors(ex, w, keys=False)


def m_adapter_in_lora(ex):
    w = weights_of(ex)
    w[LAYER.format(0) + "output.AdaptComb1.weight"] = torch.randn(BOTTLENECK, H)
    put_tensors(ex, w)


def m_missing_adapter_tensor(ex):
    w = weights_of(ex)
    del w[first(w, "AdaptComb2.bias")]
    put_tensors(ex, w)


def m_missing_host(ex):
    """Layer 1's whole adapter left out, sizes.hosts counting two hosts: the base has three."""
    w = weights_of(ex)
    for name in [n for n in w if ".layer.1.output.Adapt" in n]:
        del w[name]

    def edit(info):
        info["sizes"]["hosts"]["model.bert.encoder.layer.#.output"]["count"] = LAYERS - 1

    put_tensors(ex, w, edit=edit)


def m_missing_head(ex):
    w = weights_of(ex)
    del w[HEAD + "bias"]
    put_tensors(ex, w)


def m_missing_file_only(ex):
    w = weights_of(ex)
    del w[HEAD + "bias"]
    put_tensors(ex, w, keys=False)


def m_renamed_adapter(ex):
    w = weights_of(ex)
    name = first(w, "AdaptComb1.weight")
    w[name.replace("AdaptComb1", "AdaptComb3")] = w.pop(name)
    put_tensors(ex, w)


def m_renamed_head(ex):
    w = weights_of(ex)
    w[HEAD + "kernel"] = w.pop(HEAD + "weight")
    put_tensors(ex, w)


def m_lora_missing_b(ex):
    w = weights_of(ex)
    del w[first(w, "lora.B")]
    put_tensors(ex, w)


def m_lora_rank(ex):
    w = weights_of(ex)
    w[first(w, "lora.A")] = torch.randn(RANK + 1, H)
    put_tensors(ex, w)


def m_lora_projection(ex):
    """LoRA updates for a 24-wide projection, adapters.json consistent: the base's is 16."""
    w = weights_of(ex)
    for name in list(w):
        if name.endswith("lora.A"):
            w[name] = torch.randn(RANK, 24)

    def edit(info):
        for record in info["sizes"]["hosts"].values():
            record["in_features"] = 24

    put_tensors(ex, w, edit=edit)


def m_bitfit_bias_missing(ex):
    w = weights_of(ex)
    del w[first(w, "intermediate.dense.bias")]
    put_tensors(ex, w)


def m_bitfit_weight(ex):
    w = weights_of(ex)
    w[LAYER.format(0) + "output.dense.weight"] = torch.randn(H, INTER)
    put_tensors(ex, w)


def m_bitfit_new_bias(ex):
    w = weights_of(ex)
    w[LAYER.format(0) + "extra.bias"] = torch.randn(H)
    put_tensors(ex, w)


def m_fc_adapter(ex):
    w = weights_of(ex)
    w[LAYER.format(0) + "output.AdaptComb1.weight"] = torch.randn(BOTTLENECK, H)
    put_tensors(ex, w)


def edit_info(change):
    def mutate(ex):
        info = info_of(ex)
        change(info)
        write_info(ex, info)

    return mutate


def m_count(info):
    info["tensors"] += 1


def m_parameters(info):
    info["parameters"] += 1


def m_adapter_parameters(info):
    info["adapter_parameters"] -= 1


def m_repeated_key(info):
    info["keys"].append(info["keys"][0])
    info["tensors"] += 1


def m_two_modes(info):
    info["mode"]["lora"] = True


def m_mode_lora(info):
    info["mode"].update(pe_adapter=False, lora=True)


def m_run_mode(info):
    info["run"] = {"dataset": "hmd", "model": "visual_bert", "mode": "lora", "seed": 1}


def m_run_size(info):
    info["run"] = {"mode": "pe", "size": {"key": "pe_reduction", "value": 20}}


def m_reduction(info):
    info["sizes"]["pe_reduction"] = 5
    for record in info["sizes"]["hosts"].values():
        record["reduction"] = 5


def m_reduction_tiny(info):
    for record in info["sizes"]["hosts"].values():
        record["reduction"] = 1e-320
    info["sizes"]["pe_reduction"] = None


def m_hidden_huge(info):
    for record in info["sizes"]["hosts"].values():
        record["hidden_size"] = 10**400


def m_parameters_inf(info):
    info["parameters"] = float("inf")


def m_host_count(info):
    info["sizes"]["hosts"]["model.bert.encoder.layer.#.output"]["count"] = 4


def m_no_hosts(info):
    info["sizes"]["hosts"] = {}


def m_rank(info):
    info["sizes"]["lora_r"] = RANK + 1


def m_bytes_bool(info):
    info["weights"]["bytes"] = True


def m_sha(info):
    info["weights"]["sha256"] = "z" * 64


def m_digest(info):
    info["base"]["digest"] = 7


def raw_info_edit(change):
    """adapters.json edited and written as Python's json writes it (Infinity as 1e999)."""

    def mutate(ex):
        info = info_of(ex)
        change(info)
        text = json.dumps(info).replace("Infinity", "1e999")
        (ex.folder / adapters.INFO).write_text(text)

    return mutate


def raw_info(text):
    def mutate(ex):
        (ex.folder / adapters.INFO).write_bytes(text)

    return mutate


def m_offsets_past_end(ex):
    with_header(ex, lambda h: h[HEAD + "bias"].update(data_offsets=[10**6, 10**6 + 8]))


def m_offsets_overlap(ex):
    def change(h):
        a, b = sorted((n for n in h if n != "__metadata__"), key=lambda n: h[n]["data_offsets"])[:2]
        h[b]["data_offsets"] = [d - 4 for d in h[b]["data_offsets"]]

    with_header(ex, change)


def m_offsets_negative(ex):
    with_header(ex, lambda h: h[HEAD + "bias"].update(data_offsets=[-8, 0]))


def m_shape_float(ex):
    with_header(ex, lambda h: h[HEAD + "bias"].update(shape=[2.0]))


def m_shape_huge(ex):
    with_header(ex, lambda h: h[HEAD + "bias"].update(shape=[0, 1 << 62]))


def m_dtype_unknown(ex):
    with_header(ex, lambda h: h[HEAD + "bias"].update(dtype="PICKLE"))


def m_extra_field(ex):
    with_header(ex, lambda h: h[HEAD + "bias"].update(code="os.system"))


def m_metadata(ex):
    with_header(ex, lambda h: h.update(__metadata__={"format": ["x"]}))


def m_header_huge(ex):
    data = (ex.folder / adapters.WEIGHTS).read_bytes()
    put_bytes(ex, struct.pack("<Q", 1 << 62) + data[8:])


def m_header_deep(ex):
    text = b"[" * 100000 + b"]" * 100000
    put_bytes(ex, struct.pack("<Q", len(text)) + text)


def m_header_not_utf8(ex):
    text = b'{"\xff": 1}'
    put_bytes(ex, struct.pack("<Q", len(text)) + text)


def m_header_repeated(ex):
    spec = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    text = ('{"x": ' + spec + ', "x": ' + spec + "}").encode()
    put_bytes(ex, struct.pack("<Q", len(text)) + text + bytes(4))


def m_truncated(ex):
    data = (ex.folder / adapters.WEIGHTS).read_bytes()
    put_bytes(ex, data[:-10])


def m_truncated_unrecorded(ex):
    path = ex.folder / adapters.WEIGHTS
    path.write_bytes(path.read_bytes()[:-10])


def m_trailing(ex):
    put_bytes(ex, (ex.folder / adapters.WEIGHTS).read_bytes() + bytes(8))


def m_short(ex):
    put_bytes(ex, b"\x01\x02")


def link_weights(target):
    def mutate(ex):
        path = ex.folder / adapters.WEIGHTS
        to = target(ex) if callable(target) else target
        path.unlink()
        os.symlink(to, str(path))

    return mutate


def m_weights_fifo(ex):
    path = ex.folder / adapters.WEIGHTS
    path.unlink()
    os.mkfifo(str(path))


def m_info_fifo(ex):
    path = ex.folder / adapters.INFO
    path.unlink()
    os.mkfifo(str(path))


def m_info_zero(ex):
    path = ex.folder / adapters.INFO
    path.unlink()
    os.symlink("/dev/zero", str(path))


def m_weights_folder(ex):
    path = ex.folder / adapters.WEIGHTS
    path.unlink()
    path.mkdir()


def outside_copy(ex):
    copy = ex.tmp / "outside.safetensors"
    shutil.copy(str(ex.folder / adapters.WEIGHTS), str(copy))
    return str(copy)


def m_weights_huge(ex):
    """A sparse 5 GiB weights file recorded as such: refused by its size, before reading."""
    path = ex.folder / adapters.WEIGHTS
    with open(path, "r+b") as f:
        f.truncate(5 << 30)
    info = info_of(ex)
    info["weights"]["bytes"] = 5 << 30
    write_info(ex, info)


def m_info_huge(ex):
    with open(ex.folder / adapters.INFO, "r+b") as f:
        f.truncate(65 << 20)


def m_base_fifo(ex):
    os.mkfifo(str(ex.tmp / "base.fifo"))
    return ex.tmp / "base.fifo"


def m_base_zero(ex):
    os.symlink("/dev/zero", str(ex.tmp / "zero.ckpt"))
    return ex.tmp / "zero.ckpt"


def m_base_other_model(ex):
    """A base of another hidden size altogether."""
    state = {n: torch.randn(*[8 if d == H else d for d in t.shape]) for n, t in ex.trained.items()}
    torch.save({"model": state}, str(ex.tmp / "other.ckpt"))
    return ex.tmp / "other.ckpt"


def m_base_float8(ex):
    """A base whose frozen tensor is of a dtype numpy has not (float8)."""
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip(f"torch {torch.__version__} has no float8")
    state = base_tensors()
    name = "model.bert.embeddings.word_embeddings.weight"
    state[name] = state[name].to(torch.float8_e4m3fn)
    torch.save({"model": state}, str(ex.tmp / "f8.ckpt"))
    return ex.tmp / "f8.ckpt"


def m_base_without_host(ex):
    """A base without layer 2 (two layers where the export has three)."""
    state = {n: t for n, t in base_tensors().items() if ".layer.2." not in n}
    torch.save({"model": state}, str(ex.tmp / "short.ckpt"))
    return ex.tmp / "short.ckpt"


REFUSED = [
    # The tensors against the base.
    ("shape", "pe", m_shape, "expected float32 [2, 16] as the base's"),
    ("dtype", "pe", m_dtype, "is float16 [2, 16]; expected float32 [2, 16]"),
    ("added-dtype", "pe", m_added_dtype, "expected float32 as"),
    ("added-shape", "pe", m_added_shape, "expected [4, 16]"),
    ("bottleneck-everywhere", "pe", m_bottleneck_everywhere, "int(16 / 4) = 4"),
    ("hidden-everywhere", "pe", m_hidden_everywhere, "expected hidden size 8"),
    ("lora-in-pe", "pe", m_lora_in_pe, "is not a tensor PE trains"),
    ("lora-in-pe-file-only", "pe", m_lora_in_pe_file_only, "is not among the keys"),
    ("adapter-in-lora", "lora", m_adapter_in_lora, "is not a tensor LoRA trains"),
    ("missing-adapter-tensor", "pe", m_missing_adapter_tensor, "expected the weight and bias"),
    ("missing-host", "pe", m_missing_host, "'model.bert.encoder.layer.1.output'"),
    ("missing-head", "pe", m_missing_head, "which PE trains in the base"),
    ("missing-file-only", "pe", m_missing_file_only, "which the keys of"),
    ("renamed-adapter", "pe", m_renamed_adapter, "AdaptComb3"),
    ("renamed-head", "pe", m_renamed_head, "is not in the base"),
    ("lora-missing-b", "lora", m_lora_missing_b, "expected lora.A and lora.B"),
    ("lora-rank", "lora", m_lora_rank, "expected [2, 16]"),
    ("lora-projection", "lora", m_lora_projection, "expected a projection [16, 24]"),
    ("bitfit-bias-missing", "bitfit", m_bitfit_bias_missing, "which BitFit trains in the base"),
    ("bitfit-weight", "bitfit", m_bitfit_weight, "is not a tensor BitFit trains"),
    ("bitfit-new-bias", "bitfit", m_bitfit_new_bias, "BitFit adds nothing"),
    ("fc-adapter", "fc", m_fc_adapter, "is not a tensor FC trains"),
    # adapters.json against itself.
    ("count", "pe", edit_info(m_count), "field 'tensors'"),
    ("parameters", "pe", edit_info(m_parameters), "field 'parameters'"),
    ("adapter-parameters", "pe", edit_info(m_adapter_parameters), "field 'adapter_parameters'"),
    ("repeated-key", "pe", edit_info(m_repeated_key), "is repeated"),
    ("two-modes", "pe", edit_info(m_two_modes), "frozen-base mode"),
    ("mode-lora", "pe", edit_info(m_mode_lora), "is not a tensor LoRA trains"),
    ("run-mode", "pe", edit_info(m_run_mode), "field 'run.mode'"),
    ("run-size", "pe", edit_info(m_run_size), "field 'run.size.value'"),
    ("reduction", "pe", edit_info(m_reduction), "int(16 / 5) = 3"),
    ("reduction-tiny", "pe", edit_info(m_reduction_tiny), "expected a positive number"),
    ("hidden-huge", "pe", edit_info(m_hidden_huge), "whole numbers (1 to 2^40)"),
    ("parameters-inf", "pe", raw_info_edit(m_parameters_inf), "field 'parameters' is inf"),
    ("host-count", "pe", edit_info(m_host_count), "expected 4"),
    ("no-hosts", "pe", edit_info(m_no_hosts), "field 'sizes.hosts'"),
    ("rank", "lora", edit_info(m_rank), "expected [3, 16]"),
    ("bytes-bool", "pe", edit_info(m_bytes_bool), "field 'weights.bytes'"),
    ("sha-not-hex", "pe", edit_info(m_sha), "field 'weights.sha256'"),
    ("digest-int", "pe", edit_info(m_digest), "field 'base.digest'"),
    ("info-deep", "pe", raw_info(b"[" * 100000), "nests too deep"),
    ("info-nan", "pe", raw_info(b'{"format": NaN}'), "NaN is not JSON"),
    ("info-repeated", "pe", raw_info(b'{"format": 1, "format": 2}'), "is repeated"),
    ("info-not-utf8", "pe", raw_info(b'{"format": "\xff"}'), "not UTF-8"),
    ("info-huge-int", "pe", raw_info(b'{"tensors": ' + b"9" * 5000 + b"}"), "not valid JSON"),
    ("info-list", "pe", raw_info(b"[]"), "expected a JSON object"),
    # The tensor file's header.
    ("offsets-past-end", "pe", m_offsets_past_end, ".data_offsets is [1000000, 1000008]"),
    ("offsets-overlap", "pe", m_offsets_overlap, "overlap"),
    ("offsets-negative", "pe", m_offsets_negative, ".data_offsets is [-8, 0]"),
    ("shape-float", "pe", m_shape_float, ".shape is [2.0]"),
    ("shape-huge", "pe", m_shape_huge, ".shape is [0, 4611686018427387904]"),
    ("dtype-unknown", "pe", m_dtype_unknown, ".dtype is 'PICKLE'"),
    ("extra-field", "pe", m_extra_field, "expected an object of dtype, shape and data_offsets"),
    ("metadata", "pe", m_metadata, "'__metadata__'"),
    ("header-huge", "pe", m_header_huge, "does not fit"),
    ("header-deep", "pe", m_header_deep, "nests too deep"),
    ("header-not-utf8", "pe", m_header_not_utf8, "not UTF-8"),
    ("header-repeated", "pe", m_header_repeated, "is repeated"),
    ("truncated", "pe", m_truncated, ".data_offsets"),
    ("truncated-unrecorded", "pe", m_truncated_unrecorded, "field 'weights.bytes'"),
    ("trailing", "pe", m_trailing, "8 bytes after the last tensor"),
    ("short", "pe", m_short, "field 'weights.bytes' is 2"),
    # Files that are not regular files of the export's folder.
    ("weights-dev-zero", "pe", link_weights("/dev/zero"), "outside"),
    ("weights-fifo", "pe", m_weights_fifo, "is a FIFO"),
    ("weights-outside", "pe", link_weights(outside_copy), "outside"),
    ("weights-folder", "pe", m_weights_folder, "is a folder"),
    ("weights-huge", "pe", m_weights_huge, "expected the export's weights file to hold at most"),
    ("info-fifo", "pe", m_info_fifo, "is a FIFO"),
    ("info-dev-zero", "pe", m_info_zero, "outside"),
    ("info-huge", "pe", m_info_huge, "to hold at most"),
    # Bases that are not the export's.
    ("base-fifo", "pe", m_base_fifo, "is a FIFO"),
    ("base-dev-zero", "pe", m_base_zero, "is a character device"),
    ("base-other-model", "pe", m_base_other_model, "as the base's"),
    ("base-float8", "pe", m_base_float8, "expected a dense tensor of a plain dtype"),
    ("base-without-host", "pe", m_base_without_host, "'model.bert.encoder.layer.2.output'"),
]


@pytest.mark.parametrize(
    "mode, mutate, says", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_a_hostile_export_is_refused_in_one_line(tmp_path, capsys, alarm, mode, mutate, says):
    ex = make_export(tmp_path, mode)
    base = mutate(ex)
    code, err = run_load(ex, capsys, base=base)
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith("pekit adapters: "), err
    assert says in lines[0], err
    assert str(ex.folder) in lines[0] or str(base or ex.base) in lines[0], err
    assert not ex.out.exists()


# --- what is accepted ------------------------------------------------------------------------


def assert_bit_for_bit(ex):
    restored = torch.load(str(ex.out))["model"]
    assert sorted(restored) == sorted(ex.trained)
    for name, tensor in ex.trained.items():
        assert restored[name].dtype == tensor.dtype and torch.equal(restored[name], tensor), name


@pytest.mark.parametrize("mode", ["pe", "lora", "bitfit", "fc"])
def test_a_valid_export_loads_bit_for_bit(tmp_path, capsys, mode):
    ex = make_export(tmp_path, mode)
    info = info_of(ex)
    assert info["sizes"]["pe_reduction"] == (REDUCTION if mode == "pe" else None)
    assert info["sizes"]["lora_r"] == (RANK if mode == "lora" else None)
    assert len(info["sizes"]["hosts"]) == {"pe": 1, "lora": 2}.get(mode, 0)
    code, err = run_load(ex, capsys)
    assert code == 0, err
    assert_bit_for_bit(ex)


@pytest.mark.parametrize("mode", ["pe", "lora"])
def test_a_base_that_holds_the_added_tensors_is_accepted(tmp_path, capsys, mode):
    ex = make_export(tmp_path, mode, base_has_added=True)
    code, err = run_load(ex, capsys)
    assert code == 0, err
    assert_bit_for_bit(ex)


@pytest.mark.parametrize("mode", ["pe", "lora"])
def test_an_export_older_than_sizes_is_checked_by_its_own_tensors(tmp_path, capsys, mode):
    ex = make_export(tmp_path, mode)
    info = info_of(ex)
    del info["sizes"]
    write_info(ex, info)
    code, err = run_load(ex, capsys)
    assert code == 0, err
    assert_bit_for_bit(ex)
    # ... and still against the base: one adapter of another shape is refused.
    ex.out.unlink()
    (m_added_shape if mode == "pe" else m_lora_rank)(ex)
    code, err = run_load(ex, capsys)
    assert code == 1 and "expected" in err and len(err.strip().splitlines()) == 1, err
    assert not ex.out.exists()


def test_a_weights_file_linked_inside_the_folder_is_accepted(tmp_path, capsys):
    ex = make_export(tmp_path)
    os.rename(str(ex.folder / adapters.WEIGHTS), str(ex.folder / "real.bin"))
    os.symlink("real.bin", str(ex.folder / adapters.WEIGHTS))
    code, err = run_load(ex, capsys, adapters_arg=ex.folder / adapters.INFO)
    assert code == 0, err
    assert_bit_for_bit(ex)


def test_what_export_writes_is_what_load_checks(tmp_path):
    ex = make_export(tmp_path, "lora")
    info = adapters.read_info(ex.folder)
    assert info.mode_name == "lora" and info.sizes.lora_r == RANK
    assert info.sizes.hosts == {
        f"model.bert.encoder.layer.#.attention.self.{p}": {
            "count": LAYERS,
            "in_features": H,
            "out_features": H,
        }
        for p in ("query", "value")
    }


def test_export_refuses_adapters_no_reduction_explains(tmp_path):
    """An adapter whose two layers disagree is refused at export, before anything is written."""
    frozen = base_tensors()
    trained = dict(frozen)
    trained.update(added_tensors("pe"))
    name = first(trained, "AdaptComb2.weight")
    trained[name] = torch.randn(H, BOTTLENECK + 1)
    config = {"model": "visual_bert", "model_config": {"visual_bert": structure.switches("pe")}}
    torch.save({"model": trained, "config": config}, str(tmp_path / "best.ckpt"))
    with pytest.raises(PekitError, match=r"expected \[16, 4\]"):
        adapters.export(tmp_path / "best.ckpt", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


# --- the tensor file's reader on its own ----------------------------------------------------


@pytest.mark.parametrize(
    "data, says",
    [
        (b"", "0 bytes"),
        (struct.pack("<Q", 2) + b"{}", None),
        (struct.pack("<Q", 2) + b"{}" + b"x", "1 bytes after the last tensor"),
        (struct.pack("<Q", 9) + b'{"a": []}', "expected an object of dtype"),
        (struct.pack("<Q", 7) + b"[1e999]", "not a JSON object"),
        (struct.pack("<Q", 5) + b"NaN  ", "NaN is not JSON"),
    ],
)
def test_the_tensor_file_reader_on_its_own(data, says):
    if says is None:
        assert tensorfile.loads(data) == ({}, {})
        return
    with pytest.raises(tensorfile.TensorFileError, match=says):
        tensorfile.loads(data, "f.safetensors")


def test_bool_tensors_hold_only_zero_and_one():
    data = bytearray(tensorfile.dumps({"b": torch.tensor([True, False])}))
    assert tensorfile.loads(bytes(data))[0]["b"].tolist() == [True, False]
    data[-1] = 7
    with pytest.raises(tensorfile.TensorFileError, match="BOOL"):
        tensorfile.loads(bytes(data))

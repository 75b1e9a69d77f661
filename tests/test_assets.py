"""`pekit assets`: fetch, verify, unpack, mark; resume; checksum mismatch; idempotence; the
transport (proxies, CA bundles, retries, interruptions).

Against a small HTTP server on 127.0.0.1 (tests/helpers/asset_server.py: honours Range, also a
proxy) serving synthetic files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.asset_server import (
    ARCHIVE,
    VOCAB,
    WEIGHTS,
    Server,
    fetch_assets,
    sha,
    tar_gz,
    toy_facts,
)
from pekit import assets, cli
from pekit.assets import AssetFacts, download
from pekit.core.errors import PekitError

_NETWORK_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def _network_settings(monkeypatch):
    """No proxy or CA bundle from the environment running the tests; retries without a pause."""
    for var in _NETWORK_ENV:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setattr(download, "BACKOFF_S", 0)


@pytest.fixture
def server():
    files = {"toy.tar.gz": ARCHIVE, "weights.bin": WEIGHTS, "vocab.txt": VOCAB}
    with Server(files) as s:
        yield s


def test_fetch_verifies_extracts_and_writes_mmf_marker(server, tmp_path):
    results = {r["name"]: r for r in fetch_assets(server, tmp_path)}
    assert results["toy.pretrained"]["status"] == "fetched"
    dest = tmp_path / "data" / "models" / "toy.pretrained.defaults"
    assert (dest / "model" / "config.yaml").read_bytes() == b"model_config: {}\n"
    assert not (dest / "toy.tar.gz").exists(), "the archive is removed once unpacked"
    assert not list(dest.glob("*.part")) and not list(dest.glob(".*.unpacking"))
    # The marker MMF's download_resources() checks before downloading anything.
    marker = json.loads((dest / ".built.json").read_text())
    # MMF's YAML loader reads the zoo's '1.0_2020_05_19' as this float, and compares it.
    assert marker["version"] == 1.020200519 and marker["created_at"]
    # Files that are not archives stay as they are.
    bert = tmp_path / "data" / "hf" / "toy-bert"
    assert (bert / "pytorch_model.bin").read_bytes() == WEIGHTS
    # Unverified assets are skipped unless asked for.
    assert results["toy-unverified"]["status"] == "skipped-unverified"
    assert not (tmp_path / "data" / "models" / "toy-unverified").exists()


def test_transformers_offline_cache_layout(server, tmp_path):
    fetch_assets(server, tmp_path, ["toy-bert"])
    for name, data in (("pytorch_model.bin", WEIGHTS), ("vocab.txt", VOCAB)):
        url = f"https://huggingface.co/toy-bert/resolve/main/{name}"
        cached = hashlib.sha256(url.encode()).hexdigest()
        for cache in (tmp_path / "cache" / "transformers", tmp_path / "cache" / "distributed_-1"):
            assert (cache / cached).read_bytes() == data
            assert json.loads((cache / (cached + ".json")).read_text())["url"] == url


def test_second_run_downloads_nothing(server, tmp_path):
    fetch_assets(server, tmp_path)
    before = len(server.requests)
    again = {r["name"]: r["status"] for r in fetch_assets(server, tmp_path)}
    assert again["toy.pretrained"] == "present" and again["toy-bert"] == "present"
    assert len(server.requests) == before


def test_marker_written_by_mmf_counts_as_present(server, tmp_path):
    dest = tmp_path / "data" / "models" / "toy.pretrained.defaults"
    dest.mkdir(parents=True)
    (dest / ".built.json").write_text(json.dumps({"version": 1.020200519}))
    (result,) = fetch_assets(server, tmp_path, ["toy.pretrained"])
    assert result["status"] == "built-by-mmf" and server.requests == []


def kit_partial(dest, name, data):
    """A partial download a killed `pekit assets fetch` left: the `.part` and its record."""
    part = dest / (name + ".part")
    part.write_bytes(data)
    download._part_record(part).write_text(json.dumps({"file": name}))


def test_resumes_a_partial_download_with_range(server, tmp_path):
    dest = tmp_path / "data" / "models" / "toy.pretrained.defaults"
    dest.mkdir(parents=True)
    half = len(ARCHIVE) // 2
    kit_partial(dest, "toy.tar.gz", ARCHIVE[:half])
    (result,) = fetch_assets(server, tmp_path, ["toy.pretrained"])
    assert result["status"] == "fetched"
    assert server.requests == [("toy.tar.gz", f"bytes={half}-")]
    assert (dest / "model" / "model.pth").is_file()


def test_complete_partial_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "data" / "hf" / "toy-bert"
    dest.mkdir(parents=True)
    kit_partial(dest, "vocab.txt", VOCAB)
    fetch_assets(server, tmp_path, ["toy-bert"])
    assert ("vocab.txt", f"bytes={len(VOCAB)}-") in server.requests  # answered 416: complete
    assert (dest / "vocab.txt").read_bytes() == VOCAB


def test_checksum_mismatch_deletes_partial_and_names_both_hashes(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(PekitError) as err:
        fetch_assets(
            server, tmp_path, ["toy.pretrained"], facts=toy_facts(server.url, archive_sha=wrong)
        )
    msg = str(err.value)
    assert "toy.pretrained" in msg and wrong in msg and sha(ARCHIVE) in msg
    dest = tmp_path / "data" / "models" / "toy.pretrained.defaults"
    assert not (dest / "toy.tar.gz.part").exists() and not (dest / "toy.tar.gz").exists()
    assert not (dest / ".built.json").exists()


def test_unverified_asset_is_refused_when_named_and_fetched_when_allowed(server, tmp_path):
    with pytest.raises(PekitError, match="--allow-unverified"):
        fetch_assets(server, tmp_path, ["toy-unverified"])
    (result,) = fetch_assets(server, tmp_path, ["toy-unverified"], allow_unverified=True)
    assert result["status"] == "fetched"
    assert result["files"]["vocab.txt"] == {"sha256": sha(VOCAB), "verified": False}


def test_group_with_an_unverified_asset_is_refused_before_any_download(server, tmp_path):
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["mmh"])
    assert "toy-unverified (vocab.txt)" in str(err.value)
    assert "--allow-unverified" in str(err.value)
    assert server.requests == [] and not (tmp_path / "data").exists()
    fetched = {
        r["name"]: r["status"]
        for r in fetch_assets(server, tmp_path, ["mmh"], allow_unverified=True)
    }
    assert fetched == {"toy-bert": "fetched", "toy-unverified": "fetched"}


def test_unknown_asset_name_is_a_usage_error(server, tmp_path):
    with pytest.raises(PekitError, match="unknown asset 'nope'"):
        fetch_assets(server, tmp_path, ["nope"])


def test_archive_escaping_its_folder_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tar_gz({"../outside.txt": b"x"}))
    with pytest.raises(PekitError, match="outside"):
        assets.extract(evil, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_cli_fetch_from_a_mirror_exits_nonzero_on_mismatch(server, tmp_path, monkeypatch, capsys):
    facts_file = tmp_path / "assets.json"
    facts = toy_facts("http://unreachable.invalid")
    facts_file.write_text(json.dumps(facts))
    monkeypatch.setattr(assets.specs, "ASSETS_FILE", facts_file)
    server.files.update({"pytorch_model.bin": WEIGHTS, "vocab.txt": VOCAB})
    args = [
        "assets",
        "fetch",
        "--quiet",
        "--data-dir",
        str(tmp_path / "data"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--transformers-cache",
        str(tmp_path / "tc"),
        "--mirror",
        server.url,
    ]
    assert cli.main(args + ["toy.pretrained"]) == 0
    assert "fetched" in capsys.readouterr().out
    facts["assets"][1]["files"][1]["sha256"] = "f" * 64
    facts_file.write_text(json.dumps(facts))
    assert cli.main(args + ["toy-bert"]) == 1
    err = capsys.readouterr().err
    assert "toy-bert" in err and "f" * 64 in err and sha(VOCAB) in err


def test_kit_facts_are_well_formed():
    facts = assets.load_facts()
    names = [a.name for a in facts.assets]
    assert len(names) == len(set(names))
    for asset in facts.assets:
        for f in asset.files:
            assert f.sha256 is None or len(f.sha256) == 64, (asset.name, f.file_name)
    needed = {
        "visual_bert.pretrained.coco",
        "vilbert.pretrained.cc",
        "hateful_memes.features",
        "hateful_memes.extras",
        "bert-base-uncased",
        "frcnn-vg-finetuned",
    }
    assert needed <= set(names)


def _zoo_node(zoo, dotted):
    """(node, version) at a dotted key of a zoo YAML; the version of the nearest ancestor."""
    node, version = zoo, None
    for part in dotted.split("."):
        if isinstance(node, dict) and "version" in node:
            version = node["version"]
        node = node[part]
    if isinstance(node, dict) and "version" in node:
        version = node["version"]
    return node, version


@pytest.mark.mmf
def test_mmf_assets_match_the_zoo_at_the_pinned_commit(mmf_checkout):
    """URLs, file names, hashes, versions and places agree with MMF's zoo YAML files."""
    # MMF reads the zoo with OmegaConf, whose YAML loader keeps '1.0_2020_05_19' a string.
    omegaconf = pytest.importorskip("omegaconf")
    for asset in assets.load_facts().assets:
        source = asset.source or ""
        if not source.startswith("mmf/configs/zoo/"):
            continue
        path, key = source.split(": ")
        conf = omegaconf.OmegaConf.load(str(Path(mmf_checkout) / path))
        zoo = omegaconf.OmegaConf.to_container(conf, resolve=False)
        node, version = _zoo_node(zoo, key)
        resources = node["resources"] if isinstance(node, dict) else node
        assert assets.marker_value(asset.marker_version) == version, asset.name
        for spec, res in zip(asset.files, resources):
            assert (spec.url, spec.file_name, spec.sha256) == (
                res["url"],
                res["file_name"],
                res["hashcode"],
            ), asset.name
        if path.endswith("models.yaml"):
            # MMF downloads zoo key K into models/K, or models/K.defaults when K's node only
            # names its `defaults` (mmf/utils/download.py download_pretrained_model).
            name_node, _ = _zoo_node(zoo, asset.name)
            if "version" in name_node:
                assert asset.dest == f"models/{asset.name}"
            else:
                assert name_node["defaults"] == "${" + key + "}"
                assert asset.dest == f"models/{asset.name}.defaults"


def test_transformers_loads_the_layout_offline(server, tmp_path):
    """transformers (the pinned 4.10, offline) finds config, tokenizer and weights by hub name."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    if transformers.__version__ != "4.10.1":
        pytest.skip(f"needs transformers 4.10.1, found {transformers.__version__}")
    from transformers import BertConfig, BertForPreTraining

    src = tmp_path / "tiny"
    config = BertConfig(
        vocab_size=8,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    BertForPreTraining(config).save_pretrained(str(src))
    vocab = b"\n".join([b"[PAD]", b"[UNK]", b"[CLS]", b"[SEP]", b"[MASK]", b"hello", b"world"])
    files = {
        "config.json": (src / "config.json").read_bytes(),
        "pytorch_model.bin": (src / "pytorch_model.bin").read_bytes(),
        "vocab.txt": vocab + b"\n",
        "tokenizer_config.json": b'{"do_lower_case": true}',
    }
    server.files.update(files)
    facts = toy_facts(server.url)
    facts["assets"][1]["transformers_model"] = "bert-base-uncased"
    facts["assets"][1]["files"] = [
        {"url": f"{server.url}/{n}", "file_name": n, "sha256": sha(d), "extract": False}
        for n, d in files.items()
    ]
    fetch_assets(server, tmp_path, ["toy-bert"], facts=facts)
    cache = tmp_path / "cache"
    probe = (
        "import os, sys\n"
        "from transformers import AutoTokenizer, BertConfig, BertForPreTraining\n"
        "cfg = BertConfig.from_pretrained('bert-base-uncased')\n"
        "tok = AutoTokenizer.from_pretrained('bert-base-uncased')\n"
        "m = BertForPreTraining.from_pretrained('bert-base-uncased', cache_dir=sys.argv[1])\n"
        "print(cfg.hidden_size, tok.tokenize('hello world'), type(m).__name__)\n"
    )
    env = dict(
        os.environ,
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_CACHE=str(cache / "transformers"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(cache / "distributed_-1")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    assert "8 ['hello', 'world'] BertForPreTraining" in out


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda f: f["assets"][0]["files"][0].update(file_name="../escape.tar.gz"), "file_name"),
        (lambda f: f["assets"][0].update(dest="../../outside"), "dest"),
        (lambda f: f["assets"][0]["files"][0].update(sha256="abc"), "64 hex digits"),
        (lambda f: f["assets"][1]["files"][0].update(size=-1), "size"),
        (lambda f: f.update(assets="all"), "'assets'"),
    ],
)
def test_asset_facts_are_checked_when_read(change, says):
    facts = toy_facts("http://localhost")
    change(facts)
    with pytest.raises(PekitError, match=says):
        AssetFacts.from_dict(facts)


# --------------------------------------------------------------------------------------------
# The transport: proxies, CA bundles, retries, interruptions


TOY = Path("models") / "toy.pretrained.defaults"


def _published(tmp_path):
    """What of toy.pretrained is in place: anything in its folder but the kit's partial download
    (the `.part` and its record)."""
    dest = tmp_path / "data" / TOY
    partial = {"toy.tar.gz.part", ".toy.tar.gz.part.pekit.json"}
    return sorted(p.name for p in dest.iterdir() if p.name not in partial) if dest.is_dir() else []


def _at(facts, host):
    """`facts` with every file's URL on `host`, a name that resolves nowhere: only a proxy
    answers for it."""
    facts["url_prefixes"] = {"test://": host + "/"}
    for asset in facts["assets"]:
        for f in asset["files"]:
            f["url"] = "test://" + f["url"].rsplit("/", 1)[-1]
    return facts


def test_a_proxy_from_the_environment_is_used(server, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", server.url)
    facts = _at(toy_facts(server.url), "http://assets.pekit.invalid")
    server.files.update({"pytorch_model.bin": WEIGHTS})
    results = {r["name"]: r["status"] for r in fetch_assets(server, tmp_path, ["hmd"], facts=facts)}
    assert results == {"toy.pretrained": "fetched", "toy-bert": "fetched"}
    # A proxy is asked for the absolute URL; the name .invalid resolves nowhere else.
    assert "http://assets.pekit.invalid/toy.tar.gz" in server.proxied
    assert "http://assets.pekit.invalid/vocab.txt" in server.proxied
    assert (tmp_path / "data" / TOY / "model" / "model.pth").is_file()


def test_https_goes_through_the_https_proxy_and_a_refusal_is_one_line(
    server, tmp_path, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", server.url)
    facts = _at(toy_facts(server.url), "https://assets.pekit.invalid")
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["toy.pretrained"], facts=facts)
    msg = str(err.value)
    assert "CONNECT assets.pekit.invalid:443" in server.proxied
    assert "https://assets.pekit.invalid/toy.tar.gz" in msg and "proxy" in msg and "403" in msg
    assert "\n" not in msg
    assert _published(tmp_path) == []


def test_no_proxy_is_honoured(server, tmp_path, monkeypatch):
    with Server({}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        (result,) = fetch_assets(server, tmp_path, ["toy.pretrained"])
        assert result["status"] == "fetched"
        assert proxy.requests == [] and proxy.proxied == []
    assert server.requests == [("toy.tar.gz", None)]


@pytest.mark.parametrize("status", [503, 429])
def test_a_transient_error_answer_is_retried(server, tmp_path, status):
    server.fail_status = status
    server.fail["toy.tar.gz"] = 2
    (result,) = fetch_assets(server, tmp_path, ["toy.pretrained"])
    assert result["status"] == "fetched"
    assert server.requests == [("toy.tar.gz", None)] * 3
    assert (tmp_path / "data" / TOY / "model" / "model.pth").is_file()


def test_a_lasting_error_answer_ends_in_one_line(server, tmp_path):
    server.fail["toy.tar.gz"] = -1
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["toy.pretrained"])
    msg = str(err.value)
    assert msg == (
        f"asset toy.pretrained: {server.url}/toy.tar.gz: HTTP 503 Service Unavailable"
    ), msg
    assert len(server.requests) == 1 + download.RETRIES
    assert _published(tmp_path) == []


def test_an_unreachable_server_ends_in_one_line(server, tmp_path):
    facts = toy_facts("http://127.0.0.1:1")  # nothing listens on port 1
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["toy.pretrained"], facts=facts)
    msg = str(err.value)
    assert msg.startswith("asset toy.pretrained: http://127.0.0.1:1/toy.tar.gz: cannot download (")
    assert "\n" not in msg
    assert _published(tmp_path) == []


def test_an_interrupted_download_resumes(server, tmp_path):
    server.cut["toy.tar.gz"] = 1
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["toy.pretrained"])
    msg = str(err.value)
    assert f"{server.url}/toy.tar.gz" in msg and "run the command again to resume" in msg
    assert "\n" not in msg
    part = tmp_path / "data" / TOY / "toy.tar.gz.part"
    half = len(ARCHIVE) // 2
    assert part.read_bytes() == ARCHIVE[:half]
    assert _published(tmp_path) == []
    (result,) = fetch_assets(server, tmp_path, ["toy.pretrained"])
    assert result["status"] == "fetched"
    assert server.requests == [("toy.tar.gz", None), ("toy.tar.gz", f"bytes={half}-")]
    assert (tmp_path / "data" / TOY / "model" / "model.pth").is_file() and not part.exists()


def test_a_wrong_file_is_refused_with_nothing_published(server, tmp_path):
    """A file whose sha256 is not the recorded one: not in place, not in transformers' cache,
    not in the asset's record."""
    server.files["vocab.txt"] = b"[PAD]\n[UNK]\nsomething else\n"
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["toy-bert"])
    msg = str(err.value)
    assert "toy-bert" in msg and sha(VOCAB) in msg and sha(server.files["vocab.txt"]) in msg
    assert "\n" not in msg
    dest = tmp_path / "data" / "hf" / "toy-bert"
    assert not (dest / "vocab.txt").exists() and not (dest / "vocab.txt.part").exists()
    assert not list(dest.glob(".pekit-asset.*")) and not (tmp_path / "cache").exists()


def test_a_gzip_encoded_archive_is_kept_as_sent(server, tmp_path):
    """Some servers send a .tar.gz as Content-Encoding gzip: its sha256 is of the bytes sent."""
    server.gzip.add("toy.tar.gz")
    (result,) = fetch_assets(server, tmp_path, ["toy.pretrained"])
    assert result["files"]["toy.tar.gz"]["sha256"] == sha(ARCHIVE)


def test_without_requests_the_refusal_names_the_package(server, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "requests", None)
    with pytest.raises(PekitError) as err:
        fetch_assets(server, tmp_path, ["toy.pretrained"])
    assert "'requests'" in str(err.value) and "pip install requests" in str(err.value)
    assert server.requests == [] and not (tmp_path / "data").exists()


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key, made by openssl (skipped without it)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed here")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"openssl made no certificate: {proc.stderr.decode()[-200:]}")
    return cert, key


def test_a_ca_bundle_from_the_environment_is_trusted(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert), str(key))
    with Server({"toy.tar.gz": ARCHIVE}, tls=tls) as https:
        with pytest.raises(PekitError) as err:
            fetch_assets(https, tmp_path, ["toy.pretrained"])
        msg = str(err.value)
        assert f"{https.url}/toy.tar.gz: cannot download (" in msg and "\n" not in msg
        assert "REQUESTS_CA_BUNDLE" in msg
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        (result,) = fetch_assets(https, tmp_path, ["toy.pretrained"])
        assert result["status"] == "fetched"

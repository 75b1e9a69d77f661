"""Fetching assets: download (resuming, sha256-checked), unpack, MMF's `.built.json` markers,
and transformers' offline cache; what is already there.

Downloads go through requests, imported by the function that downloads: it reads proxies
(HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and CA bundles (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) from the
environment as clusters set them, and everything else here loads with the standard library alone.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
from pathlib import Path

from ..core import atomic, jsonfile, ownership, schema
from ..core.digests import sha256_file
from ..core.errors import PekitError
from ..data.archive import extract_checked
from ..data.paths import mmf_cache_dir, mmf_data_dir
from .specs import ASSETS_FILE, load_facts

MMF_MARKER = ".built.json"
CHUNK = 1 << 20
TIMEOUT_S = 60  # to connect, and between two reads
USER_AGENT = "pekit-assets"
# A connection that fails, or an answer that says "later", is tried again RETRIES times: at
# once, then after 2, 4, 8, 16 x BACKOFF_S seconds (urllib3's backoff), or the server's Retry-After.
RETRIES = 5
BACKOFF_S = 1.0
RETRY_STATUSES = (429, 500, 502, 503, 504)


def default_transformers_cache():
    """Where transformers 4.10 caches hub files: $TRANSFORMERS_CACHE, else $HF_HOME/transformers."""
    for var in (
        "TRANSFORMERS_CACHE",
        "PYTORCH_TRANSFORMERS_CACHE",
        "PYTORCH_PRETRAINED_BERT_CACHE",
    ):
        if os.environ.get(var):
            return Path(os.environ[var])
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(hf_home) / "transformers"


def record_path(asset, data_dir):
    return Path(data_dir) / asset.dest / f".pekit-asset.{asset.name}.json"


def _refetch(asset):
    return f"; remove it and fetch the asset again (pekit assets fetch {asset.name})"


# A file's name in the asset's folder: no folder, nothing above it.
_FILE_NAME = re.compile(r"^(?!\.\.?$)[^/\x00]{1,255}$")


def read_record(asset, data_dir):
    """{file name: {"sha256", "verified"}} of the kit's record of `asset` in `data_dir` (None
    when there is none), every field checked: a broken record is refused in one line naming it."""
    path = record_path(asset, data_dir)
    if not os.path.lexists(str(path)):
        return None
    doc = jsonfile.load(path, "asset record")
    check = schema.Fields(path, _refetch(asset))
    check.string(doc.get("name"), "name", choices=(asset.name,))
    check.string(doc.get("source"), "source", optional=True, limit=4096)
    files = check.obj(doc.get("files"), "files")
    for name, info in files.items():
        at = f"files.{schema.key(name)}"
        check.string(name, at, pattern=_FILE_NAME, what="a file name")
        check.obj(info, at)
        sha = check.sha256(info.get("sha256"), f"{at}.sha256", optional=True)
        if check.boolean(info.get("verified"), f"{at}.verified", optional=True) and sha is None:
            check.refuse(f"{at}.sha256", sha, "the sha256 of a verified file")
    return files


def read_marker(asset, dest):
    """The version in MMF's `.built.json` marker in `dest` (None when there is none), checked;
    MMF writes its zoo version there: a number or a string."""
    path = Path(dest) / MMF_MARKER
    if not os.path.lexists(str(path)):
        return None
    doc = jsonfile.load(path, "MMF's download marker")
    check = schema.Fields(path, _refetch(asset))
    check.string(doc.get("created_at"), "created_at", optional=True, limit=64)
    version = doc.get("version")
    if isinstance(version, str):
        return check.string(version, "version", empty=False, limit=64, what="a zoo version")
    return check.number(version, "version")


# ---------------------------------------------------------------------------------------------
# State


def state(asset, data_dir):
    """'present' (fetched by the kit and matching the facts), 'built-by-mmf', or 'missing'. A
    broken record or marker is refused (a PekitError naming it)."""
    dest = Path(data_dir) / asset.dest
    recorded = read_record(asset, data_dir)
    if recorded is not None:
        ok = True
        for f in asset.files:
            got = recorded.get(f.file_name)
            if not got or (f.sha256 and got.get("sha256") != f.sha256):
                ok = False
            elif not f.extract and not (dest / f.file_name).is_file():
                ok = False
        if ok and _marker_ok(asset, dest):
            return "present"
    if asset.marker_version and _marker_ok(asset, dest):
        return "built-by-mmf"
    return "missing"


# YAML 1.1's float pattern, which MMF's YAML loader (OmegaConf's) applies to zoo versions.
_YAML11_FLOAT = re.compile(r"^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?$")


def marker_value(zoo_version):
    """The version value MMF compares with its `.built.json`.

    MMF reads the zoo with a YAML 1.1 loader, to which '1.0_2020_05_19' is the float
    1.020200519: that number is what MMF writes into `.built.json` and compares on the next
    run, so a marker holding the string would make MMF download again.
    """
    if isinstance(zoo_version, str) and _YAML11_FLOAT.match(zoo_version):
        return float(zoo_version.replace("_", ""))
    return zoo_version


def _marker_ok(asset, dest):
    version = asset.marker_version
    if not version:
        return True
    marker = read_marker(asset, dest)
    return marker is not None and marker == marker_value(version)


def write_mmf_marker(dest, zoo_version):
    """MMF's own format (mmf/utils/download.py mark_done): created_at + version."""
    atomic.write_text(
        Path(dest) / MMF_MARKER,
        json.dumps(
            {"created_at": str(datetime.datetime.today()), "version": marker_value(zoo_version)}
        ),
    )


# ---------------------------------------------------------------------------------------------
# Download


class _NoProgress:
    def start(self, label, done, total):
        pass

    def update(self, n):
        pass

    def close(self):
        pass


def _transport():
    """requests, and urllib3's Retry and base error; a missing package is one line naming it and
    the fix."""
    try:
        import requests
        import requests.adapters
        from urllib3.exceptions import HTTPError as Urllib3Error
        from urllib3.util import Retry
    except ImportError as e:
        raise PekitError(
            f"downloading assets needs the Python package '{e.name or 'requests'}', which "
            f"{sys.executable} lacks: install it ({sys.executable} -m pip install requests) or "
            "run pekit in the kit's environment"
        ) from e
    return requests, Retry, Urllib3Error


def _session():
    """A requests session that retries (RETRIES) a failed connection and a 429 or 5xx answer,
    pausing longer each time; the last answer is returned, not raised, so an error names it."""
    requests, Retry, _ = _transport()
    retry = Retry(
        total=RETRIES,
        backoff_factor=BACKOFF_S,
        status_forcelist=RETRY_STATUSES,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # identity: the sha256 is of the file as published, which is what is written.
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return session


def _causes(error):
    """`error` and the errors it wraps, outermost first: requests wraps urllib3's error, which
    wraps the socket's (in args, `reason`, or as the cause)."""
    found, todo = [], [error]
    while todo:
        e = todo.pop(0)
        if isinstance(e, BaseException) and not any(e is f for f in found):
            found.append(e)
            todo += [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
    return found


def _why(error):
    """The innermost reason of a transport error, in one line ('[Errno 111] Connection
    refused'), with what to check when it is a proxy or a certificate."""
    requests, _, _ = _transport()
    causes = _causes(error)
    why = " ".join(str(causes[-1]).split()) or type(causes[-1]).__name__
    if isinstance(error, requests.exceptions.ProxyError):
        return f"through the proxy: {why}; check HTTPS_PROXY, HTTP_PROXY and NO_PROXY"
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in causes):
        return f"{why}; behind a TLS-inspecting proxy, set REQUESTS_CA_BUNDLE to its CA bundle"
    return why


def _short_read(error):
    """Whether `error` is the connection closing before Content-Length bytes came."""
    return any(isinstance(e, http.client.IncompleteRead) for e in _causes(error))


def download(url, part, progress=None, timeout=TIMEOUT_S):
    """Download `url` into `part`, resuming from its current size. Returns the sha256 of `part`.

    The partial file is kept on a network error, so the next call resumes; a server that ignores
    Range (answers 200) makes it start over.
    """
    _, _, Urllib3Error = _transport()
    failures = (OSError, Urllib3Error)  # requests' errors are OSErrors
    progress = progress or _NoProgress()
    part = Path(part)
    offset = part.stat().st_size if part.exists() else 0
    digest = hashlib.sha256()
    if offset:
        with open(str(part), "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with _session() as session:
        try:
            response = session.get(url, headers=headers, stream=True, timeout=timeout)
        except failures as e:
            raise PekitError(f"{url}: cannot download ({_why(e)})") from e
        with response:
            status = response.status_code
            if status == 416 and offset:
                # Range starts at the end: the partial file is already complete.
                return digest.hexdigest()
            if status >= 400:
                raise PekitError(f"{url}: HTTP {status} {response.reason}")
            mode = "ab"
            if offset and status == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {offset}-"):
                    raise PekitError(
                        f"{url}: asked for bytes {offset}- but the server sent '{content_range}'"
                    )
            else:
                offset, mode, digest = 0, "wb", hashlib.sha256()
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            progress.start(part.name[: -len(".part")], offset, total)
            try:
                with open(str(part), mode) as out:
                    while True:
                        # The bytes as sent: a .tar.gz served as Content-Encoding gzip stays so.
                        block = response.raw.read(CHUNK, decode_content=False)
                        if not block:
                            break
                        out.write(block)
                        digest.update(block)
                        progress.update(len(block))
            except failures as e:
                # A body shorter than its Content-Length: urllib3 2 raises, 1.x (the paper
                # profile's) ends it; either way it is reported below, in the same words.
                if total is None or not _short_read(e):
                    raise PekitError(
                        f"{url}: download interrupted ({_why(e)}); {part} is kept, run the "
                        "command again to resume"
                    ) from e
            finally:
                progress.close()
            if total is not None and part.stat().st_size < total:
                raise PekitError(
                    f"{url}: the connection closed after {part.stat().st_size} of {total} "
                    f"bytes; {part} is kept, run the command again to resume"
                )
    return digest.hexdigest()


def _read_proof(path):
    """A record the kit wrote to prove a file is its own (JSON object), or None when there is
    none or it cannot be read: an unreadable proof proves nothing, and the file is refused."""
    if not os.path.lexists(str(path)):
        return None
    try:
        doc = jsonfile.load(path, "pekit's record")
    except PekitError:
        return None
    return doc if isinstance(doc, dict) else None


def _part_record(part):
    """Beside a partial download, the kit's record that it is one of its own."""
    return part.with_name(f".{part.name}.pekit.json")


def _check_part(part, file_name):
    """Refuse a `.part` file the kit did not start (no record of it beside it): pekit resumes,
    truncates or deletes only its own partial downloads."""
    if not os.path.lexists(str(part)):
        return
    doc = _read_proof(_part_record(part))
    if (
        part.is_symlink()
        or not part.is_file()
        or not (isinstance(doc, dict) and doc.get("file") == file_name)
    ):
        raise ownership.refuse(
            part,
            "not a partial download pekit started (no record of it)",
            INSTEAD,
        )


def _check_final(final, recorded, expected):
    """Whether `final` is there already as the asset wants it (its sha256, or None); refuse one
    that is neither that nor the kit's earlier download (`recorded`: the asset record's files,
    each with its sha256): pekit replaces only what it recorded downloading."""
    if not os.path.lexists(str(final)):
        return None
    if final.is_symlink() or not final.is_file():
        raise ownership.refuse(final, "where pekit downloads an asset's file", INSTEAD)
    sha = sha256_file(final)
    if expected and sha == expected:
        return sha
    got = recorded.get(final.name) if isinstance(recorded, dict) else None
    if not (isinstance(got, dict) and got.get("sha256") == sha):
        raise ownership.refuse(
            final,
            f"not the asset's file (sha256 {sha}) nor one pekit recorded downloading",
            INSTEAD,
        )
    return None


INSTEAD = "choose another --data-dir"


def fetch_file(
    asset, spec, dest, facts, allow_unverified=False, mirror=None, progress=None, recorded=None
):
    """Download one file of `asset` into `dest`, verified; returns (path, sha256, verified,
    downloaded: whether this call downloaded it). `recorded`: the files of the asset's record
    (what the kit downloaded before, and may replace)."""
    final = Path(dest) / spec.file_name
    part = final.with_name(final.name + ".part")
    expected = spec.sha256
    if not expected and not allow_unverified:
        raise PekitError(
            f"asset {asset.name}: {spec.file_name} has no recorded sha256 in "
            f"{ASSETS_FILE.name}; pass --allow-unverified to download it and print its hash"
        )
    url = facts.url(spec, mirror)
    if _check_final(final, recorded, expected):
        return final, expected, True, False
    _check_part(part, spec.file_name)
    atomic.write_json(
        _part_record(part),
        {"about": "pekit: the partial download beside it is pekit's", "file": spec.file_name},
    )
    try:
        got = download(url, part, progress)
    except PekitError as e:
        raise PekitError(f"asset {asset.name}: {e}") from e
    if expected and got != expected:
        _remove_part(part)
        raise PekitError(
            f"asset {asset.name}: checksum mismatch for {spec.file_name} from {url}: "
            f"expected sha256 {expected}, got {got}; the partial download was deleted"
        )
    size = spec.size
    if size is not None and part.stat().st_size != size:
        actual = part.stat().st_size
        _remove_part(part)
        raise PekitError(
            f"asset {asset.name}: {spec.file_name} is {actual} bytes, expected {size}; "
            "the partial download was deleted"
        )
    os.replace(str(part), str(final))
    _remove_part(part)
    return final, got, bool(expected), True


def _remove_part(part):
    for path in (part, _part_record(part)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path))


# ---------------------------------------------------------------------------------------------
# Unpacking


UNPACKING_MARK = ".pekit-unpacking"  # in the kit's unpacking folder


def extract(archive, dest, owned=()):
    """Unpack `archive` into `dest`: into a temporary folder first, then moved into place; an
    entry already in `dest` is replaced only when named in `owned` (what the kit unpacked
    there before, by its record); anything else there refuses the whole archive. Returns the
    names of the entries unpacked."""
    archive, dest = Path(archive), Path(dest)
    tmp = dest / f".{archive.name}.unpacking"
    if os.path.lexists(str(tmp)):
        if not ownership.remove_marked(tmp, UNPACKING_MARK):
            if not ownership.is_empty_folder(tmp):
                raise ownership.refuse(tmp, "where pekit unpacks an archive for a moment", INSTEAD)
            tmp.rmdir()
    tmp.mkdir(parents=True)
    (tmp / UNPACKING_MARK).write_text("made by pekit assets: an archive, unpacked for a moment\n")
    try:
        extract_checked(archive, tmp)
        entries = sorted(e for e in tmp.iterdir() if e.name != UNPACKING_MARK)
        for entry in entries:  # every one checked before any is moved
            there = dest / entry.name
            if os.path.lexists(str(there)) and entry.name not in set(owned):
                raise ownership.refuse(
                    there, f"not unpacked there by pekit (from {archive.name})", INSTEAD
                )
        for entry in entries:
            atomic.swap_into_place(entry, dest / entry.name)
        return [e.name for e in entries]
    finally:
        ownership.remove_marked(tmp, UNPACKING_MARK)


# ---------------------------------------------------------------------------------------------
# transformers' offline cache


def transformers_cache_name(url):
    """transformers 4.10's cache file name for `url` fetched without an etag (url_to_filename)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def link_transformers_cache(asset, dest, facts, cache_dirs):
    """Make `from_pretrained(<model>)` find the asset's files offline in each of `cache_dirs`."""
    model = asset.transformers_model
    if not model:
        return []
    template = facts.cache_url_template
    placed = []
    for spec in asset.files:
        src = Path(dest) / spec.file_name
        url = template.format(model=model, file_name=spec.file_name)
        name = transformers_cache_name(url)
        for cache in cache_dirs:
            target = Path(cache) / name
            if not (target.is_file() and target.stat().st_size == src.stat().st_size):
                atomic.link_or_copy(src, target)
            atomic.write_json(Path(cache) / (name + ".json"), {"url": url, "etag": None})
            placed.append(target)
    return placed


# ---------------------------------------------------------------------------------------------
# The whole step


def fetch_asset(
    asset,
    data_dir,
    facts,
    cache_dirs=(),
    allow_unverified=False,
    mirror=None,
    keep_archives=False,
    progress=None,
):
    """Fetch one asset unless present. Returns a result dict (name, status, dest, files)."""
    dest = Path(data_dir) / asset.dest
    current = state(asset, data_dir)
    result = {"name": asset.name, "dest": str(dest), "status": current, "files": {}}
    if current == "missing":
        _transport()  # a missing package is refused before anything is written
        dest.mkdir(parents=True, exist_ok=True)
        earlier = _read_proof(record_path(asset, data_dir))
        owned = earlier.get("extracted", []) if isinstance(earlier, dict) else []
        owned = [n for n in owned if isinstance(n, str)] if isinstance(owned, list) else []
        recorded = earlier.get("files") if isinstance(earlier, dict) else None
        for spec in asset.files:  # what is in the way, refused before any download
            _check_final(dest / spec.file_name, recorded, spec.sha256)
            _check_part(dest / (spec.file_name + ".part"), spec.file_name)
        files, extracted = {}, []
        for spec in asset.files:
            path, sha, verified, downloaded = fetch_file(
                asset, spec, dest, facts, allow_unverified, mirror, progress, recorded
            )
            if spec.extract:
                try:
                    extracted += extract(path, dest, owned)
                except ownership.OwnershipError:
                    if downloaded and not keep_archives:
                        path.unlink()  # refused: nothing of this fetch is left behind
                    raise
                if not keep_archives and downloaded:
                    path.unlink()  # the kit's download; an archive the user put there stays
            files[spec.file_name] = {"sha256": sha, "verified": verified}
        if asset.marker_version:
            write_mmf_marker(dest, asset.marker_version)
        atomic.write_json(
            record_path(asset, data_dir),
            {
                "name": asset.name,
                "source": asset.source,
                "files": files,
                # What a later fetch may replace (pekit.core.ownership).
                "extracted": sorted(set(extracted)),
            },
        )
        result.update(status="fetched", files=files)
    elif current == "present":
        result["files"] = read_record(asset, data_dir) or {}
    if current != "built-by-mmf":
        result["linked"] = [str(p) for p in link_transformers_cache(asset, dest, facts, cache_dirs)]
    return result


def fetch(
    names=None,
    data_dir=None,
    cache_dir=None,
    transformers_cache=None,
    facts=None,
    allow_unverified=False,
    mirror=None,
    keep_archives=False,
    progress=None,
):
    """Fetch the named assets or groups (default: all). Unverified assets are skipped when none
    is named; naming one, alone or in a group, without --allow-unverified is a refusal."""
    facts = facts or load_facts()
    cache_dir = Path(cache_dir) if cache_dir else mmf_cache_dir()
    data_dir = mmf_data_dir(data_dir, cache_dir)
    transformers_cache = (
        Path(transformers_cache) if transformers_cache else default_transformers_cache()
    )
    cache_dirs = [transformers_cache, cache_dir / facts.mmf_cache_subdir]
    chosen = facts.select(names)
    unverified = [a for a in chosen if not a.verified]
    if names and unverified and not allow_unverified:
        # Refused before anything is downloaded, so a group is fetched whole or not at all.
        unknown = "; ".join(
            f"{a.name} ({', '.join(f.file_name for f in a.files if not f.sha256)})"
            for a in unverified
        )
        raise PekitError(
            f"no recorded sha256 in {ASSETS_FILE.name} for {unknown}; pass "
            "--allow-unverified to download anyway and print the hash, or name only the "
            "verified assets (`pekit assets list`)"
        )
    results = []
    for asset in chosen:
        if not asset.verified and not allow_unverified:
            results.append(
                {
                    "name": asset.name,
                    "status": "skipped-unverified",
                    "dest": str(data_dir / asset.dest),
                    "files": {},
                }
            )
            continue
        results.append(
            fetch_asset(
                asset,
                data_dir,
                facts,
                cache_dirs,
                allow_unverified,
                mirror,
                keep_archives,
                progress,
            )
        )
    return results

"""A small HTTP server on 127.0.0.1 (honours Range, also a proxy) serving synthetic assets, the
facts that describe them, and `pekit assets fetch` against it into a test's folder."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading

from pekit import assets
from pekit.assets import AssetFacts


class Server:
    """Serves `files` by name; also a proxy (a request for an absolute URL is served by the
    URL's last part, and recorded in `proxied`; a CONNECT is recorded and refused)."""

    def __init__(self, files, tls=None):
        self.files = files  # name -> bytes
        self.requests = []  # (path, Range header or None)
        self.proxied = []  # absolute URLs, and CONNECT host:port
        self.fail = {}  # name -> how many 503 answers (or 429: fail_status) come first; -1: all
        self.fail_status = 503
        self.cut = {}  # name -> how many answers stop halfway through the body
        self.gzip = set()  # names served with Content-Encoding: gzip (as some servers do .gz)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_CONNECT(self):  # noqa: N802 (http.server's name)
                owner.proxied.append(f"CONNECT {self.path}")
                self.send_error(403)

            def do_GET(self):  # noqa: N802 (http.server's name)
                name = self.path
                if name.startswith("http://"):
                    owner.proxied.append(name)
                    name = name.rsplit("/", 1)[-1]
                name = name.lstrip("/")
                rng = self.headers.get("Range")
                owner.requests.append((name, rng))
                body = owner.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                if owner.fail.get(name):
                    owner.fail[name] -= 1
                    self.send_error(owner.fail_status)
                    return
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[len("bytes=") :].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                if name in owner.gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                if owner.cut.get(name):
                    owner.cut[name] -= 1
                    # Half the body, then the connection closes (HTTP/1.0: after this answer).
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def tar_gz(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


ARCHIVE = tar_gz(
    {
        "model/config.yaml": b"model_config: {}\n",
        "model/model.pth": os.urandom(300_000),
    }
)
WEIGHTS = os.urandom(200_000)
VOCAB = b"[PAD]\n[UNK]\nhello\n"


def toy_facts(base, archive_sha=None):
    return {
        "schema": 1,
        "url_prefixes": {"test://": base + "/"},
        "transformers_cache": {
            "url_template": "https://huggingface.co/{model}/resolve/main/{file_name}",
            "mmf_cache_subdir": "distributed_-1",
        },
        "assets": [
            {
                "name": "toy.pretrained",
                "used_by": ["hmd"],
                "dest": "models/toy.pretrained.defaults",
                "marker_version": "1.0_2020_05_19",
                "files": [
                    {
                        "url": "test://toy.tar.gz",
                        "file_name": "toy.tar.gz",
                        "sha256": archive_sha or sha(ARCHIVE),
                        "extract": True,
                    }
                ],
            },
            {
                "name": "toy-bert",
                "used_by": ["hmd", "mmh"],
                "dest": "hf/toy-bert",
                "marker_version": None,
                "transformers_model": "toy-bert",
                "files": [
                    {
                        "url": base + "/weights.bin",
                        "file_name": "pytorch_model.bin",
                        "sha256": sha(WEIGHTS),
                        "size": len(WEIGHTS),
                        "extract": False,
                    },
                    {
                        "url": base + "/vocab.txt",
                        "file_name": "vocab.txt",
                        "sha256": sha(VOCAB),
                        "extract": False,
                    },
                ],
            },
            {
                "name": "toy-unverified",
                "used_by": ["mmh"],
                "dest": "models/toy-unverified",
                "marker_version": None,
                "files": [
                    {
                        "url": base + "/vocab.txt",
                        "file_name": "vocab.txt",
                        "sha256": None,
                        "extract": False,
                    }
                ],
            },
        ],
    }


def fetch_assets(server, tmp_path, names=None, facts=None, **kw):
    return assets.fetch(
        names,
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        transformers_cache=tmp_path / "cache" / "transformers",
        facts=AssetFacts.from_dict(facts or toy_facts(server.url)),
        **kw,
    )

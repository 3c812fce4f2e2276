"""A minimal Hugging Face Hub on 127.0.0.1 for the validator's hub path: model info, HEAD and GET of files.

It speaks the subset of the Hub protocol huggingface_hub uses for ``model_info(files_metadata=True)`` and
``hf_hub_download`` (X-Repo-Commit, ETag, Content-Length, X-Error-Code), records every request path, and can
list files it does not serve (weights, with their real sizes) so a test proves they are never requested.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    files: dict[str, bytes]
    listed_only: dict[str, int] = field(default_factory=dict)  # name -> size, listed but never served
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False
    delay_s: float = 0.0


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    auth_headers: list[str | None] = field(default_factory=list)
    bytes_served: int = 0
    file_bytes_served: int = 0  # bodies of /resolve/ downloads only
    url: str = ""

    def add_folder(self, repo_id: str, folder: Path, **kwargs: object) -> Repo:
        files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        repo = Repo(files=files, **kwargs)  # type: ignore[arg-type]
        self.repos[repo_id] = repo
        return repo

    def file_requests(self) -> list[str]:
        """Paths of files requested through /resolve/ (HEAD or GET), without the repo and revision."""
        out = []
        for _, path in self.requests:
            if "/resolve/" in path:
                out.append(path.split("/resolve/", 1)[1].split("/", 1)[1])
        return out


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            return

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def _send(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)
                hub.bytes_served += len(body)

        def _error(self, status: int, code: str, send_body: bool) -> None:
            self._send(
                status,
                {"X-Error-Code": code, "X-Error-Message": code},
                b'{"error":"' + code.encode() + b'"}',
                send_body,
            )

        def _serve(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            hub.auth_headers.append(self.headers.get("authorization"))
            if path.startswith("/api/models/"):
                rest = path[len("/api/models/") :]
                repo_id = "/".join(rest.split("/")[:2])
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", body)
                time.sleep(repo.delay_s)
                siblings = [{"rfilename": n, "size": len(d)} for n, d in repo.files.items()]
                siblings += [{"rfilename": n, "size": s} for n, s in repo.listed_only.items()]
                info = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "siblings": siblings, "gated": repo.gated}
                return self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), body)
            parts = path.lstrip("/").split("/")
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id, name = f"{parts[0]}/{parts[1]}", "/".join(parts[4:])
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", body)
                headers = {"X-Repo-Commit": repo.sha}
                if repo.gated and not self.headers.get("authorization"):
                    return self._send(
                        401, {**headers, "X-Error-Code": "GatedRepo", "X-Error-Message": "gated"}, b"", body
                    )
                data = repo.files.get(name)
                if data is None:
                    return self._send(404, {**headers, "X-Error-Code": "EntryNotFound"}, b"", body)
                etag = hashlib.sha256(data).hexdigest()
                if body:
                    hub.file_bytes_served += len(data)
                return self._send(200, {**headers, "ETag": f'"{etag}"'}, data, body)
            return self._error(404, "NotFound", body)

    return Handler


@contextmanager
def serve(hub: FakeHub) -> Iterator[FakeHub]:
    """Run ``hub`` on an ephemeral 127.0.0.1 port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


def llama_repo_listing(shards: int, shard_bytes: int, consolidated: int) -> dict[str, int]:
    """The weight and doc files of a meta-llama repo, with realistic sizes: listed, never served."""
    listing = {f"model-{i:05d}-of-{shards:05d}.safetensors": shard_bytes for i in range(1, shards + 1)}
    listing.update(
        {f"original/consolidated.{i:02d}.pth": shard_bytes * shards // consolidated for i in range(consolidated)}
    )
    listing.update(
        {"model.safetensors.index.json": 59_000, "LICENSE": 7_627, "README.md": 44_000, "USE_POLICY.md": 4_691}
    )
    return listing

"""A recording TLS proxy in front of the local API server: which calls did the operator really make?

The chart's RBAC must be exactly what the operator uses. The API server enforces the rules; this proxy only
writes down each request as the RBAC authorizer sees it (verb, API group, resource/subresource, namespace)
with the answer's status code, so a test can compare the granted rules with the calls made, both ways.

It forwards the client's own ``Authorization`` header and presents no client certificate upstream, so the API
server authenticates the operator's token and nobody else. It serves TLS with the local cluster's apiserver
certificate (valid for 127.0.0.1), so a kubeconfig for it differs from one for the API server only in the port.
Watch responses are streamed chunk by chunk. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

from tests.harness.localcluster import free_port

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp recomputes; everything else passes through untouched.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "host", "content-length"}


@dataclass(frozen=True)
class Call:
    """One request as RBAC names it; ``resource`` includes the subresource (``speculativedeployments/status``)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None
    status: int
    message: str = ""  # the API server's Status message, for answers >= 400


def status_message(body: bytes, encoding: str) -> str:
    """The ``message`` of an error answer's Status object (or its raw text)."""
    if encoding == "gzip":
        body = gzip.decompress(body)
    text = body.decode(errors="replace")
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text


def rbac_attributes(method: str, path: str, query: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(verb, group, resource, namespace, name) of a resource request; None for discovery and other non-resource
    paths (``/api``, ``/apis/g/v``, ``/version``, ``/healthz``), which every authenticated user may read.

    Follows the API server's request-info rules: ``/api/v1/...`` is the core group, ``/apis/GROUP/VERSION/...``
    the others; ``namespaces/NS/RESOURCE`` scopes a resource; GET is get, list or watch (``?watch=true``),
    DELETE on a collection is deletecollection.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    params = parse_qs(query)
    watching = params.get("watch", ["false"])[-1].lower() in ("true", "1")
    if method == "GET":
        verb = "get" if name else ("watch" if watching else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    return verb, group, resource, namespace, name


@dataclass
class RecordingProxy:
    """``start()`` listens on 127.0.0.1:``port``; ``calls`` fills as requests complete (and as watches begin)."""

    upstream: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def start(self) -> RecordingProxy:
        self.port = self.port or free_port()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as e:  # reported to start()'s caller
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=main, name="apirecorder", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"recording proxy did not start on port {self.port}: {failure}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)

    async def _serve(self) -> None:
        upstream_tls = ssl.create_default_context(cafile=str(self.ca_file))  # no client certificate: never admin
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=upstream_tls, limit=0),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        await self._runner.setup()
        serving_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving_tls.load_cert_chain(str(self.cert_file), str(self.key_file))
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=serving_tls).start()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _record(self, request: web.BaseRequest, status: int, message: str = "") -> None:
        attrs = rbac_attributes(request.method, request.path, request.query_string)
        if attrs is None:
            return
        with self._lock:
            self.calls.append(Call(*attrs, status=status, message=message))
            if request.method == "PATCH" and status == 201:
                # A server-side apply that created the object: the API server authorized create as well.
                self.calls.append(Call("create", *attrs[1:], status=status))

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        try:
            upstream = await self._session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body or None
            )
        except aiohttp.ClientError as e:
            self._record(request, 502)
            return web.Response(status=502, text=f"recording proxy: upstream failed: {e}")
        async with upstream:
            headers_out = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP]
            if upstream.status >= 400:  # a small Status object: read it whole, keep its message
                answer = await upstream.read()
                self._record(
                    request, upstream.status, status_message(answer, upstream.headers.get("Content-Encoding", ""))
                )
                error = web.Response(status=upstream.status, reason=upstream.reason, body=answer)
                for k, v in headers_out:
                    error.headers.add(k, v)
                return error
            self._record(request, upstream.status)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in headers_out:
                response.headers.add(k, v)
            await response.prepare(request)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):  # either side hung up
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
        return response

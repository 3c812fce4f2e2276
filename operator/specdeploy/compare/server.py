"""One vLLM OpenAI-compatible server as a child process: start it, wait for ``/health``, talk to it, stop it.

Why its own module: ``compare-drafts`` and the e2e harness both run real vLLM and need the same care. The server
runs in its own process group (vLLM forks an engine-core process), so stopping sends SIGTERM to the group, waits,
then SIGKILLs what is left; a server that dies during start-up is reported with the tail of its log instead of a
bare timeout. Only the standard library is used for HTTP: the calls are few and plain.

This module does I/O (processes, sockets, files); the decisions about what to measure live in the pure modules.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from specdeploy.compare.results import RequestTiming

VLLM_MODULE = "vllm.entrypoints.openai.api_server"
DEFAULT_STARTUP_TIMEOUT_S = 600.0
DEFAULT_REQUEST_TIMEOUT_S = 600.0
_LOG_TAIL_BYTES = 6000
#: A streamed completion carries at most one chunk per token (plus the usage chunk); more is a broken server.
_MAX_STREAM_CHUNKS = 100_000


class ServerError(RuntimeError):
    """The server did not start, died, or answered an HTTP call with an error; the message says which."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def with_listen_address(args: Sequence[str], host: str, port: int) -> list[str]:
    """``args`` with every ``--host``/``--port`` (``--x V`` or ``--x=V``) replaced by the given address at the end."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--host", "--port"):
            skip = True
            continue
        if arg.startswith(("--host=", "--port=")):
            continue
        out.append(arg)
    return [*out, "--host", host, "--port", str(port)]


class VllmServer:
    """A vLLM API server started from ``python -m vllm.entrypoints.openai.api_server ARGS``.

    ``args`` are the server options (``--model`` ...); ``--host``/``--port`` in them are replaced by ``host`` and
    ``port`` (a free port when None). ``env`` is added to this process's environment. Output goes to ``log_path``
    (a temporary file when None). Use as a context manager or call ``start``/``wait_ready``/``stop``.
    """

    def __init__(
        self,
        python: str,
        args: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"host {host!r}: the server must listen on a loopback address (127.0.0.0/8)")
        self.python = python
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.args = with_listen_address(args, host, self.port)
        self.env = dict(env or {})
        self.log_path = log_path
        self._log: Any = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.model_id: str | None = None
        self.startup_seconds: float | None = None
        self._started_at = 0.0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def argv(self) -> list[str]:
        return [self.python, "-m", VLLM_MODULE, *self.args]

    def start(self) -> VllmServer:
        if self._proc is not None:
            raise ServerError("server already started")
        if self.log_path is None:
            import tempfile

            handle, name = tempfile.mkstemp(prefix="vllm-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self._log.write(("$ " + " ".join(self.argv) + "\n").encode())
        self._log.flush()
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,  # its own process group: stop() reaches the engine-core child too
            )
        except OSError as err:
            self._log.close()
            raise ServerError(f"cannot run {self.python}: {err.strerror or err}") from None
        self._started_at = time.monotonic()
        return self

    def wait_ready(self, timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S, poll_s: float = 1.0) -> None:
        """Block until ``/health`` answers 200; raise ``ServerError`` (with the log tail) on exit or timeout."""
        proc = self._require()
        deadline = time.monotonic() + timeout_s
        while True:
            code = proc.poll()
            if code is not None:
                raise ServerError(f"vLLM exited with status {code} during start-up:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=5) as reply:  # noqa: S310
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"vLLM did not answer /health within {timeout_s:g} s:\n{self.log_tail()}")
            time.sleep(poll_s)
        self.startup_seconds = time.monotonic() - self._started_at
        models = self.get_json("/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        if not data or not isinstance(data[0], dict) or "id" not in data[0]:
            raise ServerError(f"/v1/models returned no model: {str(models)[:300]}")
        self.model_id = str(data[0]["id"])

    def stop(self, grace_s: float = 30.0) -> int | None:
        """SIGTERM to the process group, then SIGKILL after ``grace_s``; returns the exit status (None if never run)."""
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(30)
            # Children that outlived the parent (an engine core) go too.
            _signal_group(proc.pid, signal.SIGKILL)
            return proc.returncode
        finally:
            self._proc = None
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> VllmServer:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        data = self.log_path.read_bytes()
        return data[-limit:].decode("utf-8", errors="replace")

    # --- HTTP ---------------------------------------------------------------------------------------------------

    def get_text(self, path: str, timeout_s: float = 30.0) -> str:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=timeout_s) as reply:  # noqa: S310
                body: bytes = reply.read()
        except urllib.error.HTTPError as err:
            raise ServerError(f"GET {path}: HTTP {err.code}: {_body(err)}") from None
        except (urllib.error.URLError, OSError) as err:
            raise ServerError(f"GET {path}: {err}{self._died()}") from None
        return body.decode("utf-8", errors="replace")

    def get_json(self, path: str, timeout_s: float = 30.0) -> Any:
        return json.loads(self.get_text(path, timeout_s))

    def metrics(self) -> str:
        """The ``/metrics`` page (Prometheus text)."""
        return self.get_text("/metrics")

    def post_json(self, path: str, body: Mapping[str, Any], timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> Any:
        request = urllib.request.Request(  # noqa: S310 (the base URL is a loopback http:// address built here)
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310
                return json.loads(reply.read())
        except urllib.error.HTTPError as err:
            raise ServerError(f"POST {path}: HTTP {err.code}: {_body(err)}") from None
        except (urllib.error.URLError, OSError) as err:
            raise ServerError(f"POST {path}: {err}{self._died()}") from None

    def complete(self, prompt: str | Sequence[int], max_tokens: int, *, ignore_eos: bool = True) -> dict[str, Any]:
        """One greedy completion (temperature 0); ``prompt`` is text or token ids. Returns vLLM's response."""
        body: dict[str, Any] = {
            "model": self.model_id,
            "prompt": prompt if isinstance(prompt, str) else list(prompt),
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "ignore_eos": ignore_eos,
        }
        reply: dict[str, Any] = self.post_json("/v1/completions", body)
        return reply

    def tokenize(self, text: str, *, add_special_tokens: bool) -> list[int]:
        """Token ids of ``text`` by the served model's own tokenizer (vLLM's ``/tokenize``)."""
        reply = self.post_json(
            "/tokenize", {"model": self.model_id, "prompt": text, "add_special_tokens": add_special_tokens}
        )
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ServerError(f"/tokenize returned no token list: {str(reply)[:300]}")
        return tokens

    def complete_many(
        self, prompts: Sequence[str | Sequence[int]], max_tokens: int, *, concurrency: int = 4, ignore_eos: bool = True
    ) -> list[dict[str, Any]]:
        """Greedy completions of every prompt, ``concurrency`` in flight at a time (vLLM batches them)."""
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = [pool.submit(self.complete, p, max_tokens, ignore_eos=ignore_eos) for p in prompts]
            return [f.result() for f in futures]

    def complete_timed(self, prompt: str | Sequence[int], max_tokens: int, *, ignore_eos: bool = True) -> RequestTiming:
        """One greedy completion, streamed, timed by the client: tokens, seconds to the first and the last token.

        The token count is vLLM's own (``usage.completion_tokens`` of the last chunk); a chunk may carry several
        tokens when drafts are accepted, so the clock is read per chunk.
        """
        body: dict[str, Any] = {
            "model": self.model_id,
            "prompt": prompt if isinstance(prompt, str) else list(prompt),
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "ignore_eos": ignore_eos,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        request = urllib.request.Request(  # noqa: S310 (the base URL is a loopback http:// address built here)
            self.base_url + "/v1/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        started = time.monotonic()
        first: float | None = None
        last: float | None = None
        tokens: int | None = None
        chunks = 0
        try:
            with urllib.request.urlopen(request, timeout=DEFAULT_REQUEST_TIMEOUT_S) as reply:  # noqa: S310
                for raw in reply:
                    line = raw.decode("utf-8", errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunks += 1
                    if chunks > _MAX_STREAM_CHUNKS:
                        raise ServerError(f"stream of /v1/completions exceeded {_MAX_STREAM_CHUNKS} chunks")
                    event = json.loads(data)
                    now = time.monotonic() - started
                    choices = event.get("choices") if isinstance(event, dict) else None
                    if choices and any(isinstance(c, dict) and c.get("text") is not None for c in choices):
                        first = now if first is None else first
                        last = now
                    usage = event.get("usage") if isinstance(event, dict) else None
                    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                        tokens = usage["completion_tokens"]
        except urllib.error.HTTPError as err:
            raise ServerError(f"POST /v1/completions: HTTP {err.code}: {_body(err)}") from None
        except (urllib.error.URLError, OSError) as err:
            raise ServerError(f"POST /v1/completions: {err}{self._died()}") from None
        except json.JSONDecodeError as err:
            raise ServerError(f"POST /v1/completions: a stream chunk is not JSON: {err}") from None
        if tokens is None or first is None or last is None:
            raise ServerError("POST /v1/completions: the stream carried no tokens or no usage")
        return RequestTiming(output_tokens=tokens, first_token_s=first, last_token_s=last)

    def timed_many(
        self, prompts: Sequence[str | Sequence[int]], max_tokens: int, *, concurrency: int
    ) -> tuple[list[RequestTiming], float]:
        """Streamed completions of every prompt, ``concurrency`` in flight; their timings and the wall time."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = [pool.submit(self.complete_timed, p, max_tokens) for p in prompts]
            timings = [f.result() for f in futures]
        return timings, time.monotonic() - started

    def _require(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise ServerError("server not started")
        return self._proc

    def _died(self) -> str:
        if self._proc is not None and self._proc.poll() is not None:
            return f" (vLLM exited with status {self._proc.returncode}):\n{self.log_tail()}"
        return ""


def _body(err: urllib.error.HTTPError) -> str:
    with contextlib.suppress(OSError):
        return err.read().decode("utf-8", errors="replace")[:500]
    return ""


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@contextlib.contextmanager
def running(server: VllmServer, timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S) -> Iterator[VllmServer]:
    """Start ``server``, wait until it is ready, yield it, and stop it whatever happens."""
    server.start()
    try:
        server.wait_ready(timeout_s)
        yield server
    finally:
        server.stop()

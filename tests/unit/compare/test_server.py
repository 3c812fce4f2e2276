"""The vLLM process wrapper: start-up, readiness, HTTP calls, failures with the log, and a clean stop.

The server here is a small stand-in module placed first on PYTHONPATH under vLLM's module name, so the wrapper
runs the very command line it runs for real vLLM (``python -m vllm.entrypoints.openai.api_server ...``) and its
process handling (process group, SIGTERM then SIGKILL, log tail) is exercised on real processes. The e2e tier
runs the same wrapper against real vLLM.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from specdeploy.compare.server import ServerError, VllmServer, running, with_listen_address

STANDIN = r"""
import json, os, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
host, port = args[args.index("--host") + 1], int(args[args.index("--port") + 1])
mode = os.environ.get("STANDIN_MODE", "ok")
print("standin starting with", " ".join(args), flush=True)
if mode == "crash":
    print("RuntimeError: this stand-in was told to fail at start-up", flush=True)
    sys.exit(3)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(os.environ["STANDIN_PIDS"], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
if mode == "stubborn":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
time.sleep(float(os.environ.get("STANDIN_DELAY", "0")))
served = {"n": 0}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, "")
        if self.path == "/v1/models":
            return self.reply(200, {"data": [{"id": "tiny"}]})
        if self.path == "/metrics":
            return self.reply(200, f"served_total {served['n']}\n", "text/plain")
        self.reply(404, {"error": "no such path"})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/tokenize":
            return self.reply(200, {"tokens": [ord(c) for c in body["prompt"]], "count": len(body["prompt"])})
        if self.path == "/v1/completions":
            if body["model"] != "tiny":
                return self.reply(404, {"error": "model not found"})
            served["n"] += 1
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                delay = float(os.environ.get("STANDIN_TOKEN_DELAY", "0"))
                for i in range(body["max_tokens"]):
                    time.sleep(delay)
                    chunk = {"choices": [{"index": 0, "text": "x"}], "usage": None}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                if body.get("stream_options", {}).get("include_usage"):
                    usage = {"choices": [], "usage": {"completion_tokens": body["max_tokens"]}}
                    self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                return
            return self.reply(200, {"choices": [{"text": "x" * body["max_tokens"]}], "echo": body})
        self.reply(404, {"error": "no such path"})

ThreadingHTTPServer((host, port), H).serve_forever()
"""


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    package = tmp_path / "site" / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(STANDIN)
    return tmp_path


def _server(standin: Path, mode: str = "ok", **env: str) -> VllmServer:
    return VllmServer(
        sys.executable,
        ["--model", "/models/target", "--host", "0.0.0.0", "--port=8000"],
        env={"PYTHONPATH": str(standin / "site"), "STANDIN_MODE": mode, "STANDIN_PIDS": str(standin / "pids"), **env},
        log_path=standin / "server.log",
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once reaped or in state Z.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_listen_address_overrides_every_form() -> None:
    args = ["--model", "m", "--host", "0.0.0.0", "--port=8000", "--dtype", "auto", "--port", "9"]
    assert with_listen_address(args, "127.0.0.5", 1234) == [
        "--model",
        "m",
        "--dtype",
        "auto",
        "--host",
        "127.0.0.5",
        "--port",
        "1234",
    ]


def test_only_loopback_addresses_are_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        VllmServer(sys.executable, [], host="0.0.0.0")


def test_serves_completions_and_stops_the_whole_process_group(standin: Path) -> None:
    server = _server(standin)
    with running(server, timeout_s=60) as ready:
        assert ready.model_id == "tiny"
        assert ready.argv[-4:] == ["--host", "127.0.0.1", "--port", str(ready.port)]
        assert ready.tokenize("ab", add_special_tokens=False) == [97, 98]
        replies = ready.complete_many([[1, 2, 3], "text prompt", [4]], 5, concurrency=2)
        assert [r["choices"][0]["text"] for r in replies] == ["xxxxx"] * 3
        sent = replies[0]["echo"]
        assert sent["temperature"] == 0.0 and sent["ignore_eos"] is True and sent["prompt"] == [1, 2, 3]
        assert ready.metrics() == "served_total 3\n"
        pids = [int(p) for p in (standin / "pids").read_text().split()]
        assert all(_alive(p) for p in pids)
    assert not server.running()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "the server's child process outlived stop()"
    assert "standin starting with --model /models/target" in (standin / "server.log").read_text()


def test_streamed_completions_are_timed_per_token(standin: Path) -> None:
    server = _server(standin, STANDIN_TOKEN_DELAY="0.02")
    with running(server, timeout_s=60) as ready:
        timings, wall = ready.timed_many([[1, 2], [3], [4, 5, 6]], 11, concurrency=3)
    assert [t.output_tokens for t in timings] == [11, 11, 11]
    for t in timings:
        assert t.time_per_output_token_s is not None
        assert 0.015 < t.time_per_output_token_s < 1.0
        assert t.first_token_s <= t.last_token_s <= wall
    # Three in flight at once: the level takes less than the requests one after another would.
    assert wall < sum(t.last_token_s for t in timings)


def test_a_server_that_ignores_sigterm_is_killed(standin: Path) -> None:
    server = _server(standin, mode="stubborn")
    server.start()
    server.wait_ready(60)
    started = time.monotonic()
    code = server.stop(grace_s=1.0)
    assert code == -9
    assert time.monotonic() - started < 20


def test_a_crash_during_start_up_reports_the_log(standin: Path) -> None:
    server = _server(standin, mode="crash")
    with (
        pytest.raises(ServerError, match="exited with status 3 during start-up") as info,
        running(server, timeout_s=60),
    ):
        pass
    assert "told to fail at start-up" in str(info.value)


def test_a_server_that_never_becomes_healthy_times_out_with_the_log(standin: Path) -> None:
    server = _server(standin, STANDIN_DELAY="30")
    with pytest.raises(ServerError, match=r"did not answer /health within 2 s") as info, running(server, timeout_s=2):
        pass
    assert "standin starting" in str(info.value)
    assert not server.running()


def test_http_errors_name_the_call(standin: Path) -> None:
    with running(_server(standin), timeout_s=60) as ready:
        ready.model_id = "not-served"
        with pytest.raises(ServerError, match=r"POST /v1/completions: HTTP 404: .*model not found"):
            ready.complete([1], 1)
        with pytest.raises(ServerError, match="GET /nope: HTTP 404"):
            ready.get_text("/nope")


def test_a_missing_python_is_a_clear_error(tmp_path: Path) -> None:
    server = VllmServer(str(tmp_path / "no-python"), [], log_path=tmp_path / "log")
    with pytest.raises(ServerError, match=r"cannot run .*no-python"):
        server.start()

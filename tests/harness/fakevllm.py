"""Scripted vLLM metrics servers bound to the pods' loopback IPs: real HTTP, vLLM's exact metric names and format.

kwok runs no containers, so for integration tests each Ready vLLM pod gets a small HTTP server on its pod IP and
container port serving ``/health`` and ``/metrics``. The page is rendered by ``prometheus_client`` with the V1
spec-decode counters exactly as vLLM 0.32 registers them (``vllm:spec_decode_num_drafts`` etc., labels
``model_name`` and ``engine``), so the operator parses what it would parse from a real pod.

The acceptance behaviour is chosen per draft model (read from the pod's ``--speculative-config``), so a test says
"this draft accepts 80%" and the counters advance with simulated traffic between scrapes. A pod with no
``--speculative-config`` exposes no spec-decode series, as vLLM does.

Speed (issue 13's latency comparison, issue 14's speed per revision): every pod, with or without speculation,
also serves vLLM's ``vllm:generation_tokens_total`` counter, the ``vllm:request_time_per_output_token_seconds`` and
``vllm:inter_token_latency_seconds`` histograms and the ``vllm:num_requests_running``/``_waiting`` gauges. By default
the output tokens follow the simulated drafts (one target step of 40 ms yields ``1 + accepted/drafts`` tokens); a
test can script them instead: ``tpot_seconds`` (time per output token of the request that finishes at each scrape),
``output_tokens_per_second`` and ``running_requests``.

For fault injection a ``Behaviour`` can also answer with another HTTP status, answer late, leave out
Content-Length (so only the reader's own cap stops a huge body), restart its simulated vLLM process before every
scrape (counters back to zero, new ``_created`` start times), or serve a fixed page from a callable.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client, config
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tests.harness import kubelet

SERVER_SELECTOR = "app.kubernetes.io/component=server,app.kubernetes.io/managed-by=specdeploy"
# vLLM 0.32's buckets for vllm:request_time_per_output_token_seconds.
TPOT_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
TARGET_STEP_SECONDS = 0.04


def alpha_for_rate(rate: float, k: int) -> float:
    """Per-token acceptance probability whose prefix-acceptance model gives ``rate`` = (1/k) * sum alpha^(i+1)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        got = sum(mid ** (i + 1) for i in range(k)) / k
        lo, hi = (mid, hi) if got < rate else (lo, mid)
    return (lo + hi) / 2


@dataclass
class Behaviour:
    """How a pod's draft behaves: acceptance rate and draft tokens per second of simulated traffic."""

    rate: float | None
    draft_tokens_per_second: float = 400.0
    k: int = 4
    page: Callable[[], bytes] | None = None  # a fixed page overrides the counters (hostile-page tests)
    status: int = 200  # HTTP status of /metrics
    delay_seconds: float = 0.0  # wait this long before answering /metrics
    content_length: bool = True  # False: no Content-Length header, the body ends when the connection closes
    restart_every_scrape: bool = False  # a new vLLM process (counters from zero) before each scrape
    completion_seconds: float = 0.05  # how long a POST /v1/completions takes to answer
    tpot_seconds: float | None = None  # time per output token; None: a 40 ms step over the tokens it yields
    output_tokens_per_second: float | None = None  # None: what the drafts yield (speculation off: one per step)
    running_requests: float = 1.0  # vllm:num_requests_running


class FakeVllm:
    def __init__(self, host: str, port: int, model: str, behaviour: Behaviour) -> None:
        self.host, self.port, self.model, self.behaviour = host, port, model, behaviour
        self.scrapes = 0
        self.completions = 0
        self._new_process()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/health":
                    self._send(200, b"", "text/plain")
                elif self.path == "/metrics":
                    b = fake.behaviour
                    body = fake.render()
                    if b.delay_seconds:
                        time.sleep(b.delay_seconds)
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                    self._send(b.status, body, ctype, length=b.content_length)
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                # A completion as vLLM's OpenAI server answers it: max_tokens tokens after completion_seconds.
                if self.path != "/v1/completions":
                    self._send(404, b"not found", "text/plain")
                    return
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 16)
                request = json.loads(self.rfile.read(length) or b"{}")
                tokens = int(request.get("max_tokens") or 16)
                time.sleep(fake.behaviour.completion_seconds)
                with fake.lock:
                    fake.completions += 1
                reply = {
                    "object": "text_completion",
                    "model": fake.model,
                    "choices": [{"index": 0, "text": " x" * tokens, "finish_reason": "length"}],
                    "usage": {"completion_tokens": tokens},
                }
                self._send(200, json.dumps(reply).encode(), "application/json")

            def _send(self, code: int, body: bytes, ctype: str, length: bool = True) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                if length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the scraper gave up (timeout, size cap): not our error
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = _QuietServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _new_process(self) -> None:
        """A freshly started vLLM: a new registry, counters at zero, ``_created`` start times of now."""
        self.registry = CollectorRegistry()
        self.started = time.monotonic()
        self.last = self.started
        labels = ["model_name", "engine"]
        behaviour, model = self.behaviour, self.model
        if behaviour.rate is not None:
            self.drafts = Counter(
                "vllm:spec_decode_num_drafts", "Number of spec decoding drafts.", labels, registry=self.registry
            )
            self.draft_tokens = Counter(
                "vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", labels, registry=self.registry
            )
            self.accepted = Counter(
                "vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", labels, registry=self.registry
            )
            self.per_pos = Counter(
                "vllm:spec_decode_num_accepted_tokens_per_pos",
                "Accepted tokens per draft position.",
                [*labels, "position"],
                registry=self.registry,
            )
        # vLLM 0.32's per-request time per output token, with its buckets (the dashboard's latency panel).
        self.tpot = Histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            labels,
            buckets=TPOT_BUCKETS,
            registry=self.registry,
        )
        Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=self.registry).labels(
            model, "0"
        ).inc(0)
        self.generation = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=self.registry
        )
        self.generation.labels(model, "0").inc(0)
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            labels,
            buckets=TPOT_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            labels,
            registry=self.registry,
        )
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, registry=self.registry
        )
        self.running.labels(model, "0").set(behaviour.running_requests)
        self.waiting.labels(model, "0").set(0)

    def advance(self) -> None:
        b = self.behaviour
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        if elapsed <= 0:
            return
        m, e = self.model, "0"
        tokens_per_step = 1.0
        if b.rate is not None:
            draft_tokens = b.draft_tokens_per_second * elapsed
            drafts = draft_tokens / b.k
            alpha = alpha_for_rate(b.rate, b.k)
            self.drafts.labels(m, e).inc(drafts)
            self.draft_tokens.labels(m, e).inc(draft_tokens)
            accepted = 0.0
            for i in range(b.k):
                n = drafts * alpha ** (i + 1)
                accepted += n
                self.per_pos.labels(m, e, str(i)).inc(n)
            self.accepted.labels(m, e).inc(accepted)
            tokens_per_step = 1 + accepted / drafts if drafts else 1.0
            produced = drafts + accepted
        else:
            produced = b.draft_tokens_per_second / b.k * elapsed
        if b.output_tokens_per_second is not None:
            produced = b.output_tokens_per_second * elapsed
        # One finished request per scrape: a target step costs 40 ms and yields ``tokens_per_step`` tokens.
        tpot = b.tpot_seconds if b.tpot_seconds is not None else TARGET_STEP_SECONDS / tokens_per_step
        self.tpot.labels(m, e).observe(tpot)
        self.itl.labels(m, e).observe(tpot * tokens_per_step)
        self.generation.labels(m, e).inc(produced)
        self.running.labels(m, e).set(b.running_requests)

    def render(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            if self.behaviour.page is not None:
                return self.behaviour.page()
            if self.behaviour.restart_every_scrape and self.scrapes > 1:
                # The process restarted half-way since the last scrape: only the second half was counted.
                half = (time.monotonic() - self.last) / 2
                self._new_process()
                self.last -= half
            self.advance()
            return generate_latest(self.registry)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up early (timeouts, size caps) is part of these tests, not a failure


def pod_endpoint(pod: Any) -> tuple[str, int, str, str | None]:
    """(pod IP, container port, served model, draft model or None) from a vLLM pod's spec."""
    c = pod.spec.containers[0]
    args = list(c.args or [])

    def flag(name: str) -> str | None:
        return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None

    port = int(flag("--port") or 8000)
    model = flag("--served-model-name") or flag("--model") or "model"
    spec_cfg = flag("--speculative-config")
    draft = json.loads(spec_cfg).get("model") if spec_cfg else None
    return pod.status.pod_ip, port, model, draft


class Fleet:
    """Start a FakeVllm for every Ready vLLM pod, and stop it when the pod goes away.

    A pod annotated for the harness kubelet (:mod:`tests.harness.kubelet`) gets its server once Running, is marked
    Ready when the server listens, and on deletion has its preStop pause honoured before the server stops."""

    def __init__(
        self, kubeconfig: Path, behaviour_for: Callable[[str | None], Behaviour], interval: float = 0.3
    ) -> None:
        self.api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        self.behaviour_for = behaviour_for
        self.interval = interval
        self.servers: dict[str, FakeVllm] = {}
        self.errors: list[str] = []
        self.terminating: set[str] = set()  # uids of harness-kubelet pods being terminated (preStop, stop, remove)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fleet", daemon=True)

    def start(self) -> Fleet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for s in list(self.servers.values()):
            s.stop()
        self.servers.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.api.list_pod_for_all_namespaces(label_selector=SERVER_SELECTOR).items
            except Exception:
                self._stop.wait(1)
                continue
            live = set()
            for pod in pods:
                uid = pod.metadata.uid
                ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                if kubelet.managed(pod):  # the harness plays this pod's kubelet: readiness and termination
                    if pod.metadata.deletion_timestamp:
                        if uid in self.servers and uid not in self.terminating:
                            live.add(uid)
                            self._terminate(pod)
                        elif uid in self.terminating:
                            live.add(uid)
                        continue
                    if pod.status.phase != "Running" or not pod.status.pod_ip:
                        continue
                elif not ready or not pod.status.pod_ip or pod.metadata.deletion_timestamp:
                    continue
                live.add(uid)
                if uid not in self.servers:
                    ip, port, model, draft = pod_endpoint(pod)
                    try:
                        self.servers[uid] = FakeVllm(ip, port, model, self.behaviour_for(draft))
                    except OSError as e:  # address taken: say so and try again on the next pass
                        self.errors.append(f"{ip}:{port}: {e}")
                        live.discard(uid)
                        continue
                if kubelet.managed(pod) and not ready:  # the server answers at once: its readiness probe passes
                    try:
                        kubelet.set_ready(self.api, pod, True)
                    except Exception as e:  # the pod went away meanwhile: the next pass sees it
                        self.errors.append(f"{pod.metadata.name}: could not mark Ready: {e}")
            for uid in list(self.servers):
                if uid not in live and (gone := self.servers.pop(uid, None)) is not None:
                    gone.stop()
            self._stop.wait(self.interval)

    def _terminate(self, pod: Any) -> None:
        """A deleted harness-kubelet pod: preStop pause, stop the server, remove the pod (in the background)."""
        uid = pod.metadata.uid
        self.terminating.add(uid)
        server = self.servers[uid]

        def run() -> None:
            try:
                kubelet.terminate(self.api, pod, lambda _grace: server.stop())
            except Exception as e:
                self.errors.append(f"{pod.metadata.name}: termination failed: {e}")
            finally:
                self.servers.pop(uid, None)
                self.terminating.discard(uid)

        threading.Thread(target=run, name=f"terminate-{pod.metadata.name}", daemon=True).start()

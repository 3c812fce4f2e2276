"""A client that sends completions where a Service proxy would: to the ready endpoints of the object's Service,
by the EndpointSlice controller's rule, with a proxy's propagation delay.

Why: "no request fails while a canary is started, aborted or promoted" is a claim about what a user's traffic sees,
and a user's traffic reaches the pods through the object's Service. Nothing dials a ClusterIP here (no kube-proxy
runs, and every address a test dials is loopback), so this client does the proxy's part itself: it keeps the
Service's ready endpoints (kube-proxy's rule: ``conditions.ready``, i.e. pod Ready and not terminating), and
round-robins requests over them, each change applied ``propagation_s`` after it happened (a proxy learns of it
late). What a proxy would route to a pod, this client routes there too, so a pod whose server stops before the
endpoint is gone everywhere shows up as failed requests.

Where the endpoints come from (``source``):

* ``"slices"``: the Service's EndpointSlices (``discovery.k8s.io/v1``, label ``kubernetes.io/service-name``), as
  the real controller-manager writes them. On a real cluster this is the one to use.
* ``"pods"`` (the default here): the same EndpointSlices computed from the Service and its selected pods with the
  EndpointSlice controller's rule (``podToEndpoint``: ready = pod Ready and no deletionTimestamp; serving = pod
  Ready; terminating = deletionTimestamp set; the port resolved from the Service's ``targetPort``). Why: the local
  control plane gives pods loopback IPs (every address a test dials is in 127.0.0.0/8), and the API server's
  validation refuses loopback addresses in EndpointSlices and Endpoints ("may not be in the loopback range"), so
  the real controller-manager can never write these slices here; it logs ``FailedToUpdateEndpointSlices``.
  Both sources end in the same :func:`ready_endpoints`.

Each request is a greedy ``POST /v1/completions`` (OpenAI API, as vLLM serves it). The client counts successes,
failures (with the first ``MAX_ERRORS`` messages) and completion tokens per endpoint, keyed by the pod the
endpoint's ``targetRef`` names, so a test can say which revision served how many tokens. Everything is bounded:
requests in total, time per request, the size of a reply, the errors kept, and the watch's own timeout before it
re-lists.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

#: The label the EndpointSlice controller puts on every slice of a Service.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
#: Failure messages kept (the counts keep counting past it).
MAX_ERRORS = 50
#: Largest reply read; a completion of a few dozen tokens is a few hundred bytes.
MAX_REPLY_BYTES = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    """One ready address of the Service: where to send, and which pod the slice says it is."""

    ip: str
    port: int
    pod: str  # targetRef name; the address when the slice names no pod


@dataclass
class Tally:
    """What one endpoint (pod) answered."""

    ok: int = 0
    failed: int = 0
    tokens: int = 0


@dataclass
class Counts:
    """What the client saw, in total and per pod."""

    ok: int = 0
    failed: int = 0
    tokens: int = 0
    no_endpoint_waits: int = 0  # times a worker found no ready endpoint after the Service had had one
    per_pod: dict[str, Tally] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        pods = ", ".join(f"{p}: {t.ok} ok/{t.failed} failed/{t.tokens} tokens" for p, t in sorted(self.per_pod.items()))
        return (
            f"{self.ok} ok, {self.failed} failed, {self.tokens} completion tokens, "
            f"{self.no_endpoint_waits} waits with no ready endpoint ({pods})"
        )


def ready_endpoints(slices: Sequence[dict[str, Any]], port_name: str | None = None) -> list[Endpoint]:
    """The addresses a proxy routes to, from EndpointSlices as the API returns them (camelCase dicts).

    An endpoint counts when ``conditions.ready`` is true (the EndpointSlice controller sets it for a Ready pod
    without a deletionTimestamp); the port is the slice's port named ``port_name``, or its first port. Only IPv4
    slices are read. Sorted, so round-robin order does not depend on the order slices arrive in.
    """
    found: set[Endpoint] = set()
    for sl in slices:
        if sl.get("addressType") != "IPv4":
            continue
        ports = [p for p in sl.get("ports") or [] if p.get("port") is not None]
        if port_name is not None:
            ports = [p for p in ports if p.get("name") == port_name]
        if not ports:
            continue
        port = int(ports[0]["port"])
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is not True:
                continue
            pod = (ep.get("targetRef") or {}).get("name")
            for ip in ep.get("addresses") or []:
                found.add(Endpoint(ip, port, pod or ip))
    return sorted(found, key=lambda e: (e.ip, e.port))


def _target_port(service_port: Mapping[str, Any], container_ports: Sequence[Mapping[str, Any]]) -> int | None:
    """The pod port a Service port sends to: ``targetPort`` as a number, or the container port of that name."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for cp in container_ports:
        if cp.get("name") == target:
            return int(cp["containerPort"])
    return None


def slices_from_pods(service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The EndpointSlices the controller would write for ``service`` (API dicts) over ``pods`` (API dicts).

    One slice per distinct port mapping, as the controller groups them. A pod counts when the selector matches,
    it has an IPv4 address, and it is not finished (Succeeded/Failed); its conditions follow ``podToEndpoint``.
    """
    spec = service.get("spec") or {}
    selector: Mapping[str, str] = spec.get("selector") or {}
    if not selector:
        return []  # a Service without a selector gets no controller-made slices
    by_ports: dict[tuple[tuple[str, int], ...], list[dict[str, Any]]] = {}
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        ip = status.get("podIP")
        if not ip or ":" in ip or status.get("phase") in ("Succeeded", "Failed"):
            continue
        container_ports = [cp for c in (pod.get("spec") or {}).get("containers") or [] for cp in c.get("ports") or []]
        mapping = []
        for sp in spec.get("ports") or []:
            port = _target_port(sp, container_ports)
            if port is not None:
                mapping.append((str(sp.get("name") or ""), port))
        pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        terminating = bool(meta.get("deletionTimestamp"))
        by_ports.setdefault(tuple(mapping), []).append(
            {
                "addresses": [ip],
                "conditions": {
                    "ready": pod_ready and not terminating,
                    "serving": pod_ready,
                    "terminating": terminating,
                },
                "targetRef": {"kind": "Pod", "name": meta.get("name"), "uid": meta.get("uid")},
            }
        )
    return [
        {
            "addressType": "IPv4",
            "ports": [{"name": name or None, "port": port} for name, port in mapping],
            "endpoints": endpoints,
        }
        for mapping, endpoints in by_ports.items()
    ]


class EndpointClient:
    """Follow a Service's ready endpoints and keep ``concurrency`` completions in flight, round-robin over them,
    until :meth:`stop` or ``max_requests`` requests in total."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        service: str,
        *,
        model: str,
        prompts: Sequence[str],
        max_tokens: int = 16,
        concurrency: int = 2,
        request_timeout_s: float = 60.0,
        max_requests: int = 100_000,
        port_name: str | None = None,
        source: str = "pods",
        propagation_s: float = 1.0,
        watch_timeout_s: int = 30,
    ) -> None:
        if not prompts:
            raise ValueError("EndpointClient needs at least one prompt")
        if source not in ("pods", "slices"):
            raise ValueError(f"source must be 'pods' or 'slices', got {source!r}")
        api_client = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)
        self.namespace, self.service, self.model = namespace, service, model
        self.prompts = list(prompts)
        self.max_tokens, self.concurrency = max_tokens, concurrency
        self.request_timeout_s, self.max_requests = request_timeout_s, max_requests
        self.port_name, self.source, self.propagation_s = port_name, source, propagation_s
        self.watch_timeout_s = watch_timeout_s
        self.counts = Counts()
        self.changes = 0  # endpoint sets seen (each applied propagation_s later)
        self._endpoints: list[Endpoint] = []
        self._seen_any = False
        self._pending: deque[tuple[float, list[Endpoint]]] = deque(maxlen=10_000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = itertools.count()
        self._rr = itertools.count()
        self._prompt = itertools.count()
        self._watcher = threading.Thread(target=self._watch, name=f"endpoints-{service}", daemon=True)
        self._workers = [
            threading.Thread(target=self._work, name=f"client-{service}-{i}", daemon=True)
            for i in range(max(1, concurrency))
        ]

    # ------------------------------------------------------------------ life cycle
    def start(self) -> EndpointClient:
        self._watcher.start()
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> Counts:
        """Stop sending (in-flight requests finish, bounded by the request timeout) and return the counts."""
        self._stop.set()
        for w in self._workers:
            w.join(timeout=self.request_timeout_s + 5)
        self._watcher.join(timeout=5)
        return self.counts

    def endpoints(self) -> list[Endpoint]:
        """The ready endpoints the client routes to now."""
        with self._lock:
            self._apply_due()
            return list(self._endpoints)

    def snapshot(self) -> tuple[int, int, int]:
        """(ok, failed, tokens) so far."""
        with self._lock:
            return self.counts.ok, self.counts.failed, self.counts.tokens

    # ------------------------------------------------------------------ the proxy part
    def _observe(self, slices: Sequence[dict[str, Any]]) -> None:
        """A new state of the Service's slices: routed by ``propagation_s`` from now."""
        eps = ready_endpoints(slices, self.port_name)
        with self._lock:
            last = self._pending[-1][1] if self._pending else self._endpoints
            if eps != last:
                self._pending.append((time.monotonic() + self.propagation_s, eps))
                self.changes += 1

    def _apply_due(self) -> None:
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            self._endpoints = self._pending.popleft()[1]
            self._seen_any = self._seen_any or bool(self._endpoints)

    def _watch(self) -> None:
        """List, then watch from that resourceVersion; on any error or watch timeout, list again."""
        while not self._stop.is_set():
            try:
                if self.source == "slices":
                    self._follow_slices()
                else:
                    self._follow_pods()
            except Exception:  # API server busy or restarting, watch expired: list again shortly
                self._stop.wait(0.5)

    def _follow_slices(self) -> None:
        api = self.discovery.api_client
        selector = f"{SERVICE_NAME_LABEL}={self.service}"
        listed = self.discovery.list_namespaced_endpoint_slice(self.namespace, label_selector=selector)
        slices = {s.metadata.name: api.sanitize_for_serialization(s) for s in listed.items}
        self._observe(list(slices.values()))
        self._stream(self.discovery.list_namespaced_endpoint_slice, selector, listed, slices, api, None)

    def _follow_pods(self) -> None:
        api = self.core.api_client
        service = api.sanitize_for_serialization(self.core.read_namespaced_service(self.service, self.namespace))
        selector = ",".join(f"{k}={v}" for k, v in sorted(((service.get("spec") or {}).get("selector") or {}).items()))
        if not selector:
            raise RuntimeError(f"Service {self.namespace}/{self.service} has no selector")
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
        pods = {p.metadata.name: api.sanitize_for_serialization(p) for p in listed.items}
        self._observe(slices_from_pods(service, list(pods.values())))
        self._stream(self.core.list_namespaced_pod, selector, listed, pods, api, service)

    def _stream(self, lister: Any, selector: str, listed: Any, objects: dict[str, Any], api: Any, service: Any) -> None:
        w = watch.Watch()  # type: ignore[no-untyped-call]
        for event in w.stream(
            lister,
            self.namespace,
            label_selector=selector,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=self.watch_timeout_s,
        ):
            if self._stop.is_set():
                w.stop()  # type: ignore[no-untyped-call]
                return
            obj = api.sanitize_for_serialization(event["object"])
            name = (obj.get("metadata") or {}).get("name")
            if event["type"] == "ERROR" or not name:
                return  # e.g. 410 Gone: list again
            if event["type"] == "DELETED":
                objects.pop(name, None)
            else:
                objects[name] = obj
            current = list(objects.values())
            self._observe(current if service is None else slices_from_pods(service, current))

    def _pick(self) -> Endpoint | None:
        with self._lock:
            self._apply_due()
            if not self._endpoints:
                return None
            return self._endpoints[next(self._rr) % len(self._endpoints)]

    def _work(self) -> None:
        while not self._stop.is_set():
            if next(self._sent) >= self.max_requests:
                return
            ep = self._pick()
            if ep is None:
                with self._lock:
                    self.counts.no_endpoint_waits += 1 if self._seen_any else 0
                self._stop.wait(0.2)
                continue
            prompt = self.prompts[next(self._prompt) % len(self.prompts)]
            try:
                tokens = self._complete(ep, prompt)
            except Exception as err:  # every failure a user would see counts, whatever its kind
                self._record(ep, None, f"{ep.pod} {ep.ip}:{ep.port}: {type(err).__name__}: {err}"[:500])
                continue
            self._record(ep, tokens, "")

    def _record(self, ep: Endpoint, tokens: int | None, error: str) -> None:
        with self._lock:
            tally = self.counts.per_pod.setdefault(ep.pod, Tally())
            if tokens is None:
                self.counts.failed += 1
                tally.failed += 1
                if len(self.counts.errors) < MAX_ERRORS:
                    self.counts.errors.append(error)
            else:
                self.counts.ok += 1
                self.counts.tokens += tokens
                tally.ok += 1
                tally.tokens += tokens

    def _complete(self, ep: Endpoint, prompt: str) -> int:
        """One greedy completion; the number of completion tokens, or an exception for anything but a 200 reply."""
        body = json.dumps(
            {"model": self.model, "prompt": prompt, "max_tokens": self.max_tokens, "temperature": 0}
        ).encode()
        conn = http.client.HTTPConnection(ep.ip, ep.port, timeout=self.request_timeout_s)
        try:
            conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read(MAX_REPLY_BYTES + 1)
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        if len(data) > MAX_REPLY_BYTES:
            raise RuntimeError(f"reply larger than {MAX_REPLY_BYTES} bytes")
        reply = json.loads(data)
        if not reply.get("choices"):
            raise RuntimeError(f"reply without choices: {data[:200]!r}")
        return int((reply.get("usage") or {}).get("completion_tokens") or 0)


def wait_counts(ec: EndpointClient, ok_at_least: int, timeout: float) -> None:
    """Wait until the client has ``ok_at_least`` successful requests (AssertionError with its counts if not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ec.snapshot()[0] >= ok_at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"the client got fewer than {ok_at_least} answers in {timeout:.0f} s: {ec.counts.describe()}")

"""A real Prometheus server on 127.0.0.1, scraping the fake vLLM pods and the operator, for the integration tier.

Why real: the operator's PromQL (``metrics.source: Prometheus``) and the chart's Grafana dashboard are only proven
by the engine that evaluates them. The binary is built from Prometheus' Go module by ``hack/build-prometheus.sh``
(cached under a version key, like the control plane); this module only runs it.

Targets come from file service discovery: one JSON file per scrape job, rewritten atomically whenever the set of
Ready pods changes (Prometheus watches the files). The labels each target carries are the ones prometheus-operator
gives a target of the chart's PodMonitor or ServiceMonitor (``podmonitor_target`` / ``servicemonitor_target``),
read from those objects, so the queries run against the series a user's Prometheus would hold. What is not
translated: relabelings, TLS and auth (the chart sets none), and the monitors' interval, which tests shorten.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from tests.harness.localcluster import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "build-prometheus.sh"
MAX_ANSWER_BYTES = 8 * 1024 * 1024
Labels = dict[str, str]
Target = tuple[str, Labels]  # ("ip:port", labels)


class PrometheusError(RuntimeError):
    """Prometheus could not be built, started, or asked; the message says which."""


def prometheus_bin() -> Path:
    """``$SPECDEPLOY_PROMETHEUS_BIN``, else the cached build (built first when the cache is cold: minutes, once)."""
    override = os.environ.get("SPECDEPLOY_PROMETHEUS_BIN")
    if override:
        return Path(override)
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise PrometheusError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}; see its output above")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job fed by a file of targets; ``honor_labels`` as the monitor's ``honorLabels``."""

    name: str
    honor_labels: bool = False
    metrics_path: str = "/metrics"


@dataclass
class PrometheusServer:
    """``prometheus`` with a config of file-discovered jobs, a scrape interval in seconds, and its data in ``root``."""

    binary: Path
    root: Path
    jobs: Sequence[ScrapeJob]
    scrape_interval: float = 1.0
    query_log: bool = False  # keep every query Prometheus evaluates (``logged_queries``)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _targets: dict[str, list[Target]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _targets_file(self, job: str) -> Path:
        return self.root / "targets" / f"{job}.json"

    def write_config(self) -> Path:
        interval = f"{round(self.scrape_interval * 1000)}ms"
        scrape_configs = [
            {
                "job_name": job.name,
                "honor_labels": job.honor_labels,
                "metrics_path": job.metrics_path,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "file_sd_configs": [{"files": [str(self._targets_file(job.name))], "refresh_interval": "5s"}],
            }
            for job in self.jobs
        ]
        glob: dict[str, Any] = {"scrape_interval": interval, "evaluation_interval": interval}
        if self.query_log:
            glob["query_log_file"] = str(self.root / "queries.log")
        cfg = {"global": glob, "scrape_configs": scrape_configs}
        path = self.root / "prometheus.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def set_targets(self, job: str, targets: Sequence[Target]) -> None:
        """Replace the job's targets (atomic rename: Prometheus never reads half a file)."""
        wanted = sorted(targets, key=lambda t: (t[0], sorted(t[1].items())))
        if self._targets.get(job) == wanted and self._targets_file(job).exists():
            return
        self._targets[job] = wanted
        groups = [{"targets": [address], "labels": labels} for address, labels in wanted]
        path = self._targets_file(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(path)

    def start(self, timeout: float = 60) -> PrometheusServer:
        """Start (or restart, keeping its data and port) and wait until ``/-/ready`` answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        for job in self.jobs:
            if not self._targets_file(job.name).exists():
                self.set_targets(job.name, [])
        self.port = self.port or free_port()
        self.starts += 1
        argv = [
            str(self.binary),
            f"--config.file={self.write_config()}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.root / 'data'}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ]
        with (self.root / f"prometheus-{self.starts}.log").open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return self
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready after {timeout:.0f} s:\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s: an outage as a user would see it (connection refused)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def logged_queries(self) -> list[str]:
        """The PromQL of every query evaluated so far (with ``query_log``), oldest first."""
        path = self.root / "queries.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [str(json.loads(line).get("params", {}).get("query", "")) for line in lines if line.strip()]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.root.glob("prometheus-*.log")))

    # ------------------------------------------------------------------------------------------- the HTTP API
    def api(self, path: str, params: Mapping[str, str | Sequence[str]] | None = None, timeout: float = 10) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a success, a PrometheusError with Prometheus' message otherwise."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = r.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as err:
            body = err.read(MAX_ANSWER_BYTES + 1)
        except OSError as err:
            raise PrometheusError(f"{url}: {err}") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise PrometheusError(f"{url}: answer over {MAX_ANSWER_BYTES} bytes")
        payload = json.loads(body)
        if payload.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result list (vector samples)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self.api("query", params)
        if data.get("resultType") != "vector":
            raise PrometheusError(f"{expr!r}: expected a vector, got {data.get('resultType')}")
        return list(data["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's ``label_values(match, label)`` lists."""
        return list(self.api(f"label/{label}/values", {"match[]": [match]}))

    def active_targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", {"state": "active"})["activeTargets"])


# ------------------------------------------------------------------------- prometheus-operator's target labels
def sanitize(label: str) -> str:
    """A Kubernetes label key as prometheus-operator turns it into a Prometheus label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _selected(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    if selector.get("matchExpressions"):
        raise PrometheusError("matchExpressions are not translated by this harness")
    return all(labels.get(k) == v for k, v in match.items())


def _in_namespaces(monitor: Mapping[str, Any], namespace: str) -> bool:
    ns_sel = monitor["spec"].get("namespaceSelector") or {}
    if ns_sel.get("any"):
        return True
    names = ns_sel.get("matchNames") or [monitor["metadata"]["namespace"]]
    return namespace in names


def podmonitor_targets(podmonitor: Mapping[str, Any], pod: Mapping[str, Any]) -> list[Target]:
    """The targets a PodMonitor makes of one Ready pod (a dict as the API returns it), labels as the operator sets.

    prometheus-operator's labels for a pod target: ``namespace``, ``pod``, ``container``, ``endpoint`` (the port
    name), ``job`` (``<monitor namespace>/<monitor name>``) and each ``podTargetLabels`` key, sanitized.
    """
    spec, meta = podmonitor["spec"], pod["metadata"]
    labels = meta.get("labels") or {}
    if not _in_namespaces(podmonitor, meta["namespace"]) or not _selected(spec.get("selector") or {}, labels):
        return []
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return []
    out: list[Target] = []
    for endpoint in spec.get("podMetricsEndpoints") or []:
        for container in pod["spec"]["containers"]:
            for port in container.get("ports") or []:
                if port.get("name") != endpoint.get("port"):
                    continue
                target = {
                    "namespace": meta["namespace"],
                    "pod": meta["name"],
                    "container": container["name"],
                    "endpoint": endpoint["port"],
                    "job": f"{podmonitor['metadata']['namespace']}/{podmonitor['metadata']['name']}",
                }
                for key in spec.get("podTargetLabels") or []:
                    if key in labels:
                        target[sanitize(key)] = labels[key]
                out.append((f"{ip}:{port['containerPort']}", target))
    return out


def servicemonitor_target(servicemonitor: Mapping[str, Any], service: Mapping[str, Any], address: str) -> Target:
    """The target a ServiceMonitor makes of one endpoint of ``service`` served at ``address`` (the operator)."""
    [endpoint] = servicemonitor["spec"]["endpoints"]
    meta = service["metadata"]
    if not _selected(servicemonitor["spec"].get("selector") or {}, meta.get("labels") or {}):
        raise PrometheusError(f"ServiceMonitor {servicemonitor['metadata']['name']} does not select {meta['name']}")
    labels = {
        "namespace": meta["namespace"],
        "service": meta["name"],
        "endpoint": endpoint["port"],
        "job": meta["name"],
    }
    return address, labels


class PodTargets:
    """Keep a job's file of targets equal to the Ready pods a PodMonitor selects (polling the real API server)."""

    def __init__(
        self,
        kubeconfig: Path,
        server: PrometheusServer,
        job: str,
        podmonitor: Mapping[str, Any],
        interval: float = 0.3,
    ) -> None:
        self.api_client = config.new_client_from_config(str(kubeconfig))
        self.api = client.CoreV1Api(self.api_client)
        self.server, self.job, self.podmonitor, self.interval = server, job, podmonitor, interval
        match = (podmonitor["spec"].get("selector") or {}).get("matchLabels") or {}
        self.selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"targets-{job}", daemon=True)

    def start(self) -> PodTargets:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.api.list_pod_for_all_namespaces(label_selector=self.selector).items
            except Exception:
                self._stop.wait(1)
                continue
            targets: list[Target] = []
            for pod in pods:
                ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                if ready and not pod.metadata.deletion_timestamp:
                    targets += podmonitor_targets(self.podmonitor, self.api_client.sanitize_for_serialization(pod))
            self.server.set_targets(self.job, targets)
            self._stop.wait(self.interval)


@contextlib.contextmanager
def running(server: PrometheusServer) -> Iterator[PrometheusServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_series(
    server: PrometheusServer, expr: str, timeout: float = 60, check: Callable[[list[dict[str, Any]]], bool] = bool
) -> list[dict[str, Any]]:
    """Poll an instant query until ``check`` accepts its result; fail with the last answer and the targets' health."""
    deadline = time.monotonic() + timeout
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = server.query(expr)
        if check(last):
            return last
        time.sleep(0.5)
    health = [(t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in server.active_targets()]
    raise AssertionError(f"{expr!r}: no acceptable answer in {timeout:.0f} s; last {last!r}; targets {health}")

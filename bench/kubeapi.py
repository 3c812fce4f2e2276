"""The benchmarks' own line to the API server: a pooled raw HTTP client, a watch that timestamps readiness, and a
local control plane started with an audit log.

Why not the harness' kubectl or the ``kubernetes`` client models: a benchmark must not be slowed by its own
observer. This client sends plain JSON over a pooled TLS connection with its own User-Agent
(``specdeploy-bench``), so its requests are told apart from the operator's in the audit log; the watch records the
wall-clock time at which it *received* the event that made an object ready.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from tests.harness.localcluster import LocalCluster, control_plane_bin, free_port

from specdeploy.api.constants import CRD_NAME

REPO = Path(__file__).resolve().parents[1]
USER_AGENT = "specdeploy-bench"
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
"""

_COLLECTIONS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "SpeculativeDeployment": "/apis/specdeploy.io/v1alpha1/namespaces/{ns}/speculativedeployments",
    "Event": "/api/v1/namespaces/{ns}/events",
    "Pod": "/api/v1/namespaces/{ns}/pods",
}


def collection(kind: str, namespace: str) -> str:
    """The API path of ``kind``'s collection in ``namespace``."""
    try:
        return _COLLECTIONS[kind].format(ns=namespace)
    except KeyError:
        raise ValueError(f"bench client does not know the kind {kind!r}") from None


class ApiError(RuntimeError):
    pass


class Api:
    """A small JSON client of the local API server, authenticated with the admin client certificate."""

    def __init__(self, cluster: LocalCluster, *, pool_size: int = 16) -> None:
        pki = cluster.root / "pki"
        self.server = cluster.server
        self.pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            block=True,
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(pki / "ca.crt"),
            cert_file=str(pki / "admin.crt"),
            key_file=str(pki / "admin.key"),
        )
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, ok: Iterable[int] = (200, 201)
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/merge-patch+json" if method == "PATCH" else "application/json"
        for _ in range(30):  # 429 "storage is (re)initializing": a new CRD's watch cache is not ready yet
            resp = self.pool.request(
                method, self.server + path, body=data, headers=headers, timeout=30.0, retries=False
            )
            if resp.status != 429:
                break
            time.sleep(1)
        if resp.status not in set(ok):
            raise ApiError(f"{method} {path}: HTTP {resp.status}: {resp.data[:300]!r}")
        parsed: dict[str, Any] = json.loads(resp.data) if resp.data else {}
        return parsed

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("POST", collection(obj["kind"], meta["namespace"]), obj)

    def list(self, kind: str, namespace: str, selector: str = "") -> dict[str, Any]:
        query = f"?labelSelector={selector}" if selector else ""
        return self.request("GET", collection(kind, namespace) + query)

    def create_namespace(self, name: str) -> None:
        self.request(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    def watch_lines(self, path: str, resource_version: str, timeout_s: int) -> Iterator[dict[str, Any]]:
        url = f"{self.server}{path}?watch=1&allowWatchBookmarks=true&resourceVersion={resource_version}"
        url += f"&timeoutSeconds={timeout_s}"
        resp = self.pool.request(
            "GET",
            url,
            headers=self.headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout_s + 10.0),
            retries=False,
        )
        try:
            if resp.status != 200:
                raise ApiError(f"watch {path}: HTTP {resp.status}")
            buf = b""
            for chunk in resp.stream(64 * 1024):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()


@dataclass
class ReadyWatch:
    """Watch one kind in one namespace and note when each object first satisfies ``ready``.

    ``ready_at[name]`` is ``time.time()`` at the moment the event arrived; ``events`` counts what was received.
    """

    api: Api
    kind: str
    namespace: str
    ready: Callable[[Mapping[str, Any]], bool]
    ready_at: dict[str, float] = field(default_factory=dict)
    events: int = 0
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    keep_objects: bool = False
    on_event: Callable[[str, Mapping[str, Any], float], None] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def start(self) -> ReadyWatch:
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.kind}", daemon=True)
        self._thread.start()
        if not self._started.wait(30):
            raise ApiError(f"watch of {self.kind} in {self.namespace} did not start")
        return self

    def stop(self) -> None:
        self._stop.set()

    def _note(self, kind: str, obj: Mapping[str, Any], now: float) -> None:
        name = obj.get("metadata", {}).get("name")
        if not name:
            return
        if self.keep_objects:
            self.seen[name] = dict(obj)
        if self.on_event is not None:
            self.on_event(kind, obj, now)
        if name not in self.ready_at and kind != "DELETED" and self.ready(obj):
            self.ready_at[name] = now

    def _run(self) -> None:
        path = collection(self.kind, self.namespace)
        try:
            while not self._stop.is_set():
                listing = self.api.request("GET", path)
                now = time.time()
                for item in listing.get("items", []):
                    self._note("ADDED", item, now)
                rv = listing["metadata"]["resourceVersion"]
                self._started.set()
                while not self._stop.is_set():
                    gone = False
                    for event in self.api.watch_lines(path, rv, timeout_s=60):
                        now = time.time()
                        self.events += 1
                        kind, obj = event.get("type", ""), event.get("object", {})
                        if kind == "ERROR":
                            gone = True
                            break
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if kind != "BOOKMARK":
                            self._note(kind, obj, now)
                        if self._stop.is_set():
                            break
                    if gone:
                        break  # 410 Gone: list again
        except BaseException as e:
            self.error = e
            self._started.set()

    def wait(self, names: Iterable[str], timeout: float) -> bool:
        """Wait until every name is ready; False on timeout."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise ApiError(f"watch of {self.kind} failed: {self.error}")
            if wanted <= self.ready_at.keys():
                return True
            time.sleep(0.05)
        return False


def deployment_ready(obj: Mapping[str, Any]) -> bool:
    """A Deployment is Ready when every wanted replica is ready (the brief's readyReplicas == replicas)."""
    spec, status = obj.get("spec", {}), obj.get("status", {})
    replicas = int(spec.get("replicas", 1))
    return replicas > 0 and int(status.get("readyReplicas") or 0) >= replicas


def sd_ready(obj: Mapping[str, Any]) -> bool:
    """A SpeculativeDeployment is Ready when the operator says so in ``status.phase``."""
    return (obj.get("status") or {}).get("phase") == "Ready"


# ------------------------------------------------------------------------------------------- cluster
@contextmanager
def bench_cluster(nodes: int, *, gpus_per_node: int = 8, keep: bool = False) -> Iterator[LocalCluster]:
    """A fresh local control plane in its own temp dir, with an audit log (Metadata level), the CRD installed and
    ``nodes`` fake GPU nodes Ready. Everything is stopped and removed afterwards (unless ``keep``)."""
    root = Path(tempfile.mkdtemp(prefix="specdeploy-bench-"))
    policy = root / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    cluster = LocalCluster(
        root=root,
        bin_dir=control_plane_bin(),
        nodes=0,
        extra_apiserver_args=[
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit_log_path(root)}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",
        ],
    )
    started = time.monotonic()
    cluster.start(timeout=180)
    try:
        if nodes:
            cluster.add_gpu_nodes(nodes, gpus=gpus_per_node)
            _wait_nodes_ready(cluster, nodes, timeout=180)
        kubectl(cluster, "apply", "--server-side", "-f", str(REPO / "crds"))
        _wait_established(cluster, CRD_NAME, timeout=60)
        print(
            f"[bench] local cluster with {nodes} GPU nodes up in {time.monotonic() - started:.1f} s ({root})",
            flush=True,
        )
        yield cluster
    finally:
        cluster.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def audit_log_path(root: Path) -> Path:
    return root / "logs" / "audit.log"


def kubectl(cluster: LocalCluster, *args: str) -> str:
    proc = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise ApiError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _wait_established(cluster: LocalCluster, crd: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cluster.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
        conditions = (got.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise ApiError(f"CRD {crd} not Established within {timeout:.0f} s")


def _wait_nodes_ready(cluster: LocalCluster, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    ready = 0
    while time.monotonic() < deadline:
        nodes = cluster.get("/api/v1/nodes")["items"]
        ready = sum(
            1
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        )
        if ready >= count:
            return
        time.sleep(0.5)
    raise ApiError(f"only {ready} of {count} fake GPU nodes became Ready within {timeout:.0f} s")


# ------------------------------------------------------------------------------------------- operator
@dataclass
class Operator:
    """``specdeploy run -n NS`` as a local process with the chart's default arguments (log level info)."""

    cluster: LocalCluster
    namespaces: list[str]
    log_path: Path
    verbose: bool = False
    proc: subprocess.Popen[bytes] | None = None
    liveness_port: int = 0
    metrics_port: int = 0

    def start(self) -> Operator:
        self.liveness_port, self.metrics_port = free_port(), free_port()
        argv = [sys.executable, "-m", "specdeploy.cli", "run", "--standalone"]
        for ns in self.namespaces:
            argv += ["--namespace", ns]
        argv += [
            "--liveness",
            f"http://127.0.0.1:{self.liveness_port}/healthz",
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-address",
            "127.0.0.1",
            "--kubeconfig",
            str(self.cluster.kubeconfig),
        ]
        if self.verbose:
            argv.append("--verbose")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ApiError(f"operator exited with {self.proc.returncode}; see {self.log_path}")
            with suppress(OSError):
                url = f"http://127.0.0.1:{self.liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return self
            time.sleep(0.2)
        raise ApiError(f"operator not live after 60 s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_bytes(self) -> int:
        """VmRSS of the operator process, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise ApiError(f"no VmRSS in /proc/{self.pid}/status")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the operator process so far."""
        import os

        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        import os
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

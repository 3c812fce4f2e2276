"""A real, local Kubernetes control plane for tests and the demo: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, started as local processes on loopback only, with fake GPU nodes.

Why not a mock: the operator's CRD schema, CEL rules, RBAC, garbage collection, scheduling against
``nvidia.com/gpu`` and the Job controller must all be the real thing. The binaries come from
``hack/build-controlplane.sh`` (built from Go modules, cached under a version key); this module only wires
them together.

Everything binds 127.0.0.1 on ports picked free at start, so two clusters never collide. Fake nodes get a pod
CIDR inside 127.0.0.0/8, so every pod IP is a loopback address a test may dial. The state file
(``state.json`` in the cluster folder) lists every process started, so ``down`` leaves nothing behind even after
a crashed test run.

CLI: ``python -m tests.harness.localcluster up|down|status --dir DIR``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STAGES = REPO / "hack" / "kwok" / "stages.yaml"
BUILD_SCRIPT = REPO / "hack" / "build-controlplane.sh"
# Service ClusterIPs are allocated from here. Nothing ever dials them (tests dial pod IPs on loopback).
SERVICE_CIDR = "127.128.0.0/16"
# Second octets free for pod CIDRs: not 0/1 (127.0.0.1 is the node), not the Service range, not kwok's fallback.
_POD_OCTETS = tuple(o for o in range(2, 250) if o != 128)

GPU_NODE_LABELS = {
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/gpu.memory": "81559",
    "nvidia.com/gpu.count": "8",
    "node.kubernetes.io/instance-type": "fake-gpu-8x",
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "type": "kwok",
}


class ClusterError(RuntimeError):
    """The control plane could not be built, started or reached; the message says which component and why."""


def xdist_slot(env: Mapping[str, str]) -> tuple[int, int] | None:
    """(this worker's index, the number of workers) under pytest-xdist, from the variables it sets; else None."""
    worker, count = env.get("PYTEST_XDIST_WORKER", ""), env.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit()):
        return None
    index, total = int(worker[2:]), int(count)
    if not 0 <= index < total:
        raise ClusterError(f"PYTEST_XDIST_WORKER={worker} is not one of PYTEST_XDIST_WORKER_COUNT={count} workers")
    return index, total


def pod_octets_for_worker(env: Mapping[str, str]) -> tuple[int, ...]:
    """The pod-CIDR second octets this process may draw from.

    Under pytest-xdist every worker starts its own control plane (session fixtures are per worker), and fake vLLM
    servers bind ``<pod IP>:8000``: two workers' clusters must never hand out the same pod IP, so each worker gets
    its own disjoint slice of the octets (``PYTEST_XDIST_WORKER=gwN`` of ``PYTEST_XDIST_WORKER_COUNT``). Outside
    xdist (a serial run, the demo) every octet is allowed; the random draw keeps such clusters apart.
    """
    slot = xdist_slot(env)
    if slot is None:
        return _POD_OCTETS
    index, total = slot
    if total > len(_POD_OCTETS):
        raise ClusterError(f"{total} xdist workers: more than the {len(_POD_OCTETS)} pod-CIDR octets")
    return _POD_OCTETS[index::total]


def control_plane_bin() -> Path:
    """Return the folder with the built binaries, building them first if the cache is cold (minutes, once)."""
    override = os.environ.get("SPECDEPLOY_CONTROLPLANE_BIN")
    if override:
        return Path(override)
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}; see its output above")
    return Path(proc.stdout.strip().splitlines()[-1])


# Ports handed out by free_port() in this process: never the same one twice.
_HANDED_OUT: set[int] = set()
# Below Linux's default ephemeral range (32768-60999), so neither bind(0) nor an outgoing connection lands there.
_XDIST_PORTS = range(20000, 32768)


def worker_ports(env: Mapping[str, str]) -> range | None:
    """This xdist worker's own slice of ``_XDIST_PORTS`` (None outside xdist).

    ``free_port()`` closes its probe socket before the caller's process binds the port; two workers probing the
    kernel's ephemeral range at once may be handed the same port in that gap. Disjoint slices rule that out.
    """
    slot = xdist_slot(env)
    if slot is None:
        return None
    index, total = slot
    return _XDIST_PORTS[index::total]


def free_port() -> int:
    """A loopback TCP port free right now and never handed out before by this process.

    Under xdist it comes from this worker's own slice. Outside xdist it still comes from ``_XDIST_PORTS`` rather
    than the kernel's ``bind(0)`` pick: the kernel may hand the same port to two probes in a row once the first
    probe socket is closed (seen in CI: an operator given one port for both its liveness and its metrics server).
    """
    ports = worker_ports(os.environ) or _XDIST_PORTS
    rng = random.SystemRandom()
    for _ in range(200):
        candidate = rng.choice(ports)
        if candidate in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        _HANDED_OUT.add(candidate)
        return candidate
    raise ClusterError(f"no free loopback port in {ports} after 200 tries")


# --------------------------------------------------------------------------------------------------- PKI
def _pki(dest: Path) -> None:
    """Write a CA, the apiserver's serving cert, the admin client cert and the service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_key(path: Path, k: rsa.RSAPrivateKey) -> None:
        path.write_bytes(
            k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    now = dt.datetime.now(dt.UTC)
    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "specdeploy-local-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (dest / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_key(dest / "ca.key", ca_key)

    def leaf(name: str, cn: str, orgs: list[str], server: bool) -> None:
        k = key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs
        ]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca_name)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            first_service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
            sans: list[x509.GeneralName] = [
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(first_service_ip),
                x509.DNSName("localhost"),
                x509.DNSName("kubernetes"),
                x509.DNSName("kubernetes.default"),
                x509.DNSName("kubernetes.default.svc"),
                x509.DNSName("kubernetes.default.svc.cluster.local"),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (dest / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(dest / f"{name}.key", k)

    leaf("apiserver", "kube-apiserver", [], server=True)
    leaf("admin", "specdeploy-admin", ["system:masters"], server=False)
    sa = key()
    write_key(dest / "sa.key", sa)
    (dest / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _kubeconfig(pki: Path, server: str) -> str:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin", "namespace": "default"}}],
        "current-context": "local",
    }
    return json.dumps(cfg, indent=2)


# --------------------------------------------------------------------------------------------------- processes
@dataclass
class Proc:
    name: str
    pid: int
    log: str
    args: list[str] = field(default_factory=list)


@dataclass
class LocalCluster:
    """One control plane rooted at ``root``; ``start()`` brings it up, ``stop()`` tears everything down."""

    root: Path
    bin_dir: Path
    nodes: int = 2
    procs: list[Proc] = field(default_factory=list)
    etcd_dir: str = ""
    apiserver_port: int = 0
    extra_apiserver_args: list[str] = field(default_factory=list)
    # Components stopped by stop_component(), kept so that start_component() restarts them unchanged.
    stopped: dict[str, Proc] = field(default_factory=dict)
    # Second octet of the pod IPs (127.<octet>.<node>.x), random per cluster so that two clusters on one
    # machine (a test run and the demo, say) never hand out the same pod IP.
    # Under pytest-xdist the draw is from this worker's own slice (pod_octets_for_worker).
    pod_octet: int = field(default_factory=lambda: random.SystemRandom().choice(pod_octets_for_worker(os.environ)))

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    # -- lifecycle
    def start(self, timeout: float = 90.0) -> None:
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        if self.state_file.exists():
            stop_dir(self.root)
        pki = self.root / "pki"
        pki.mkdir(exist_ok=True)
        _pki(pki)
        self.etcd_dir = tempfile.mkdtemp(
            prefix="specdeploy-etcd-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
        )
        etcd_port, peer_port = free_port(), free_port()
        self.apiserver_port = free_port()
        self.kubeconfig.write_text(_kubeconfig(pki, self.server))
        self._save()
        try:
            self._spawn(
                "etcd",
                [
                    "--name=default",
                    f"--data-dir={self.etcd_dir}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync=true",
                    "--quota-backend-bytes=4294967296",
                    "--log-level=warn",
                ],
            )
            self._spawn(
                "kube-apiserver",
                [
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={self.apiserver_port}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    "--authorization-mode=RBAC",
                    f"--service-account-issuer=https://127.0.0.1:{self.apiserver_port}",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--allow-privileged=true",
                    "--endpoint-reconciler-type=none",
                    "--profiling=false",
                    "--event-ttl=1h",
                    *self.extra_apiserver_args,
                ],
            )
            self._wait_api(deadline=started + timeout)
            common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]
            self._spawn(
                "kube-controller-manager",
                [
                    *common,
                    "--secure-port=0",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    "--kube-api-qps=200",
                    "--kube-api-burst=400",
                    "--concurrent-deployment-syncs=20",
                    "--concurrent-replicaset-syncs=20",
                    "--concurrent-job-syncs=20",
                    "--concurrent-gc-syncs=20",
                ],
            )
            self._spawn("kube-scheduler", [*common, "--secure-port=0"])
            self._spawn(
                "kwok",
                [
                    f"--kubeconfig={self.kubeconfig}",
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    "--node-ip=127.0.0.1",
                    "--cidr=127.250.0.0/16",
                    "--node-lease-duration-seconds=40",
                    f"--config={STAGES}",
                ],
            )
            self.add_gpu_nodes(self.nodes)
            self._wait_ready(deadline=started + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_dir(self.root)

    # -- helpers
    def _spawn(self, name: str, args: list[str]) -> None:
        binary = self.bin_dir / name
        if not binary.exists():
            raise ClusterError(f"{binary} is missing; run hack/build-controlplane.sh")
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as out:
            p = subprocess.Popen(  # never a shell: argv items only
                [str(binary), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.root,
            )
        self.procs.append(Proc(name=name, pid=p.pid, log=str(log), args=list(args)))
        self._save()

    # -- fault injection: stop and start one component with the flags, port and data it had
    def component(self, name: str) -> Proc:
        """The running process of component ``name`` (etcd, kube-apiserver, kube-controller-manager, ...)."""
        for p in self.procs:
            if p.name == name:
                return p
        raise ClusterError(f"no component named {name!r} is running; running: {[p.name for p in self.procs]}")

    def stop_component(self, name: str, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
        """Stop one component and wait until it has exited: ``sig`` first (SIGTERM: its graceful shutdown; SIGKILL:
        a crash), then SIGKILL after ``grace`` seconds, as a kubelet would. kube-apiserver stops listening at once on
        SIGTERM but may hold open requests for a long while, so a short grace is the realistic case.

        The component is remembered in ``stopped`` so that :meth:`start_component` brings it back as it was.
        """
        proc = self.component(name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while _alive(proc.pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, 0)
        self.procs.remove(proc)
        self.stopped[name] = proc
        self._save()

    def start_component(self, name: str, timeout: float = 60.0) -> None:
        """Start a component stopped by :meth:`stop_component` again with the same argv (same port, same etcd).

        For kube-apiserver this returns once ``/readyz`` says ok.
        """
        proc = self.stopped.pop(name, None)
        if proc is None:
            raise ClusterError(f"component {name!r} was not stopped by stop_component()")
        self._spawn(name, proc.args)
        if name == "kube-apiserver":
            self._wait_api(deadline=time.monotonic() + timeout)

    def restart_apiserver(self, downtime: float = 0.0, sig: int = signal.SIGTERM, grace: float = 5.0) -> float:
        """Stop kube-apiserver, keep it down for ``downtime`` seconds, start it again on the same port and etcd.

        Every client's connections, watch streams included, are cut. Returns the seconds it was unreachable.
        """
        t0 = time.monotonic()
        self.stop_component("kube-apiserver", sig=sig, grace=grace)
        if downtime > 0:
            time.sleep(downtime)
        self.start_component("kube-apiserver")
        return time.monotonic() - t0

    def _save(self) -> None:
        state = {
            "procs": [p.__dict__ for p in self.procs],
            "etcd_dir": self.etcd_dir,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "bin_dir": str(self.bin_dir),
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    def token_kubeconfig(self, token: str, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig that authenticates with ``token`` only (e.g. a ServiceAccount's), no client cert."""
        ca = base64.b64encode((self.root / "pki" / "ca.crt").read_bytes()).decode()
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "token", "context": {"cluster": "local", "user": "token", "namespace": namespace}}],
            "current-context": "token",
        }
        path.write_text(json.dumps(cfg, indent=2))
        path.chmod(0o600)
        return path

    def ssl_context(self) -> ssl.SSLContext:
        pki = self.root / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def get(self, path: str, timeout: float = 5.0) -> Any:
        with urllib.request.urlopen(self.server + path, context=self.ssl_context(), timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body.startswith(b"{") else body.decode()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, status: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=10) as r:
            return json.loads(r.read())

    def _check_alive(self) -> None:
        for p in self.procs:
            if not _alive(p.pid):
                tail = Path(p.log).read_text(errors="replace")[-3000:]
                raise ClusterError(f"{p.name} exited during start-up; last lines of {p.log}:\n{tail}")

    def _wait_api(self, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if self.get("/readyz", timeout=2) == "ok":
                    return
            except Exception as e:
                last = e
            time.sleep(0.3)
        raise ClusterError(f"kube-apiserver not ready at {self.server}: {last}")

    def add_gpu_nodes(self, count: int, start: int | None = None, gpus: int = 8) -> list[str]:
        """Create ``count`` fake GPU nodes managed by kwok, each with its own loopback pod CIDR."""
        existing = self.get("/api/v1/nodes")["items"]
        first = len(existing) if start is None else start
        names = []
        for i in range(first, first + count):
            name = f"gpu-node-{i}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {**GPU_NODE_LABELS, "kubernetes.io/hostname": name, "nvidia.com/gpu.count": str(gpus)},
                },
                "spec": {
                    "podCIDR": self.pod_cidr(i),
                    "podCIDRs": [self.pod_cidr(i)],
                },
                "status": {
                    "allocatable": {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": str(gpus)},
                    "capacity": {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": str(gpus)},
                },
            }
            self.request("POST", "/api/v1/nodes", node)
            names.append(name)
        return names

    def pod_cidr(self, node_index: int) -> str:
        if not 0 <= node_index < 256:
            raise ClusterError(f"at most 256 fake nodes per cluster, asked for node {node_index}")
        return f"127.{self.pod_octet}.{node_index}.0/24"

    def _wait_ready(self, deadline: float) -> None:
        """Ready means: nodes Ready, and the default ServiceAccount exists (pods can be admitted)."""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                nodes = self.get("/api/v1/nodes")["items"]
                ready = [
                    n
                    for n in nodes
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
                ]
                sa = self.get("/api/v1/namespaces/default/serviceaccounts")["items"]
                if len(ready) >= self.nodes and any(s["metadata"]["name"] == "default" for s in sa):
                    return
            except Exception:
                pass
            time.sleep(0.3)
        raise ClusterError("nodes or the default ServiceAccount did not become ready in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); look at its state
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][0] != "Z"
    return True


def stop_dir(root: Path) -> None:
    """Stop every process recorded in ``root/state.json`` (SIGTERM, then SIGKILL) and remove etcd's data."""
    state_file = root / "state.json"
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    procs = [Proc(**p) for p in state.get("procs", [])]
    # reverse start order: kwok, scheduler, controller-manager, apiserver, etcd
    for p in reversed(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 4  # a test cluster needs no graceful drain; SIGKILL after that
    for p in procs:
        while _alive(p.pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p.pid, os.WNOHANG)
            time.sleep(0.05)
        if _alive(p.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(p.pid, 0)
    etcd_dir = state.get("etcd_dir")
    if etcd_dir:
        shutil.rmtree(etcd_dir, ignore_errors=True)
    state_file.unlink(missing_ok=True)


@contextlib.contextmanager
def running(root: Path, nodes: int = 2) -> Iterator[LocalCluster]:
    cluster = LocalCluster(root=root, bin_dir=control_plane_bin(), nodes=nodes)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "build"])
    parser.add_argument("--dir", default=str(REPO / ".cluster"), help="cluster folder (default .cluster)")
    parser.add_argument("--nodes", type=int, default=2, help="fake GPU nodes with 8 GPUs each")
    args = parser.parse_args(argv)
    root = Path(args.dir).resolve()
    if args.action == "build":
        print(control_plane_bin())
        return 0
    if args.action == "down":
        stop_dir(root)
        print(f"local cluster in {root} stopped")
        return 0
    if args.action == "status":
        if not (root / "state.json").exists():
            print("down")
            return 1
        state = json.loads((root / "state.json").read_text())
        for p in state["procs"]:
            print(f"{p['name']:<26} pid {p['pid']:<8} {'running' if _alive(p['pid']) else 'EXITED'}")
        return 0
    t0 = time.monotonic()
    bin_dir = control_plane_bin()
    t1 = time.monotonic()
    cluster = LocalCluster(root=root, bin_dir=bin_dir, nodes=args.nodes)
    cluster.start()
    tools = root / "bin"
    tools.mkdir(exist_ok=True)
    for tool in ("kubectl", "helm"):
        link = tools / tool
        link.unlink(missing_ok=True)
        link.symlink_to(bin_dir / tool)
    print(
        f"local cluster up in {time.monotonic() - t1:.1f} s (binaries ready in {t1 - t0:.1f} s)\n"
        f"  server      {cluster.server}\n  kubeconfig  {cluster.kubeconfig}\n  kubectl     {tools / 'kubectl'}\n"
        f"  helm        {tools / 'helm'}\n  nodes       {args.nodes} fake GPU nodes x 8 nvidia.com/gpu"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

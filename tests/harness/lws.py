"""The LeaderWorkerSet controller (sigs.k8s.io/lws), built from its Go module and run against the local API server.

Why a real controller: a multi-node revision is a LeaderWorkerSet, and what the operator relies on (one group of
pods per replica, the leader's address injected as ``LWS_LEADER_ADDRESS``, the whole group recreated when one
pod fails) is the controller's and its pod webhook's behaviour, not something a test should imitate.

How it runs here: ``hack/build-lws.sh`` builds the binary once into the cache; its CRDs come from the same module
(``GoCrds``). The controller's webhooks are served on 127.0.0.1 with a certificate made here (a throw-away CA and a
serving certificate for 127.0.0.1, like the harness's API server certificate) instead of LWS's in-cluster cert
manager, which would issue one for a Service the local API server cannot reach. The webhook configurations are
the module's own ``config/webhook/manifests.yaml``, with each Service reference replaced by the loopback URL and
the pod webhooks limited to pods that carry LWS's ``leaderworkerset.sigs.k8s.io/name`` label, so that the session
cluster's other pods never depend on this process.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.harness.gomodule import GoCrds, module_dir, pinned
from tests.harness.kubectl import Kubectl
from tests.harness.localcluster import free_port

REPO = Path(__file__).resolve().parents[2]
MODULE = "sigs.k8s.io/lws"
LWS_CRDS = GoCrds(
    MODULE,
    pinned("LWS_VERSION"),
    "config/crd/bases",
    ("leaderworkerset.x-k8s.io_leaderworkersets.yaml", "disaggregatedset.x-k8s.io_disaggregatedsets.yaml"),
)
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
BUILD_TIMEOUT = 1800.0  # a cold build took 511 s on 2 shared cores


def lws_binary() -> Path:
    """The controller binary, built on first use by hack/build-lws.sh (which holds a lock)."""
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "build-lws.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def _serving_cert(dest: Path) -> bytes:
    """Write tls.crt/tls.key for 127.0.0.1 signed by a new CA; return the CA certificate (PEM) for caBundle."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "specdeploy-lws-webhook-ca")])

    def base(subject: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
        )

    ca = (
        base(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        base(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "tls.crt").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (dest / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca.public_bytes(serialization.Encoding.PEM)


def webhook_configurations(port: int, ca_pem: bytes, manifests: Path) -> list[dict[str, Any]]:
    """The module's webhook configurations, pointed at https://127.0.0.1:PORT and limited to LWS's own pods."""
    import base64

    bundle = base64.b64encode(ca_pem).decode()
    out = []
    for original in yaml.safe_load_all(manifests.read_text()):
        if not original:
            continue
        doc = copy.deepcopy(original)
        doc["metadata"]["name"] = "specdeploy-test-lws-" + doc["metadata"]["name"]
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": bundle}
            if any("pods" in rule["resources"] for rule in hook["rules"]):
                hook["objectSelector"] = {"matchExpressions": [{"key": LWS_NAME_LABEL, "operator": "Exists"}]}
            hook["timeoutSeconds"] = 10
        out.append(doc)
    return out


@dataclass
class LwsController:
    """One controller process; ``start()`` installs CRDs and webhooks and waits until it is ready."""

    kubectl: Kubectl
    kubeconfig: Path
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    hooks: list[str] = field(default_factory=list)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "lws-controller.log"

    def start(self, timeout: float = 120.0) -> None:
        from tests.harness.gomodule import apply_crds

        binary = lws_binary()
        apply_crds(self.kubectl, LWS_CRDS.files())
        port, health = free_port(), free_port()
        certs = self.root / "certs"
        ca = _serving_cert(certs)
        config = {
            "apiVersion": "config.lws.x-k8s.io/v1alpha1",
            "kind": "Configuration",
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "webhook": {"port": port, "host": "127.0.0.1", "certDir": str(certs)},
            "metrics": {"bindAddress": "0"},
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        }
        config_file = self.root / "lws-config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # argv only, never a shell
                [str(binary), f"--config={config_file}", f"--kubeconfig={self.kubeconfig}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._ready(health):
            if self.proc.poll() is not None:
                raise RuntimeError(f"lws controller exited ({self.proc.returncode}); log: {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"lws controller not ready after {timeout:.0f}s; log: {self.log}")
            time.sleep(0.5)
        manifests = module_dir(MODULE, LWS_CRDS.version) / "config" / "webhook" / "manifests.yaml"
        for doc in webhook_configurations(port, ca, manifests):
            self.kubectl.run("apply", "--server-side", "-f", "-", stdin=json.dumps(doc))
            self.hooks.append(f"{doc['kind'].lower()}/{doc['metadata']['name']}")

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        for hook in self.hooks:
            self.kubectl.run("delete", hook, "--ignore-not-found", check=False)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

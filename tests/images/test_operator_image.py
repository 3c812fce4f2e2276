"""The operator image: its entrypoint answers --help, and with a kubeconfig mounted it connects to the local API
server and reconciles a SpeculativeDeployment into a Deployment, as the chart runs it (image user, read-only root,
/tmp emptyDir, no capabilities); SIGTERM stops it cleanly."""

from __future__ import annotations

import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import specs
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster, free_port
from tests.images.conftest import Images, Podman

pytestmark = [pytest.mark.images, pytest.mark.integration]

KUBECONFIG_IN_CONTAINER = "/var/run/specdeploy/kubeconfig"


def test_entrypoint_prints_help(podman: Podman, images: Images) -> None:
    done = podman.run(images.operator, ["--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: specdeploy"), done.stdout
    for command in ("run", "validate", "render", "crd"):
        assert command in done.stdout, command


class Container:
    """A detached container of the operator image; its logs survive its stop for the assertions."""

    def __init__(self, podman: Podman, image: str, args: list[str], options: list[str]) -> None:
        self.podman, self.name = podman, f"specdeploy-it-{uuid.uuid4().hex[:8]}"
        argv = [*podman.prefix, "run", "--detach", f"--name={self.name}", *podman.hardened(), *options, image, *args]
        subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)

    def _podman(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.podman.prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def logs(self) -> str:
        done = self._podman("logs", self.name)
        return done.stdout + done.stderr

    def running(self) -> bool:
        return self._podman("inspect", "--format", "{{.State.Running}}", self.name).stdout.strip() == "true"

    def stop(self) -> int:
        """SIGTERM (kopf's clean shutdown), then the exit code."""
        self._podman("stop", "--time=30", self.name, timeout=90)
        return int(self._podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip() or -1)

    def remove(self) -> None:
        self._podman("rm", "--force", self.name, timeout=120)


@pytest.fixture
def operator_container(
    podman: Podman, images: Images, cluster: LocalCluster, crd: str, namespace: str, tmp_path: Path
) -> Iterator[tuple[Container, int]]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig.read_text())
    kubeconfig.chmod(0o644)  # the image's user (65532) reads it, as from a mounted Secret
    liveness, metrics = free_port(), free_port()
    args = [
        "run", "-n", namespace, "--standalone",
        f"--liveness=http://127.0.0.1:{liveness}/healthz",
        f"--metrics-port={metrics}", "--metrics-address=127.0.0.1",
    ]  # fmt: skip
    options = [
        f"--volume={kubeconfig}:{KUBECONFIG_IN_CONTAINER}:ro",
        f"--env=KUBECONFIG={KUBECONFIG_IN_CONTAINER}",
        "--tmpfs=/tmp:rw,size=64m,mode=1777",
    ]
    container = Container(podman, images.operator, args, options)
    try:
        yield container, liveness
    finally:
        container.remove()


def live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def test_operator_image_reconciles_with_a_mounted_kubeconfig(
    operator_container: tuple[Container, int], kubectl: Kubectl, namespace: str
) -> None:
    container, liveness = operator_container

    def up() -> bool | None:
        if not container.running():
            raise AssertionError(f"the operator container exited:\n{container.logs()[-4000:]}")
        return live(liveness) or None

    wait_for("the operator container's liveness endpoint", up, timeout=120, interval=1)
    body: dict[str, Any] = specs.manifest(
        "img",
        {
            "target": {"model": "meta-llama/Llama-3.1-70B-Instruct", "tensorParallelSize": 1, "maxModelLen": 8192},
            "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
        },
    )
    kubectl.apply(body, "-n", namespace)

    def reconciled() -> list[Any] | None:
        items = (kubectl.get("deployments", namespace=namespace) or {}).get("items") or []
        return items if items and specs.sd_status(kubectl, "img", namespace).get("phase") else None

    deployments = wait_for("a Deployment and a status from the containerised operator", reconciled, timeout=120)
    assert deployments[0]["metadata"]["ownerReferences"][0]["name"] == "img"
    code = container.stop()
    logs = container.logs()
    assert code == 0, logs[-4000:]
    assert "Traceback" not in logs, logs[-4000:]

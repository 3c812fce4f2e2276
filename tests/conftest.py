"""Shared fixtures: the local control plane (started once per session, only when an integration test needs it)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from specdeploy.api.constants import CRD_NAME
from tests.harness.kubectl import Kubectl
from tests.harness.localcluster import LocalCluster, control_plane_bin
from tests.harness.operator import OperatorProcess

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """A real control plane (etcd, apiserver, controller-manager, scheduler, kwok) with 2 fake GPU nodes.

    When a test of the session failed, the components' logs are kept under ``$SPECDEPLOY_CLUSTER_LOGS``
    (default ``/tmp/specdeploy-cluster-logs``) so that a CI failure can be read afterwards.
    """
    root = Path(tempfile.mkdtemp(prefix="specdeploy-it-"))
    # OwnerReferencesPermissionEnforcement (on in OpenShift and hardened clusters) proves the operator may set
    # blockOwnerDeletion on its children's owner references.
    c = LocalCluster(
        root=root,
        bin_dir=control_plane_bin(),
        nodes=2,
        extra_apiserver_args=["--enable-admission-plugins=OwnerReferencesPermissionEnforcement"],
    )
    c.start()
    try:
        yield c
    finally:
        c.stop()
        if request.session.testsfailed:
            kept = Path(os.environ.get("SPECDEPLOY_CLUSTER_LOGS", "/tmp/specdeploy-cluster-logs")) / root.name
            shutil.copytree(root / "logs", kept, dirs_exist_ok=True)
            print(f"\ncontrol-plane logs kept in {kept}")
        if not os.environ.get("SPECDEPLOY_KEEP_CLUSTER_LOGS"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(binary=cluster.bin_dir / "kubectl", kubeconfig=cluster.kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> str:
    """The SpeculativeDeployment CRD from crds/, applied and Established."""
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
    name = CRD_NAME
    kubectl.wait_established(name)
    return name


@pytest.fixture
def operator(cluster: LocalCluster, crd: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator as a local process (`specdeploy run -n NS`), watching this test's namespace."""
    op = OperatorProcess(kubeconfig=cluster.kubeconfig, namespaces=[namespace], log_dir=tmp_path)
    op.start()
    try:
        yield op
    finally:
        op.stop()

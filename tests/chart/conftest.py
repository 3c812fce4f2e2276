"""Fixtures for the Helm chart checks: find the real helm binary and render the chart with it.

The chart tests exist to prove what a user gets from `helm install`, so they run the real Helm that
hack/build-controlplane.sh builds. A missing helm is a failure with instructions, never a silent skip.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "specdeploy"
KUBE_VERSION = "1.36.3"
RELEASE = "sd"
RELEASE_NAMESPACE = "specdeploy-system"

Manifest = dict[str, Any]

# ------------------------------------------------------------------------------------------ the operator's RBAC
# The one list of what the operator may do: (API group, resource) -> verbs. The chart's Role/ClusterRole must
# equal it (test_chart.py, on the rendering), the ServiceAccount's effective rules must equal it
# (test_chart_install.py, on the API server), and every call the operator makes during a full reconcile must
# fall inside it, while every verb here is either seen in that run or named in MAY_GO_UNSEEN with its reason.
OPERATOR_RULES: dict[tuple[str, str], set[str]] = {
    # kopf lists and watches the objects, and merge-patches metadata: its finalizer on and off.
    ("specdeploy.io", "speculativedeployments"): {"list", "watch", "patch"},
    # kube.patch_status: conditions, revision, validation and acceptance results.
    ("specdeploy.io", "speculativedeployments/status"): {"patch"},
    # Children carry ownerReferences with blockOwnerDeletion=true (render/meta.py); where the
    # OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift), setting that needs this.
    ("specdeploy.io", "speculativedeployments/finalizers"): {"update"},
    # kopf index (list+watch); kube.create, and get after a 409; kube.patch of replicas or a hand-edited template;
    # delete: the Deployment of a revision no longer serving (one Deployment per revision, issue 13).
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    # kopf index; kube._create_revision reads, then server-side applies: a PATCH that creates, for which the
    # API server checks create as well as patch; verdict annotations are merge patches; the plan prunes
    # revisions beyond the history limit.
    ("apps", "controllerrevisions"): {"get", "list", "watch", "create", "patch", "delete"},
    # kopf index; kube.create, and get after a 409; kube.patch when the rendered Service changes.
    ("", "services"): {"get", "list", "watch", "create", "patch"},
    # kopf index only: serving pods' IPs to scrape, the validator pod's termination message (its report).
    ("", "pods"): {"list", "watch"},
    # kopf index; kube.create, and get after a 409; the plan deletes an errored validation Job to retry it.
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    # kopf index; kube.create (get after a 409); patched like the Service; deleted when replicas drops below 2.
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch", "create", "patch", "delete"},
    # kopf.event and kopf's handler log messages post core/v1 Events on the object.
    ("", "events"): {"create"},
}
# Granted verbs a short full reconcile may not exercise, and the code path that needs each.
MAY_GO_UNSEEN: dict[tuple[str, str, str], str] = {
    ("apps", "deployments", "get"): "kube.create reads the existing Deployment after a 409 (stale index)",
    ("", "services", "get"): "kube.create reads the existing Service after a 409 (stale index)",
    ("batch", "jobs", "get"): "kube.create reads the existing Job after a 409 (stale index)",
    ("batch", "jobs", "delete"): "plan.py retries a validation that errored (exit 2) after VALIDATION_RETRY_SECONDS",
    ("apps", "controllerrevisions", "delete"): "plan.py prunes revisions beyond history.MAX_REVISIONS (20)",
    (
        "policy",
        "poddisruptionbudgets",
        "create",
    ): "a budget exists only at replicas >= 2 (tests/integration/test_ecosystem.py)",
    ("policy", "poddisruptionbudgets", "get"): "kube.create reads the existing budget after a 409 (stale index)",
    ("policy", "poddisruptionbudgets", "patch"): "a changed spec.disruption.maxUnavailable patches the budget",
    ("policy", "poddisruptionbudgets", "delete"): "spec.replicas dropping below 2 deletes the budget",
    ("specdeploy.io", "speculativedeployments/finalizers", "update"): (
        "checked by the API server only where the OwnerReferencesPermissionEnforcement admission plugin runs"
    ),
}
# inferencePool.enabled adds these (handlers.apply_optional; the pool is not watched).
INFERENCE_POOL_RULES: dict[tuple[str, str], set[str]] = {
    ("inference.networking.k8s.io", "inferencepools"): {"get", "create", "patch", "delete"},
}
# leaderWorkerSet.enabled adds these (issue 16: the leaderworkersets index, kube.create, patches of replicas and
# template, and the deletion of a revision's LeaderWorkerSet as of a Deployment: rollout.canary).
LEADER_WORKER_SET_RULES: dict[tuple[str, str], set[str]] = {
    ("leaderworkerset.x-k8s.io", "leaderworkersets"): {"get", "list", "watch", "create", "patch", "delete"},
}
# Peering (operator.peering.enabled): kopf keeps its keep-alive in the peering object's status (patch) and
# watches the other operators' (list+watch); it never reads one object alone. The resource is kopfpeerings per
# watched namespace, or clusterkopfpeerings for a cluster-wide operator.
PEERING_VERBS = {"list", "watch", "patch"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chart: runs the real helm binary against charts/specdeploy")


def find_helm() -> str | None:
    """SPECDEPLOY_HELM, else the control-plane cache that hack/build-controlplane.sh fills."""
    explicit = os.environ.get("SPECDEPLOY_HELM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    cache = os.environ.get("SPECDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specdeploy"
    )
    found = sorted(glob.glob(os.path.join(cache, "controlplane", "*", "bin", "helm")))
    return found[-1] if found else None


@pytest.fixture(scope="session")
def helm_bin() -> str:
    path = find_helm()
    if path is None:
        pytest.fail(
            "helm binary not found: set SPECDEPLOY_HELM to a helm v4 binary, or run hack/build-controlplane.sh "
            "which builds one into ~/.cache/specdeploy/controlplane/<versions>/bin/helm",
            pytrace=False,
        )
    return path


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)


Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def render(helm_bin: str) -> Render:
    """helm template with the given values files (relative to the chart) and --set pairs; cached per input."""
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Manifest]] = {}

    def _render(*values_files: str, sets: tuple[str, ...] = ()) -> list[Manifest]:
        key = (values_files, sets)
        if key not in cache:
            args = ["template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--kube-version", KUBE_VERSION]
            for f in values_files:
                args += ["-f", str(CHART / f)]
            for s in sets:
                args += ["--set", s]
            done = run_helm(helm_bin, *args)
            assert done.returncode == 0, f"helm template {values_files} {sets} failed:\n{done.stderr}"
            cache[key] = [d for d in yaml.safe_load_all(done.stdout) if d]
        return cache[key]

    return _render

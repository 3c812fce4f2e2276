"""The rendered LeaderWorkerSet under the real LWS controller (built from sigs.k8s.io/lws) on kwok GPU nodes.

What a user would notice: a 16-GPU target (TP 8, PP 2) with a draft becomes one group of two pods on two
8-GPU nodes, the leader's address reaches the vLLM argv through LWS's injected environment, and a group member
that dies takes the whole group down and back up (the engine spans both pods).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.lws import LWS_NAME_LABEL, LwsController

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.groups import GroupStatus, group_status
from specdeploy.render.leaderworkerset import render_leaderworkerset

POOL_LABEL = "specdeploy.io/test-pool"
TAINT = "specdeploy.io/test-pool"


@pytest.fixture(scope="module")
def lws(cluster: LocalCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LwsController]:
    controller = LwsController(kubectl=kubectl, kubeconfig=cluster.kubeconfig, root=tmp_path_factory.mktemp("lws"))
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def pool(cluster: LocalCluster, kubectl: Kubectl) -> str:
    """Two fresh 8-GPU kwok nodes, labelled and tainted so that only this module's pods use them."""
    pool = f"lws-{uuid.uuid4().hex[:6]}"
    nodes = len(cluster.get("/api/v1/nodes")["items"])
    for node in cluster.add_gpu_nodes(2, start=nodes, gpus=8):
        kubectl.run("label", "node", node, f"{POOL_LABEL}={pool}")
        kubectl.run("taint", "node", node, f"{TAINT}={pool}:NoSchedule")
    return pool


def big_spec(pool: str) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "org/target-405b", "tensorParallelSize": 8, "pipelineParallelSize": 2},
            "draft": {"model": "org/draft-1b"},
            "serving": {
                "gpusPerNode": 8,
                "nodeSelector": {POOL_LABEL: pool},
                "tolerations": [{"key": TAINT, "operator": "Equal", "value": pool, "effect": "NoSchedule"}],
            },
        }
    )


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def group_pods(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = kubectl.items("pods", namespace=namespace, selector=f"{LWS_NAME_LABEL}={name}")
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_a_tp8_pp2_target_runs_as_one_group_of_two_pods_and_a_dead_worker_recreates_the_group(
    lws: LwsController, pool: str, kubectl: Kubectl, namespace: str
) -> None:
    lws_obj = render_leaderworkerset("big", namespace, big_spec(pool), "rev1", owner=None)
    kubectl.apply(lws_obj)

    def whole_group_ready() -> list[dict[str, Any]] | None:
        pods = group_pods(kubectl, namespace, "big")
        return pods if len(pods) == 2 and all(ready(p) for p in pods) else None

    pods = wait_for("the group's 2 pods to be Ready", whole_group_ready, timeout=120, interval=1)
    assert len({p["spec"]["nodeName"] for p in pods}) == 2  # one pod per 8-GPU node
    by_index = {p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"]: p for p in pods}
    leader, worker = by_index["0"], by_index["1"]
    # LWS's pod webhook put the leader's address and each pod's index into the environment the argv refers to.
    assert env_of(leader)["LWS_LEADER_ADDRESS"] == env_of(worker)["LWS_LEADER_ADDRESS"]
    assert env_of(leader)["LWS_LEADER_ADDRESS"].startswith(f"big-0.big.{namespace}")
    assert env_of(worker)["LWS_WORKER_INDEX"] == "1"
    assert "$(LWS_LEADER_ADDRESS)" in leader["spec"]["containers"][0]["args"]
    assert "--headless" in worker["spec"]["containers"][0]["args"]
    assert leader["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    assert worker["metadata"]["labels"]["app.kubernetes.io/component"] == "server-worker"

    def group_ready_count() -> GroupStatus | None:
        got = group_status(kubectl.get("leaderworkerset", "big", namespace=namespace) or {})
        return got if got.complete and got.ready == 1 else None

    wait_for("the LeaderWorkerSet to report 1 ready group", group_ready_count, timeout=60, interval=1)

    # A worker dies: the leader is recreated too (RecreateGroupOnPodRestart), and the group becomes ready again.
    old_leader_uid = leader["metadata"]["uid"]
    kubectl.run("delete", "pod", "-n", namespace, worker["metadata"]["name"], "--wait=false")

    def group_recreated() -> list[dict[str, Any]] | None:
        pods = whole_group_ready()
        if pods is None:
            return None
        uids = {p["metadata"]["uid"] for p in pods}
        return pods if old_leader_uid not in uids else None

    wait_for("the whole group to be recreated and Ready", group_recreated, timeout=120, interval=1)
    wait_for("the LeaderWorkerSet to report 1 ready group again", group_ready_count, timeout=60, interval=1)

    # Deleting the LeaderWorkerSet removes the group.
    kubectl.run("delete", "leaderworkerset", "big", "-n", namespace, "--wait=false")
    wait_for("the group's pods to go", lambda: not group_pods(kubectl, namespace, "big"), timeout=120, interval=1)


@pytest.mark.parametrize(
    ("target", "serving", "accepted"),
    [
        ({"tensorParallelSize": 8, "pipelineParallelSize": 2}, {}, True),
        ({"tensorParallelSize": 4, "pipelineParallelSize": 3}, {}, False),
        ({"tensorParallelSize": 4, "pipelineParallelSize": 3}, {"gpusPerNode": 4}, True),
        ({"tensorParallelSize": 8, "pipelineParallelSize": 2}, {"gpusPerNode": 6}, False),
    ],
)
def test_the_api_server_refuses_a_replica_that_is_not_whole_nodes(
    crd: str, kubectl: Kubectl, namespace: str, target: dict[str, Any], serving: dict[str, Any], accepted: bool
) -> None:
    obj = {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": "nodes", "namespace": namespace},
        "spec": {"target": {"model": "org/t", **target}, "draft": {"model": "org/d"}, "serving": serving},
    }
    out = kubectl.apply(obj, "--dry-run=server", check=False)
    assert (out.returncode == 0) == accepted, out.stderr
    if not accepted:
        assert "must be a multiple of spec.serving.gpusPerNode" in out.stderr

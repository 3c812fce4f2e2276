"""The rendered LeaderWorkerSet under the real LWS controller (built from sigs.k8s.io/lws) on kwok GPU nodes.

What a user would notice: a 16-GPU target (TP 8, PP 2) with a draft becomes one group of two pods on two
8-GPU nodes, the leader's address reaches the vLLM argv through LWS's injected environment, and a group member
that dies takes the whole group down and back up (the engine spans both pods).

Through the operator (``specdeploy run --leaderworkerset``, issue 16): the object becomes Ready as one group,
counts ready groups, reads acceptance from the leader (a scripted vLLM metrics server on the leader's pod IP,
``tests.harness.fakevllm``), rolls a bad draft back on the LeaderWorkerSet, reports a recreated group, and takes
the groups with it when deleted. Without ``--leaderworkerset`` the same spec is refused, with nothing created.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.lws import LWS_NAME_LABEL, LwsController
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status

from specdeploy.api.constants import MAX_MULTI_NODE_NAME_LENGTH
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


def node_pool(cluster: LocalCluster, kubectl: Kubectl, count: int) -> str:
    """``count`` fresh 8-GPU kwok nodes, labelled and tainted with a new pool name so that only pods asking for
    that pool use them; returns the name."""
    pool = f"lws-{uuid.uuid4().hex[:6]}"
    nodes = len(cluster.get("/api/v1/nodes")["items"])
    for node in cluster.add_gpu_nodes(count, start=nodes, gpus=8):
        kubectl.run("label", "node", node, f"{POOL_LABEL}={pool}")
        kubectl.run("taint", "node", node, f"{TAINT}={pool}:NoSchedule")
    return pool


@pytest.fixture(scope="module")
def pool(cluster: LocalCluster, kubectl: Kubectl) -> str:
    """Two nodes for this module's one-group tests."""
    return node_pool(cluster, kubectl, 2)


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


HOLD = "specdeploy.io/test-terminating"  # this module's finalizer: a dying pod stays Terminating while it is set


@contextmanager
def dying(kubectl: Kubectl, namespace: str, pod: dict[str, Any]) -> Iterator[None]:
    """Delete ``pod`` and keep it Terminating until the block ends, as a kubelet does while its containers stop.

    Why: LWS v0.9.0 recreates a group when its pod controller reads a member with a deletionTimestamp (or a
    restarted container) from its cache (``handleRestartPolicy``); a member that is already gone when that
    reconcile runs is simply replaced by its StatefulSet, and the group never restarts. A kubelet keeps a deleted
    pod for its grace period, but kwok removes it at once (grace 0), so on a loaded machine the pod could vanish
    before LWS looked at it. A finalizer of the test's holds it in the API until the block ends.
    """
    with held(kubectl, namespace, pod):
        kubectl.run("delete", "pod", "-n", namespace, pod["metadata"]["name"], "--wait=false")
        yield


@contextmanager
def held(kubectl: Kubectl, namespace: str, pod: dict[str, Any]) -> Iterator[None]:
    """While the block runs, ``pod`` cannot leave the API: once deleted it stays Terminating."""
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    hold(kubectl, namespace, name, uid, on=True)
    try:
        yield
    finally:
        hold(kubectl, namespace, name, uid, on=False)


def hold(kubectl: Kubectl, namespace: str, name: str, uid: str, *, on: bool, tries: int = 3) -> None:
    """Set or clear the pod's HOLD finalizer, other finalizers kept. An update of an LWS pod passes LWS's pod
    webhook, which a loaded machine may time out: tried again, from a fresh read (resourceVersion-guarded)."""
    for _ in range(tries):
        live = kubectl.get("pod", name, namespace)
        if live is None or live["metadata"]["uid"] != uid:
            if on:
                raise AssertionError(f"pod {namespace}/{name} ({uid}) is gone before it could be held")
            return  # already released and removed
        finalizers: list[str] = live["metadata"].get("finalizers") or []
        if (HOLD in finalizers) == on:
            return
        others = [f for f in finalizers if f != HOLD]
        version = live["metadata"]["resourceVersion"]
        patch = json.dumps(
            {"metadata": {"finalizers": [*others, HOLD] if on else others or None, "resourceVersion": version}}
        )
        if kubectl.run("patch", "pod", name, "-n", namespace, "--type=merge", "-p", patch, check=False).returncode == 0:
            return
    raise AssertionError(f"could not {'set' if on else 'clear'} {HOLD} on pod {namespace}/{name}")


def leader_deleted(kubectl: Kubectl, namespace: str, leader: dict[str, Any]) -> bool:
    """True once LWS has deleted the group's leader (being deleted, gone, or already replaced)."""
    live = kubectl.get("pod", leader["metadata"]["name"], namespace)
    return (
        live is None or live["metadata"]["uid"] != leader["metadata"]["uid"] or "deletionTimestamp" in live["metadata"]
    )


def test_a_tp8_pp2_target_runs_as_one_group_of_two_pods_and_a_dead_worker_recreates_the_group(
    lws: LwsController, pool: str, kubectl: Kubectl, namespace: str
) -> None:
    lws_obj = render_leaderworkerset("big", namespace, big_spec(pool), "rev1", owner=None)
    big = lws_obj["metadata"]["name"]  # the revision's workload name, big-rev1
    kubectl.apply(lws_obj)

    def whole_group_ready() -> list[dict[str, Any]] | None:
        pods = group_pods(kubectl, namespace, big)
        return pods if len(pods) == 2 and all(ready(p) for p in pods) else None

    pods = wait_for("the group's 2 pods to be Ready", whole_group_ready, timeout=120, interval=1)
    assert len({p["spec"]["nodeName"] for p in pods}) == 2  # one pod per 8-GPU node
    by_index = {p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"]: p for p in pods}
    leader, worker = by_index["0"], by_index["1"]
    # LWS's pod webhook put the leader's address and each pod's index into the environment the argv refers to.
    assert env_of(leader)["LWS_LEADER_ADDRESS"] == env_of(worker)["LWS_LEADER_ADDRESS"]
    assert env_of(leader)["LWS_LEADER_ADDRESS"].startswith(f"{big}-0.{big}.{namespace}")
    assert env_of(worker)["LWS_WORKER_INDEX"] == "1"
    assert "$(LWS_LEADER_ADDRESS)" in leader["spec"]["containers"][0]["args"]
    assert "--headless" in worker["spec"]["containers"][0]["args"]
    assert leader["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    assert worker["metadata"]["labels"]["app.kubernetes.io/component"] == "server-worker"

    def group_ready_count() -> GroupStatus | None:
        got = group_status(kubectl.get("leaderworkerset", big, namespace=namespace) or {})
        return got if got.complete and got.ready == 1 else None

    wait_for("the LeaderWorkerSet to report 1 ready group", group_ready_count, timeout=60, interval=1)

    # A worker dies: the leader is recreated too (RecreateGroupOnPodRestart), and the group becomes ready again.
    old_uids = {leader["metadata"]["uid"], worker["metadata"]["uid"]}
    with dying(kubectl, namespace, worker):
        wait_for("LWS to delete the group's leader", lambda: leader_deleted(kubectl, namespace, leader), timeout=60)

    def group_recreated() -> list[dict[str, Any]] | None:
        pods = whole_group_ready()
        if pods is None:
            return None
        uids = {p["metadata"]["uid"] for p in pods}
        return pods if not uids & old_uids else None

    wait_for("the whole group to be recreated and Ready", group_recreated, timeout=120, interval=1)
    wait_for("the LeaderWorkerSet to report 1 ready group again", group_ready_count, timeout=60, interval=1)

    # Deleting the LeaderWorkerSet removes the group.
    kubectl.run("delete", "leaderworkerset", big, "-n", namespace, "--wait=false")
    wait_for("the group's pods to go", lambda: not group_pods(kubectl, namespace, big), timeout=120, interval=1)


def test_a_statefulset_name_of_52_characters_gets_its_pods_and_a_longer_one_loses_them_to_its_revision_label(
    lws: LwsController, pool: str, kubectl: Kubectl, namespace: str
) -> None:
    """Why multi-node names stop at MAX_MULTI_NODE_NAME_LENGTH, on the real LWS and StatefulSet controllers.

    A group's workers are a StatefulSet ``<LeaderWorkerSet>-<group index>``, whose pods carry the label
    ``controller-revision-hash=<StatefulSet>-<hash>``, the StatefulSet's ``status.updateRevision``: the hash is a
    32-bit number's decimal digits re-encoded, 10 characters for about three values in four and fewer for the rest.
    Past 63 characters the label is invalid and the pods are never created (kubernetes/kubernetes#64023). The API's
    limit leaves room for the worst case, a ``-nospec`` revision at group index 999 with a 10-character hash (52 + 11);
    here group 0 stands in for index 999 with an object name 2 characters longer, which reaches exactly 52. One more
    character: the workers exist exactly when their revision label fits (usually it does not).
    """
    revision = "0123456789-nospec"

    def group(extra: int) -> tuple[str, str]:
        obj = render_leaderworkerset(
            "l" * (MAX_MULTI_NODE_NAME_LENGTH + extra), namespace, big_spec(pool), revision, owner=None
        )
        kubectl.apply(obj)
        name = obj["metadata"]["name"]
        return name, f"{name}-0"

    def update_revision(workers: str) -> str | None:
        sts = kubectl.get("statefulset", workers, namespace) or {}
        return (sts.get("status") or {}).get("updateRevision")

    def delete(name: str) -> None:
        kubectl.run("delete", "leaderworkerset", name, "-n", namespace, "--wait=false")
        wait_for("the group's pods to go", lambda: not group_pods(kubectl, namespace, name), timeout=120, interval=1)

    name, workers = group(2)
    assert len(workers) == 52

    def whole_group_ready() -> list[dict[str, Any]] | None:
        pods = group_pods(kubectl, namespace, name)
        return pods if len(pods) == 2 and all(ready(p) for p in pods) else None

    wait_for("the group of a 52-character StatefulSet to be Ready", whole_group_ready, timeout=120, interval=1)
    label = update_revision(workers)
    assert label is not None and label.startswith(f"{workers}-") and len(label) <= 63, label
    delete(name)

    name, workers = group(3)
    assert len(workers) == 53
    label = wait_for("the worker StatefulSet's revision", lambda: update_revision(workers), timeout=120, interval=1)
    if len(label) <= 63:  # a hash of fewer than 10 characters this time: the label fits, the worker is created
        wait_for("the group of a 53-character StatefulSet to be Ready", whole_group_ready, timeout=120, interval=1)
    else:

        def refused() -> str | None:
            return next(
                (
                    e["message"]
                    for e in kubectl.items("events", namespace)
                    if e.get("reason") == "FailedCreate" and (e.get("involvedObject") or {}).get("name") == workers
                ),
                None,
            )

        message = wait_for("the StatefulSet controller to refuse the worker pod", refused, timeout=120, interval=1)
        assert f'"{label}"' in message and "must be no more than 63" in message, message
        pods = group_pods(kubectl, namespace, name)
        assert [p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"] for p in pods] == ["0"]
    delete(name)


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


# ---------------------------------------------------------------------- through the operator (issue 16)
GOOD, BAD, GOOD2 = "org/good-draft", "org/bad-draft", "org/good-draft-2"
REPLACE = {"strategy": "Replace"}  # the pool holds one group: no room for a canary group beside it


def sd_spec(pool: str, draft: str, rollout: dict[str, Any] = REPLACE) -> dict[str, Any]:
    """TP 8 x PP 2 on 8-GPU nodes (a group of 2 pods), judged on short windows so that a bad draft trips fast."""
    return {
        "target": {"model": "org/target-405b", "tensorParallelSize": 8, "pipelineParallelSize": 2},
        "draft": {"model": draft},
        "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
        "validation": {"policy": "Skip"},
        "rollout": rollout,
        "serving": {
            "gpusPerNode": 8,
            "nodeSelector": {POOL_LABEL: pool},
            "tolerations": [{"key": TAINT, "operator": "Equal", "value": pool, "effect": "NoSchedule"}],
        },
        "rollback": {
            "minAcceptanceRate": 0.5,
            "windowSeconds": 10,
            "consecutiveWindows": 1,
            "minDraftTokens": 50,
            "warmupSeconds": 0,
            "stableAfterSeconds": 3,
        },
        "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2},
    }


@pytest.fixture
def lws_operator(cluster: LocalCluster, crd: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(
        kubeconfig=cluster.kubeconfig, namespaces=[namespace], log_dir=tmp_path, extra_args=["--leaderworkerset"]
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def leaders(cluster: LocalCluster) -> Iterator[Fleet]:
    """A scripted vLLM /metrics on every Ready leader (component server): 80% accepted for GOOD and GOOD2, 20% for
    BAD (and, with a 40 ms engine step, a time per output token that follows: BAD's is the slower)."""
    rates = {GOOD: 0.8, BAD: 0.2, GOOD2: 0.8}
    fleet = Fleet(cluster.kubeconfig, lambda draft: Behaviour(rate=rates.get(draft or "", 0.7) if draft else None))
    fleet.start()
    yield fleet
    fleet.stop()


def workloads(kubectl: Kubectl, namespace: str, kind: str) -> list[str]:
    """Names of the object's workloads of ``kind`` (one per revision: big-<serving id>)."""
    return sorted(o["metadata"]["name"] for o in kubectl.items(kind, namespace, selector="specdeploy.io/name=big"))


def leader_draft(kubectl: Kubectl, name: str, namespace: str) -> str | None:
    lws_obj = kubectl.get("leaderworkerset", name, namespace=namespace) or {}
    templates = (lws_obj.get("spec") or {}).get("leaderWorkerTemplate") or {}
    args = list(((templates.get("leaderTemplate") or {}).get("spec") or {}).get("containers", [{}])[0].get("args", []))
    if "--speculative-config" not in args:
        return None
    return str(json.loads(args[args.index("--speculative-config") + 1])["model"])


def test_the_operator_serves_a_multi_node_spec_as_one_group_rolls_back_a_bad_draft_and_reports_a_recreated_group(
    lws: LwsController,
    pool: str,
    kubectl: Kubectl,
    namespace: str,
    lws_operator: OperatorProcess,
    leaders: Fleet,
) -> None:
    kubectl.apply(manifest("big", sd_spec(pool, GOOD)), "-n", namespace)

    def serving_one_group() -> dict[str, Any] | None:
        st = sd_status(kubectl, "big", namespace)
        ready = condition(st, "Ready")
        return st if ready.get("status") == "True" and st.get("readyReplicas") == 1 else None

    st = wait_for("the object to be Ready with 1 group", serving_one_group, timeout=90, interval=0.5)
    assert st["ready"] == "1/1"
    good = f"big-{st['revision']['serving']}"  # the revision's LeaderWorkerSet
    assert workloads(kubectl, namespace, "leaderworkersets") == [good]
    assert workloads(kubectl, namespace, "deployments") == []  # not a Deployment asking for 16 GPUs
    pods = group_pods(kubectl, namespace, good)
    assert len(pods) == 2 and len({p["spec"]["nodeName"] for p in pods}) == 2
    assert group_status(kubectl.get("leaderworkerset", good, namespace=namespace)).ready == 1
    # The object's Service keeps its cluster IP; LWS's headless Service for the leader's address is the revision's.
    assert kubectl.get("service", "big", namespace)["spec"]["clusterIP"] != "None"
    assert kubectl.get("service", good, namespace)["spec"]["clusterIP"] == "None"

    # Acceptance comes from the leader (workers serve no engine /metrics) and the revision becomes stable.
    def stable() -> dict[str, Any] | None:
        st = sd_status(kubectl, "big", namespace)
        return st if st.get("revision", {}).get("stable") else None

    st = wait_for("the revision to become stable", stable, timeout=60, interval=0.5)
    assert st["acceptance"]["podsCounted"] == 1
    assert st["acceptance"]["rate"] == pytest.approx(0.8, abs=0.05)
    good_revision = st["revision"]["stable"]

    # A worker dies: LWS recreates the whole group, and the object says so (Ready goes False, then True again).
    before = condition(st, "Ready")["lastTransitionTime"]
    by_index = {p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"]: p for p in pods}
    old_uids = {p["metadata"]["uid"] for p in pods}
    # The old leader is held Terminating too (a kubelet's grace period), so the group stays down until the test
    # has seen the object say so: a poll would otherwise have to catch a down state that may last under a second.
    with held(kubectl, namespace, by_index["0"]):
        with dying(kubectl, namespace, by_index["1"]):
            wait_for(
                "LWS to delete the group's leader",
                lambda: leader_deleted(kubectl, namespace, by_index["0"]),
                timeout=60,
            )

        def down() -> dict[str, Any] | None:
            ready = condition(sd_status(kubectl, "big", namespace), "Ready")
            return ready if ready.get("status") == "False" else None

        ready = wait_for("the object to report the group down", down, timeout=60, interval=0.5)
        assert "0/1 replicas ready" in str(ready.get("message")), ready

    def back_after_recreate() -> bool:
        st = sd_status(kubectl, "big", namespace)
        ready = condition(st, "Ready")
        uids = {p["metadata"]["uid"] for p in group_pods(kubectl, namespace, good)}
        recreated = not uids & old_uids and len(uids) == 2
        return recreated and ready.get("status") == "True" and ready.get("lastTransitionTime") != before

    wait_for("the group to be recreated and the object Ready again", back_after_recreate, timeout=90, interval=0.3)

    # A bad draft: the leader reports 20% acceptance, the operator rolls the LeaderWorkerSet back.
    kubectl.apply(manifest("big", sd_spec(pool, BAD)), "-n", namespace)

    def bad_group() -> str | None:
        names = workloads(kubectl, namespace, "leaderworkersets")
        return next((n for n in names if leader_draft(kubectl, n, namespace) == BAD), None)

    bad = wait_for("the bad draft's group to replace the good one", bad_group, timeout=30)

    def rolled_back() -> dict[str, Any] | None:
        st = sd_status(kubectl, "big", namespace)
        return st if condition(st, "RolledBack").get("status") == "True" else None

    st = wait_for("the bad draft to be rolled back", rolled_back, timeout=90, interval=0.5)
    assert st["revision"]["serving"] == good_revision
    wait_for(
        "the bad group to go and the good one to come back",
        lambda: workloads(kubectl, namespace, "leaderworkersets") == [good],
        timeout=30,
    )
    assert leader_draft(kubectl, good, namespace) == GOOD and bad != good
    assert [e for e in kubectl.items("events", namespace) if e.get("reason") == "RolledBack"]
    wait_for("the rolled-back group to be Ready", serving_one_group, timeout=90, interval=0.5)

    # Deleting the object removes its LeaderWorkerSet and the group's pods (owner reference, garbage collector).
    kubectl.run("delete", "sd", "big", "-n", namespace, "--wait=false")
    wait_for(
        "the LeaderWorkerSet and its pods to go",
        lambda: (
            not workloads(kubectl, namespace, "leaderworkersets")
            and not kubectl.items("pods", namespace, selector="specdeploy.io/name=big")
        ),
        timeout=90,
        interval=0.5,
    )


def test_without_leaderworkerset_support_a_multi_node_spec_is_refused_and_nothing_is_created(
    pool: str, kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(manifest("big", sd_spec(pool, GOOD)), "-n", namespace)

    def refused() -> dict[str, Any] | None:
        ready = condition(sd_status(kubectl, "big", namespace), "Ready")
        return ready if ready.get("reason") == "LeaderWorkerSetDisabled" else None

    ready = refused() or wait_for("the LeaderWorkerSetDisabled condition", refused, timeout=30)
    assert ready["status"] == "False"
    assert "leaderWorkerSet.enabled" in ready["message"]
    warnings = [e for e in kubectl.items("events", namespace) if e.get("reason") == "LeaderWorkerSetDisabled"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
    assert kubectl.items("deployments", namespace) == []
    assert not kubectl.items("pods", namespace)


@pytest.fixture(scope="module")
def wide_pool(cluster: LocalCluster, kubectl: Kubectl) -> str:
    """Four nodes for this module's canary test: the serving group and a canary group beside it."""
    return node_pool(cluster, kubectl, 4)


def test_a_multi_node_canary_is_an_extra_group_aborted_beside_the_serving_one_or_promoted_group_by_group(
    lws: LwsController,
    wide_pool: str,
    kubectl: Kubectl,
    namespace: str,
    lws_operator: OperatorProcess,
    leaders: Fleet,
) -> None:
    canary = {"strategy": "Canary", "canary": {"replicas": 1, "analysisWindows": 2}}
    kubectl.apply(manifest("big", sd_spec(wide_pool, GOOD, canary)), "-n", namespace)

    def stable() -> dict[str, Any] | None:
        st = sd_status(kubectl, "big", namespace)
        return st if st.get("revision", {}).get("stable") and st.get("readyReplicas") == 1 else None

    st = wait_for("the first revision to serve as one group and become stable", stable, timeout=120, interval=0.5)
    good = f"big-{st['revision']['serving']}"
    serving_uids = {p["metadata"]["uid"] for p in group_pods(kubectl, namespace, good)}
    assert len(serving_uids) == 2

    low: list[str] = []  # moments the object had no ready group (it must never happen)

    def watch(until: Any) -> Any:
        def step() -> Any:
            st = sd_status(kubectl, "big", namespace)
            if (st.get("readyReplicas") or 0) < 1:
                low.append(str(st.get("ready")))
            return until(st)

        return step

    # A bad draft under Canary: a second group starts beside the serving one, is judged, and is aborted.
    kubectl.apply(manifest("big", sd_spec(wide_pool, BAD, canary)), "-n", namespace)
    beside = wait_for(
        "a canary group beside the serving one",
        watch(
            lambda st: (
                workloads(kubectl, namespace, "leaderworkersets")
                if len(workloads(kubectl, namespace, "leaderworkersets")) == 2
                else None
            )
        ),
        timeout=60,
        interval=0.5,
    )
    [bad] = [n for n in beside if n != good]
    assert leader_draft(kubectl, bad, namespace) == BAD
    aborted = wait_for(
        "the canary group to be aborted",
        watch(lambda st: st if condition(st, "RolledBack").get("reason") == "CanaryAborted" else None),
        timeout=120,
        interval=0.5,
    )
    assert aborted["canary"]["phase"] == "Aborted", aborted["canary"]
    wait_for(
        "the canary's LeaderWorkerSet to go",
        watch(lambda st: workloads(kubectl, namespace, "leaderworkersets") == [good]),
        timeout=60,
        interval=0.5,
    )
    assert {p["metadata"]["uid"] for p in group_pods(kubectl, namespace, good)} == serving_uids, "serving untouched"

    # A good second draft: its group is judged beside the serving one, promoted, and the old group removed.
    kubectl.apply(manifest("big", sd_spec(wide_pool, GOOD2, canary)), "-n", namespace)

    def promoted(st: dict[str, Any]) -> dict[str, Any] | None:
        names = workloads(kubectl, namespace, "leaderworkersets")
        done = (st.get("canary") or {}).get("phase") == "Promoted" and len(names) == 1 and names != [good]
        return st if done and st.get("readyReplicas") == 1 else None

    st = wait_for(
        "the second draft's group to be promoted and the old one removed", watch(promoted), timeout=180, interval=0.5
    )
    [new] = workloads(kubectl, namespace, "leaderworkersets")
    assert leader_draft(kubectl, new, namespace) == GOOD2
    assert low == [], f"the object had no ready group at some point: {low}"

"""Issue 16: a revision's workload is a Deployment or a LeaderWorkerSet, and the plan treats both alike.

Pure functions only: the real ``plan()`` and ``writes_for`` on observed data, the LeaderWorkerSet as the LWS
controller reports it (ready groups in ``status.readyReplicas``, the leader template carrying the revision).
"""

from __future__ import annotations

import copy
from typing import Any

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.render.leaderworkerset import WORKER_COMPONENT
from specdeploy.render.workload import render_workload, workload_kind
from specdeploy.rollout import ownership, progress, stalls
from specdeploy.rollout.history import History, from_controller_revisions
from specdeploy.rollout.plan import Observed, Owner, Plan, plan
from specdeploy.rollout.workloads import LWS_DISABLED
from specdeploy.rollout.writes import Create, Delete, Patch, Ref, Write, writes_for
from specdeploy.tracker import AcceptanceTracker

NOW = "2026-01-01T00:00:00Z"
SMALL: dict[str, Any] = {
    "target": {"model": "org/target-8b", "tensorParallelSize": 8},
    "draft": {"model": "org/draft-1b"},
    "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
    "validation": {"policy": "Skip"},
}
BIG: dict[str, Any] = {
    **SMALL,
    "target": {"model": "org/target-405b", "tensorParallelSize": 8, "pipelineParallelSize": 2},
}


def spec_of(raw: dict[str, Any]) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate(raw)


def observe(
    raw: dict[str, Any],
    *,
    enabled: bool = True,
    status: dict[str, Any] | None = None,
    history: History | None = None,
    deployment: dict[str, Any] | None = None,
    lws: dict[str, Any] | None = None,
) -> Observed:
    return Observed(
        owner=Owner("big", "llm", "uid-1", 1),
        spec=spec_of(raw),
        status=status or {},
        history=history or History(),
        deployments=tuple(w for w in (deployment, lws) if w is not None),
        service=None,
        job=None,
        monitor=None,
        now_iso=NOW,
        now=0.0,
        leaderworkerset_enabled=enabled,
    )


def rolled_out(workload: dict[str, Any], ready: int | None = None) -> dict[str, Any]:
    """The workload as its controller reports it once every replica (pod or group) runs the template."""
    live = copy.deepcopy(workload)
    replicas = int(live["spec"]["replicas"])
    live["metadata"]["generation"] = 1
    ready = replicas if ready is None else ready
    live["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
    }
    return live


def first_plan(raw: dict[str, Any]) -> tuple[Plan, History]:
    p = plan(observe(raw))
    assert p.record_revision is not None
    return p, from_controller_revisions([p.record_revision])


def kind_written(write: Write) -> str | None:
    """The kind a create or patch writes (None for anything else)."""
    if isinstance(write, Create):
        return str(write.manifest["kind"])
    return write.ref.kind if isinstance(write, Patch) else None


def condition(p: Plan, type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in p.status["conditions"] if c["type"] == type_)
    return found


# ---------------------------------------------------------------------- render: one choice
def test_the_workload_is_a_leaderworkerset_only_when_a_replica_needs_more_than_one_node() -> None:
    assert workload_kind(spec_of(SMALL)) == "Deployment"
    assert workload_kind(spec_of(BIG)) == "LeaderWorkerSet"
    assert workload_kind(spec_of({**BIG, "serving": {"gpusPerNode": 16}})) == "Deployment"
    small = render_workload("big", "llm", spec_of(SMALL), "r1", owner=None)
    big = render_workload("big", "llm", spec_of(BIG), "r1", owner=None)
    assert (small["kind"], big["kind"]) == ("Deployment", "LeaderWorkerSet")
    assert small["metadata"]["name"] == big["metadata"]["name"] == "big-r1"  # one workload per revision
    assert big["spec"]["leaderWorkerTemplate"]["size"] == 2


# ---------------------------------------------------------------------- progress: groups, the leader's template
def test_progress_of_a_leaderworkerset_counts_ready_groups_on_the_leader_template() -> None:
    lws = render_workload("big", "llm", spec_of(BIG), "r1", owner=None)
    assert progress.template_revision(lws) == "r1"
    assert not progress.rolled_out(lws, "r1", 1)  # the controller has said nothing yet
    assert progress.ready_replicas(rolled_out(lws, ready=0)) == 0
    assert not progress.fully_ready(rolled_out(lws, ready=0), "r1", 1)
    assert progress.rolled_out(rolled_out(lws), "r1", 1)
    assert not progress.rolled_out(rolled_out(lws), "r2", 1)


# ---------------------------------------------------------------------- plan
def test_a_multi_node_spec_is_served_by_a_leaderworkerset_and_ready_counts_groups() -> None:
    p, history = first_plan(BIG)
    assert p.deployment is not None and p.deployment["kind"] == "LeaderWorkerSet"
    todo = writes_for(p, observe(BIG))
    assert [w.manifest["kind"] for w in todo.acts if isinstance(w, Create)] == [
        "ControllerRevision",
        "Service",
        "LeaderWorkerSet",
    ]
    assert condition(p, "Ready")["status"] == "False"

    live = rolled_out(p.deployment)
    again = plan(observe(BIG, history=history, status=p.status, lws=live))
    assert condition(again, "Ready")["status"] == "True"
    assert again.status["readyReplicas"] == 1 and again.status["ready"] == "1/1"
    # Nothing to write to the LeaderWorkerSet once the live one holds what is wanted (level-based).
    acts = writes_for(again, observe(BIG, history=history, status=again.status, lws=live)).acts
    assert not [w for w in acts if kind_written(w) == "LeaderWorkerSet"]


def test_without_leaderworkerset_support_a_multi_node_spec_is_refused_once_and_nothing_is_created() -> None:
    p = plan(observe(BIG, enabled=False))
    assert p.deployment is None and p.record_revision is None and p.service is None
    ready = condition(p, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", LWS_DISABLED)
    assert "gpusPerNode (8)" in ready["message"] and "leaderWorkerSet.enabled" in ready["message"]
    assert [(e.type, e.reason) for e in p.events] == [("Warning", LWS_DISABLED)]
    assert plan(observe(BIG, enabled=False, status=p.status)).events == []  # said once
    # A one-node spec needs no LeaderWorkerSet support.
    assert plan(observe(SMALL, enabled=False)).deployment is not None


def two_revisions(first: dict[str, Any], second: dict[str, Any]) -> tuple[dict[str, Any], History]:
    """``first`` served (its workload rolled out and ready), ``second`` recorded as the current spec's revision."""
    first_plan, _ = first_plan_of(first)
    assert first_plan.deployment is not None and first_plan.record_revision is not None
    live = rolled_out(first_plan.deployment)
    kind = "lws" if live["kind"] == "LeaderWorkerSet" else "deployment"
    second_plan = plan(observe(second, **{kind: live}))  # type: ignore[arg-type]
    assert second_plan.record_revision is not None
    return live, from_controller_revisions([first_plan.record_revision, second_plan.record_revision])


def first_plan_of(raw: dict[str, Any]) -> tuple[Plan, History]:
    return first_plan(raw)


def test_a_change_of_kind_under_replace_deletes_the_other_kinds_workload() -> None:
    replace_small = {**SMALL, "rollout": {"strategy": "Replace"}}
    replace_big = {**BIG, "rollout": {"strategy": "Replace"}}
    dep, history = two_revisions(replace_small, replace_big)
    p = plan(observe(replace_big, history=history, deployment=dep))
    assert p.deployment is not None and p.deployment["kind"] == "LeaderWorkerSet"
    assert p.deployment["metadata"]["name"] == f"big-{revision_id(spec_of(BIG))}"
    assert p.delete_deployments == [dep["metadata"]["name"]]
    todo = writes_for(p, observe(replace_big, history=history, deployment=dep))
    assert Delete(Ref("Deployment", "llm", dep["metadata"]["name"])) in todo.acts
    # And back: a Deployment revision replaces a LeaderWorkerSet, which is deleted as a LeaderWorkerSet.
    lws, history = two_revisions(replace_big, replace_small)
    back = plan(observe(replace_small, history=history, lws=lws))
    assert back.deployment is not None and back.deployment["kind"] == "Deployment"
    todo = writes_for(back, observe(replace_small, history=history, lws=lws))
    assert Delete(Ref("LeaderWorkerSet", "llm", lws["metadata"]["name"])) in todo.acts


def test_a_canary_beside_a_leaderworkerset_keeps_it_a_leaderworkerset() -> None:
    lws, history = two_revisions(BIG, SMALL)
    p = plan(observe(SMALL, history=history, lws=lws))
    kinds = {d["metadata"]["name"]: d["kind"] for d in p.deployments}
    assert kinds.get(lws["metadata"]["name"]) == "LeaderWorkerSet", kinds
    assert p.delete_deployments == []


# ---------------------------------------------------------------------- stalls and the monitor
def pod(name: str, component: str, revision: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ip": "127.0.0.1", "ready": True, "revision": revision, "component": component, **extra}


def test_an_unschedulable_worker_stalls_the_rollout_like_a_server_pod() -> None:
    p, history = first_plan(BIG)
    assert p.deployment is not None
    rid = revision_id(spec_of(BIG))
    lws = rolled_out(p.deployment, ready=0)
    worker = pod(
        "big-0-1",
        WORKER_COMPONENT,
        rid,
        ready=False,
        problem={"reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."},
    )
    observed = observe(BIG, history=history, status=p.status, lws=lws)
    refined = stalls.report(plan(observed), observed, [pod("big-0", "server", rid, ready=False), worker])
    ready = condition(refined, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Unschedulable")
    assert "pod big-0-1" in ready["message"]
    assert [e.reason for e in refined.events] == ["Unschedulable"]


def test_acceptance_is_scraped_from_leaders_only() -> None:
    rid = revision_id(spec_of(BIG))
    tracker = AcceptanceTracker()
    tracker.serving_id = rid
    pods = [pod("big-0", "server", rid), pod("big-0-1", WORKER_COMPONENT, rid, ip="127.0.0.2")]
    assert list(tracker._targets(spec_of(BIG), pods)) == ["big-0"]


def test_a_statefulsets_revisions_are_not_read_as_the_objects_revisions() -> None:
    """LWS's StatefulSets copy our pod labels onto their ControllerRevisions; only ours are the object's."""
    ours = [{"apiVersion": "specdeploy.io/v1alpha1", "kind": "SpeculativeDeployment", "controller": True}]
    statefulset = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "controller": True}]
    assert not ownership.foreign_controller(ours)
    assert not ownership.foreign_controller(None)
    assert ownership.foreign_controller(statefulset)

"""A rollout stuck after admission says why: the scheduler's, kubelet's or controller's own words on Ready and
Progressing, and one Warning Event per cause (not one per loop), from pod and Deployment statuses shaped as the
API server returns them."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.rollout.test_plan import BASE
from tests.unit.rollout.world import World, assert_schema_valid

from specdeploy import handlers
from specdeploy.rollout import stalls
from specdeploy.rollout.plan import plan

SKIP = {**BASE, "validation": {"policy": "Skip"}}
SCHEDULER_WORDS = (
    "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are available: "
    "2 No preemption victims found for incoming pod."
)
QUOTA_WORDS = (
    'pods "coder-6b9f7c8d5-x7k2p" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, '
    "limited: pods=0"
)

# A pod the scheduler could not place (kube-scheduler's PodScheduled condition, as `kubectl get -o json` shows it).
UNSCHEDULABLE_POD: dict[str, Any] = {
    "phase": "Pending",
    "qosClass": "Burstable",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": "2026-12-07T01:40:12Z",
            "reason": "Unschedulable",
            "message": SCHEDULER_WORDS,
        }
    ],
}
# A vLLM container in a crash loop, as the kubelet reports it.
CRASHLOOP_POD: dict[str, Any] = {
    "phase": "Running",
    "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-07T01:40:12Z"},
        {
            "type": "Ready",
            "status": "False",
            "lastTransitionTime": "2026-12-07T01:40:12Z",
            "reason": "ContainersNotReady",
        },
    ],
    "containerStatuses": [
        {
            "name": "vllm",
            "image": "vllm/vllm-openai:v0.32.0",
            "imageID": "docker.io/vllm/vllm-openai@sha256:5d1c",
            "containerID": "containerd://0f3e",
            "ready": False,
            "started": False,
            "restartCount": 4,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 1m20s restarting failed container=vllm pod=coder-6b9f7c8d5-x7k2p_llm("
                    "0e5d2f3a-1111-4a43-a1a8-6a1f1f0c2e11)",
                }
            },
            "lastState": {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "message": "ValueError: draft and target tensor parallel sizes must match\n",
                    "startedAt": "2026-12-07T01:41:02Z",
                    "finishedAt": "2026-12-07T01:41:09Z",
                    "containerID": "containerd://0f3e",
                }
            },
        }
    ],
}
IMAGE_PULL_POD: dict[str, Any] = {
    "phase": "Pending",
    "containerStatuses": [
        {
            "name": "vllm",
            "image": "vllm/vllm-openai:v9.9.9",
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {
                "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "vllm/vllm-openai:v9.9.9"'}
            },
        }
    ],
}
CREATING_POD: dict[str, Any] = {
    "phase": "Pending",
    "containerStatuses": [
        {"name": "vllm", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
    ],
}
# Deployment statuses as the Deployment controller writes them.
FAILED_CREATE_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "unavailableReplicas": 1,
    "conditions": [
        {
            "type": "Available",
            "status": "False",
            "lastUpdateTime": "2026-12-07T01:40:10Z",
            "lastTransitionTime": "2026-12-07T01:40:10Z",
            "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability.",
        },
        {
            "type": "ReplicaFailure",
            "status": "True",
            "lastUpdateTime": "2026-12-07T01:40:10Z",
            "lastTransitionTime": "2026-12-07T01:40:10Z",
            "reason": "FailedCreate",
            "message": QUOTA_WORDS,
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": "2026-12-07T01:40:10Z",
            "lastTransitionTime": "2026-12-07T01:40:10Z",
            "reason": "ReplicaSetUpdated",
            "message": 'ReplicaSet "coder-6b9f7c8d5" is progressing.',
        },
    ],
}
DEADLINE_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "replicas": 1,
    "updatedReplicas": 1,
    "unavailableReplicas": 1,
    "conditions": [
        {
            "type": "Available",
            "status": "False",
            "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "False",
            "lastUpdateTime": "2026-12-07T01:52:10Z",
            "lastTransitionTime": "2026-12-07T01:52:10Z",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "coder-6b9f7c8d5" has timed out progressing.',
        },
    ],
}
HEALTHY_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "replicas": 1,
    "readyReplicas": 1,
    "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok"},
    ],
}


def test_a_pod_the_scheduler_cannot_place_keeps_the_schedulers_words() -> None:
    assert stalls.pod_problem(UNSCHEDULABLE_POD) == {"reason": "Unschedulable", "message": SCHEDULER_WORDS}


def test_a_crash_loop_keeps_the_kubelets_words_and_how_the_last_run_ended_on_one_line() -> None:
    problem = stalls.pod_problem(CRASHLOOP_POD)
    assert problem is not None and problem["reason"] == "CrashLoopBackOff"
    assert problem["message"].startswith("container vllm: back-off 1m20s restarting failed container=vllm")
    assert (
        "last run exited 1 (Error): ValueError: draft and target tensor parallel sizes must match" in problem["message"]
    )
    assert "\n" not in problem["message"]


def test_an_image_pull_failure_is_a_problem_and_normal_start_up_is_not() -> None:
    assert stalls.pod_problem(IMAGE_PULL_POD) == {
        "reason": "ImagePullBackOff",
        "message": 'container vllm: Back-off pulling image "vllm/vllm-openai:v9.9.9"',
    }
    assert stalls.pod_problem(CREATING_POD) is None
    assert stalls.pod_problem({"phase": "Running"}) is None


def test_a_hostile_message_is_bounded_flattened_and_a_bogus_reason_is_not_taken() -> None:
    pod = copy.deepcopy(CRASHLOOP_POD)
    pod["containerStatuses"][0]["lastState"]["terminated"]["message"] = "\x1b[31m" + "A" * 100_000 + "\u202e"
    problem = stalls.pod_problem(pod)
    assert problem is not None and len(problem["message"]) <= stalls.MAX_WORDS
    assert problem["message"].endswith("...") and "\x1b" not in problem["message"]
    pod["containerStatuses"][0]["state"]["waiting"]["reason"] = "CrashLoopBackOff; rm -rf"
    assert stalls.pod_problem(pod) is None


def test_the_index_keeps_only_a_stuck_deployments_conditions() -> None:
    assert stalls.deployment_problems(HEALTHY_STATUS) == []
    assert [c["reason"] for c in stalls.deployment_problems(FAILED_CREATE_STATUS)] == ["FailedCreate"]
    assert [c["reason"] for c in stalls.deployment_problems(DEADLINE_STATUS)] == ["ProgressDeadlineExceeded"]
    body = {"metadata": {"name": "coder"}, "spec": {}, "status": FAILED_CREATE_STATUS}
    kept = handlers._unpack(handlers._pack(body, stalls.deployment_problems(FAILED_CREATE_STATUS)))
    assert kept["status"]["conditions"] == [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": QUOTA_WORDS}
    ]


def _pod(name: str, status: dict[str, Any], revision: str, component: str = "server") -> dict[str, Any]:
    return {"name": name, "component": component, "revision": revision, "problem": stalls.pod_problem(status)}


def test_diagnose_prefers_the_most_specific_cause() -> None:
    failed = {"status": {"conditions": stalls.deployment_problems(FAILED_CREATE_STATUS)}}
    deadline = {"status": {"conditions": stalls.deployment_problems(DEADLINE_STATUS)}}
    pods = [_pod("coder-b", CRASHLOOP_POD, "r1"), _pod("coder-a", UNSCHEDULABLE_POD, "r1")]
    assert stalls.diagnose(failed, pods, "r1") == stalls.Stall("FailedCreate", QUOTA_WORDS)
    got = stalls.diagnose(deadline, pods, "r1")
    assert got == stalls.Stall("Unschedulable", f"pod coder-a: {SCHEDULER_WORDS}")  # first by name
    assert stalls.diagnose(deadline, [], "r1") == stalls.Stall(
        "ProgressDeadlineExceeded", 'ReplicaSet "coder-6b9f7c8d5" has timed out progressing.'
    )
    # another revision's pods and the validator's are not this rollout's problem
    others = [_pod("old", CRASHLOOP_POD, "r0"), _pod("check", CRASHLOOP_POD, "r1", component="validator")]
    assert stalls.diagnose({"status": {}}, others, "r1") is None
    assert stalls.diagnose(None, pods, "r1") is None


def _stuck_world() -> World:
    w = World(spec=SKIP)
    w.settle()
    assert w.deployment is not None and w.condition("Ready")["reason"] == "RollingOut"
    return w


def _step(w: World, pods: list[dict[str, Any]]) -> None:
    """One daemon loop with the stall report, as handlers.ObjectReconciler.run_once makes it."""
    obs = w.observe()
    p = stalls.report(plan(obs), obs, pods)
    assert_schema_valid(p.status)
    w.apply(p)
    w.now += 5


def test_an_unschedulable_pod_is_reported_once_with_the_schedulers_words_and_clears_when_scheduled() -> None:
    w = _stuck_world()
    serving = w.serving()
    assert serving is not None
    pods = [_pod("coder-6b9f7c8d5-x7k2p", UNSCHEDULABLE_POD, serving)]
    writes = w.status_writes
    for _ in range(5):
        _step(w, pods)
    ready, progressing = w.condition("Ready"), w.condition("Progressing")
    assert (ready["status"], ready["reason"]) == ("False", "Unschedulable")
    assert (progressing["status"], progressing["reason"]) == ("False", "Unschedulable")
    assert SCHEDULER_WORDS in ready["message"]
    warnings = [e for e in w.events if e.type == "Warning"]
    assert [(e.reason, e.message) for e in warnings] == [("Unschedulable", ready["message"])]
    assert w.status_writes == writes + 1  # the cause stays: nothing more is written
    # scheduled and ready: Ready says so, and nothing is said about the stall again
    w.roll_out()
    _step(w, [])
    assert w.condition("Ready")["status"] == "True"
    assert [e.reason for e in w.events if e.type == "Warning"] == ["Unschedulable"]


def test_a_new_cause_is_a_new_event_and_a_crash_before_the_status_write_says_nothing_twice() -> None:
    w = _stuck_world()
    serving = w.serving()
    assert serving is not None
    w.deployment = {**(w.deployment or {}), "status": {"conditions": stalls.deployment_problems(FAILED_CREATE_STATUS)}}
    obs = w.observe()
    w.apply(stalls.report(plan(obs), obs, []), crash="after-events")  # killed before the status write
    _step(w, [])
    _step(w, [])
    assert [e.reason for e in w.events if e.type == "Warning"] == ["FailedCreate"]
    assert w.event_posts == 2  # the restart asked again under the same name: refused as existing
    assert w.condition("Ready")["message"] == QUOTA_WORDS
    # the quota is lifted, the pod is created and crash-loops: a new cause
    w.deployment["status"] = {}
    _step(w, [_pod("coder-6b9f7c8d5-x7k2p", CRASHLOOP_POD, serving)])
    _step(w, [_pod("coder-6b9f7c8d5-x7k2p", CRASHLOOP_POD, serving)])
    assert [e.reason for e in w.events if e.type == "Warning"] == ["FailedCreate", "CrashLoopBackOff"]
    assert w.condition("Progressing")["reason"] == "CrashLoopBackOff"


def test_a_serving_object_is_not_refined() -> None:
    w = _stuck_world()
    w.roll_out()
    w.settle()
    assert w.condition("Ready")["status"] == "True"
    before = copy.deepcopy(w.status)
    w.deployment = {
        **(w.deployment or {}),
        "status": {**w.deployment["status"], "conditions": stalls.deployment_problems(DEADLINE_STATUS)},
    }  # type: ignore[index]
    _step(w, [])
    assert w.status == before

"""Failures after admission, on the real control plane: what the API server accepted but could not work out is
said on the object, once, in the words of whoever saw it (the scheduler, the ReplicaSet controller, the Deployment
controller, the kubelet), and a spec the operator cannot parse is said once per generation instead of a storm.

Figures for RELIABILITY.md are printed (run with ``-s``): the time from create to the Unschedulable condition, and
the Events and status writes per minute on a spec that does not parse.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status

from specdeploy.api.constants import CRD_NAME
from specdeploy.rollout import stalls

pytestmark = pytest.mark.integration

# How long the operator is watched on a spec that does not parse (the figure is per minute).
STORM_WINDOW_SECONDS = 60.0
BAD_IMAGE = "vllm/vllm-openai:v1 beta"  # a space: refused by the model's image pattern, whatever the CRD says


def sd(name: str, tp: int = 1, **spec: Any) -> dict[str, Any]:
    body = manifest(
        name,
        {
            "target": {"model": "meta-llama/Llama-3.1-70B-Instruct", "tensorParallelSize": tp, "maxModelLen": 8192},
            "speculation": {"method": "ngram", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
        },
    )
    body["spec"].update(spec)
    return body


def events_of(kubectl: Kubectl, namespace: str, uid: str) -> list[dict[str, Any]]:
    return [e for e in kubectl.items("events", namespace) if (e.get("involvedObject") or {}).get("uid") == uid]


def stalled(kubectl: Kubectl, name: str, namespace: str, reason: str) -> dict[str, Any] | None:
    st = sd_status(kubectl, name, namespace)
    return st if condition(st, "Ready").get("reason") == reason else None


def test_a_target_too_big_for_any_node_is_reported_unschedulable_with_the_schedulers_words(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    started = time.monotonic()
    # 16 GPUs in one pod (gpusPerNode 16: a Deployment, not a LeaderWorkerSet group); the kwok nodes have 8 each
    kubectl.apply(sd("huge", tp=16, serving={"gpusPerNode": 16}), "-n", namespace)
    st = wait_for("Ready=False Unschedulable", lambda: stalled(kubectl, "huge", namespace, "Unschedulable"), 60)
    took = time.monotonic() - started
    print(f"\nFIGURE unschedulable: {took:.1f} s from create to Ready=False/Unschedulable")
    ready, progressing = condition(st, "Ready"), condition(st, "Progressing")
    assert ready["status"] == "False" and "Insufficient nvidia.com/gpu" in ready["message"], ready
    assert (progressing["status"], progressing["reason"]) == ("False", "Unschedulable")
    [pod] = kubectl.items("pods", namespace, "specdeploy.io/name=huge")
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["message"] in ready["message"]  # the scheduler's own words
    uid = kubectl.get("sd", "huge", namespace)["metadata"]["uid"]
    time.sleep(10)  # the scheduler retries the pod; the operator must not say it again
    warnings = [e for e in events_of(kubectl, namespace, uid) if e["type"] != "Normal"]
    assert [(e["reason"], e.get("count", 1)) for e in warnings] == [("Unschedulable", 1)], warnings
    assert "Insufficient nvidia.com/gpu" in warnings[0]["message"]


def test_a_quota_that_refuses_the_pods_is_reported_as_failed_create(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    kubectl.apply(quota, "-n", namespace)
    wait_for("quota in force", lambda: (kubectl.get("resourcequota", "no-pods", namespace) or {}).get("status"))
    kubectl.apply(sd("refused"), "-n", namespace)
    st = wait_for("Ready=False FailedCreate", lambda: stalled(kubectl, "refused", namespace, "FailedCreate"), 90)
    ready = condition(st, "Ready")
    assert "exceeded quota: no-pods" in ready["message"], ready
    assert condition(st, "Progressing")["reason"] == "FailedCreate"
    uid = kubectl.get("sd", "refused", namespace)["metadata"]["uid"]
    time.sleep(5)
    warnings = [e for e in events_of(kubectl, namespace, uid) if e["type"] != "Normal"]
    assert [e["reason"] for e in warnings] == ["FailedCreate"], warnings


def test_a_crash_looping_vllm_container_is_reported_with_the_kubelets_words(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    # hack/kwok/stages.yaml: a pod with this annotation gets a container waiting in CrashLoopBackOff, as a kubelet
    # reports a container whose last run exited 1.
    annotations = {"kwok.specdeploy.io/crash-loop": "true"}
    kubectl.apply(sd("crashy", serving={"podAnnotations": annotations}), "-n", namespace)
    st = wait_for("Ready=False CrashLoopBackOff", lambda: stalled(kubectl, "crashy", namespace, "CrashLoopBackOff"), 60)
    ready = condition(st, "Ready")
    assert "back-off" in ready["message"] and "last run exited 1 (Error)" in ready["message"], ready
    uid = kubectl.get("sd", "crashy", namespace)["metadata"]["uid"]
    warnings = [e for e in events_of(kubectl, namespace, uid) if e["type"] != "Normal"]
    assert [e["reason"] for e in warnings] == ["CrashLoopBackOff"], warnings


def test_a_deployment_past_its_progress_deadline_is_read_as_progress_deadline_exceeded(
    kubectl: Kubectl, namespace: str
) -> None:
    """The rendered progressDeadlineSeconds is the start-up allowance plus ten minutes, too long for a test; a plain
    Deployment with a 1 s deadline and a pod that cannot be scheduled gives the real statuses the pure functions
    read."""
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "late"},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 1,
            "selector": {"matchLabels": {"app": "late"}},
            "template": {
                "metadata": {"labels": {"app": "late"}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.32.0",
                            "resources": {"limits": {"nvidia.com/gpu": "16"}},
                        }
                    ]
                },
            },
        },
    }
    kubectl.apply(dep, "-n", namespace)

    def deadline_passed() -> dict[str, Any] | None:
        status = (kubectl.get("deployment", "late", namespace) or {}).get("status") or {}
        done = any(c.get("reason") == "ProgressDeadlineExceeded" for c in status.get("conditions") or [])
        return status if done else None

    status = wait_for("ProgressDeadlineExceeded", deadline_passed, 60)
    kept = stalls.deployment_problems(status)
    assert [(c["type"], c["status"], c["reason"]) for c in kept] == [
        ("Progressing", "False", "ProgressDeadlineExceeded")
    ]
    got = stalls.diagnose({"status": {"conditions": kept}}, [], None)
    assert got is not None and got.reason == "ProgressDeadlineExceeded" and "timed out progressing" in got.message
    [pod] = kubectl.items("pods", namespace, "app=late")
    problem = stalls.pod_problem(pod["status"])
    assert problem is not None and problem["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in problem["message"]


# ----------------------------------------------------------------------------------------- a spec that does not parse
@pytest.fixture
def loose_image_crd(kubectl: Kubectl) -> Iterator[None]:
    """The CRD with no pattern on spec.serving.image for the duration of one create: an object stored under an older,
    looser CRD (the skew a CRD upgrade leaves behind) without relying on any one pattern's dialect. Put back after."""
    original = kubectl.get("crd", CRD_NAME)
    loose = json.loads(json.dumps(original))
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        loose["metadata"].pop(key, None)
    loose.pop("status", None)
    schema = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    image = schema["properties"]["spec"]["properties"]["serving"]["properties"]["image"]
    assert image.pop("pattern", None), "the CRD no longer has an image pattern to loosen"
    kubectl.run("replace", "-f", "-", stdin=json.dumps(loose))
    try:
        yield
    finally:
        restored = json.loads(json.dumps(original))
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            restored["metadata"].pop(key, None)
        restored.pop("status", None)
        kubectl.run("replace", "-f", "-", stdin=json.dumps(restored))
        kubectl.wait_established(CRD_NAME)


def _watch_writes(kubectl: Kubectl, name: str, namespace: str, seconds: float) -> int:
    """How many times the object changed during ``seconds`` (a watch from its current version)."""
    proc = subprocess.Popen(
        [
            str(kubectl.binary),
            f"--kubeconfig={kubectl.kubeconfig}",
            "get",
            "sd",
            name,
            "-n",
            namespace,
            "--watch-only",
            "-o",
            "json",
            "--output-watch-events",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(seconds)
    finally:
        proc.terminate()
    out, _ = proc.communicate(timeout=10)
    return out.count('"type": "MODIFIED"')


def test_a_spec_the_model_refuses_is_said_once_per_generation_then_recovers_when_fixed(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, loose_image_crd: None
) -> None:
    obj = sd("skewed", serving={"image": BAD_IMAGE})
    wait_for("the loose CRD in force", lambda: kubectl.apply(obj, "-n", namespace, check=False).returncode == 0, 30)
    st = wait_for("Ready=False InvalidSpec", lambda: stalled(kubectl, "skewed", namespace, "InvalidSpec"), 30)
    ready = condition(st, "Ready")
    assert ready["message"].startswith("spec does not parse: spec.serving.image"), ready
    assert st["phase"] == "Failed" and condition(st, "Progressing")["reason"] == "InvalidSpec"
    uid = kubectl.get("sd", "skewed", namespace)["metadata"]["uid"]
    before = len(events_of(kubectl, namespace, uid))
    writes = _watch_writes(kubectl, "skewed", namespace, STORM_WINDOW_SECONDS)
    events = events_of(kubectl, namespace, uid)
    per_minute = (len(events) - before) * 60.0 / STORM_WINDOW_SECONDS
    print(
        f"\nFIGURE invalid spec: {per_minute:.1f} Events/min and {writes} status writes in {STORM_WINDOW_SECONDS:.0f} s"
    )
    assert writes == 0 and per_minute == 0
    assert [(e["type"], e["reason"]) for e in events if e["type"] != "Normal"] == [("Warning", "InvalidSpec")]
    assert not kubectl.items("deployments", namespace)  # nothing of it was rolled out

    # fixed: the next generation parses and rolls out
    kubectl.run(
        "patch",
        "sd",
        "skewed",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"serving": {"image": "vllm/vllm-openai:v0.32.0"}}}),
    )
    st = wait_for(
        "Ready after the fix", lambda: (s := sd_status(kubectl, "skewed", namespace)).get("phase") == "Ready" and s, 60
    )
    assert st["observedGeneration"] == 2
    assert [e["reason"] for e in events_of(kubectl, namespace, uid) if e["type"] != "Normal"] == ["InvalidSpec"]


def test_an_nbsp_in_the_image_is_refused_by_the_api_server_or_said_once(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    """Go's \\s is ASCII-only and Python's is Unicode: an image ending in a no-break space. Either the CRD refuses it
    at apply time (the patterns agree) or the operator says InvalidSpec once; never a storm."""
    applied = kubectl.apply(sd("nbsp", serving={"image": "vllm/vllm-openai:v1\u00a0"}), "-n", namespace, check=False)
    if applied.returncode != 0:
        assert "spec.serving.image" in applied.stderr
        return
    wait_for("Ready=False InvalidSpec", lambda: stalled(kubectl, "nbsp", namespace, "InvalidSpec"), 30)
    uid = kubectl.get("sd", "nbsp", namespace)["metadata"]["uid"]
    time.sleep(5)
    assert [e["reason"] for e in events_of(kubectl, namespace, uid) if e["type"] != "Normal"] == ["InvalidSpec"]

"""The harness's Service client and kubelet stand-in, on a real API server.

``tests.harness.endpointclient`` routes completions the way a Service proxy does: to the Service's ready endpoints
(the EndpointSlice controller's rule over the selected pods: the real controller cannot write slices with loopback
pod IPs), each change seen one second late. ``tests.harness.kubelet`` makes a pod Ready only when its server
answers and plays a deleted pod's preStop pause before the server stops. Together they are what lets the canary
e2e claim "0 failed requests": these tests show the client never reaches a pod whose server is not up, that a pod
deleted while requests flow (a canary aborted, an old revision scaled down) loses none of them with the renderer's
preStop pause (``render/drain.py``), and that it does lose some without one, so the check can fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.endpointclient import EndpointClient, wait_counts
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.kubelet import ANNOTATION, VALUE
from tests.harness.localcluster import LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

APP = {"app.kubernetes.io/name": "ec-test"}
SERVER = {"app.kubernetes.io/component": "server", "app.kubernetes.io/managed-by": "specdeploy"}
PORT = 8000
MODEL = "org/target"


def service(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ec", "namespace": ns},
        "spec": {"selector": APP, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]},
    }


def pod(ns: str, name: str, *, served: bool = True, pre_stop_s: int = 2) -> dict[str, Any]:
    """A pod the Service selects, with its kubelet played by the harness; ``served``: the scripted fleet runs its
    server (the fleet serves pods with the server labels only)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {**APP, **(SERVER if served else {})},
            "annotations": {ANNOTATION: VALUE},
        },
        "spec": {
            "terminationGracePeriodSeconds": 10,
            # An exec of sleep, as render/drain.py writes it (the sleep action needs Kubernetes 1.30).
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.32.0",
                    "args": ["--port", str(PORT), "--served-model-name", MODEL],
                    "ports": [{"name": "http", "containerPort": PORT}],
                    **(
                        {"lifecycle": {"preStop": {"exec": {"command": ["sleep", str(pre_stop_s)]}}}}
                        if pre_stop_s
                        else {}
                    ),
                }
            ],
        },
    }


def client(cluster: LocalCluster, namespace: str) -> EndpointClient:
    return EndpointClient(
        cluster.kubeconfig, namespace, "ec", model=MODEL, prompts=["hello"], max_tokens=8, concurrency=4
    ).start()


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, lambda _draft: Behaviour(rate=None, completion_seconds=0.2), interval=0.2).start()
    yield f
    f.stop()


def test_client_reaches_only_ready_pods_and_a_deleted_pod_loses_no_request(
    cluster: LocalCluster, kubectl: Kubectl, namespace: str, fleet: Fleet
) -> None:
    kubectl.apply(service(namespace), "-n", namespace)
    for name in ("a", "b"):
        kubectl.apply(pod(namespace, name), "-n", namespace)
    # Selected by the Service, Running, but nothing answers on its IP: a real kubelet never marks it Ready.
    kubectl.apply(pod(namespace, "never-up", served=False), "-n", namespace)

    ec = client(cluster, namespace)
    try:
        wait_for("both served pods in the Service's ready endpoints", lambda: len(ec.endpoints()) == 2, timeout=60)
        assert {e.pod for e in ec.endpoints()} == {"a", "b"}
        wait_counts(ec, 40, timeout=60)
        never = kubectl.get("pod", "never-up", namespace)
        assert never["status"]["phase"] == "Running" and never["status"].get("podIP"), never["status"]

        # Delete a pod while requests flow: its endpoint turns not-ready at once (terminating), the harness kubelet
        # keeps its server through the preStop pause, then stops it and removes the pod.
        kubectl.run("delete", "pod", "a", "-n", namespace, "--wait=false")
        wait_for("pod a removed", lambda: not kubectl.get("pod", "a", namespace), timeout=60)
        served_a = ec.counts.per_pod["a"].ok
        ok_before = ec.snapshot()[0]
        wait_counts(ec, ok_before + 40, timeout=60)
    finally:
        counts = ec.stop()
    print(f"endpoint client: {counts.describe()}")
    assert counts.failed == 0, counts.errors
    assert "never-up" not in counts.per_pod, counts.describe()
    assert counts.per_pod["a"].ok == served_a, "requests went to pod a after it was removed"
    assert counts.per_pod["a"].ok >= 10 and counts.per_pod["b"].ok >= 30, counts.describe()
    assert counts.no_endpoint_waits == 0, counts.describe()


def test_a_pod_stopped_before_proxies_drop_it_loses_requests(
    cluster: LocalCluster, kubectl: Kubectl, namespace: str, fleet: Fleet
) -> None:
    """Without a preStop pause (what the renderer wrote before render/drain.py), the server stops as soon as the
    pod is deleted while proxies still route to it for a moment: requests fail."""
    kubectl.apply(service(namespace), "-n", namespace)
    for name in ("a", "b"):
        kubectl.apply(pod(namespace, name, pre_stop_s=0), "-n", namespace)
    ec = client(cluster, namespace)
    try:
        wait_for("both pods in the Service's ready endpoints", lambda: len(ec.endpoints()) == 2, timeout=60)
        wait_counts(ec, 20, timeout=60)
        kubectl.run("delete", "pod", "a", "-n", namespace, "--wait=false")
        wait_for("pod a removed", lambda: not kubectl.get("pod", "a", namespace), timeout=60)
        wait_counts(ec, ec.snapshot()[0] + 20, timeout=60)
    finally:
        counts = ec.stop()
    print(f"endpoint client, no preStop: {counts.describe()}")
    assert counts.per_pod["a"].failed > 0, counts.describe()
    assert counts.per_pod["b"].failed == 0, counts.errors


def test_kwok_pods_without_the_harness_kubelet_are_ready_at_once(kubectl: Kubectl, namespace: str) -> None:
    """The other side of the opt-in: a pod without the annotation keeps kwok's instant readiness (integration
    tests with scripted servers rely on it)."""
    plain = pod(namespace, "plain", served=False)
    del plain["metadata"]["annotations"]
    kubectl.apply(plain, "-n", namespace)
    managed = pod(namespace, "managed", served=False)
    kubectl.apply(managed, "-n", namespace)

    def ready(name: str) -> str | None:
        p = kubectl.get("pod", name, namespace) or {}
        found = [c["status"] for c in p.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        return found[0] if found and p["status"].get("phase") == "Running" else None

    assert wait_for("pod plain Running", lambda: ready("plain"), timeout=30) == "True"
    assert wait_for("pod managed Running", lambda: ready("managed"), timeout=30) == "False"
    time.sleep(1)
    assert ready("managed") == "False"

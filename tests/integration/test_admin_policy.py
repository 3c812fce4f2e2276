"""The operator started with the admin's allow-list, on the real API server: a spec that breaks it gets the reason
and one Warning Event and no child, and an edit that breaks it leaves the serving Deployment exactly as it was."""

from __future__ import annotations

import copy
import http.server
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness import specs
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, sd_status

pytestmark = pytest.mark.integration

ALLOWED_IMAGE = "vllm/vllm-openai:v0.32.0"
REFUSED_IMAGE = "evil.example.com/vllm-openai:v0.32.0"
ALLOWED_PROMETHEUS = "http://127.0.0.1:9/prometheus"


def manifest(name: str, image: str) -> dict[str, Any]:
    return specs.manifest(
        name,
        {
            "target": {"model": "meta-llama/Llama-3.1-8B-Instruct"},
            "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
            "validation": {"policy": "Skip"},
            "serving": {"image": image},
        },
    )


@pytest.fixture
def policed(cluster: LocalCluster, crd: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(
        kubeconfig=cluster.kubeconfig,
        namespaces=[namespace],
        log_dir=tmp_path,
        extra_args=["--allowed-images", "vllm/vllm-openai:*", "--allowed-prometheus-urls", ALLOWED_PROMETHEUS],
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


def refused(kubectl: Kubectl, name: str, namespace: str, generation: int) -> dict[str, Any] | None:
    st = sd_status(kubectl, name, namespace)
    ready = condition(st, "Ready")
    ok = ready.get("reason") == "PolicyViolation" and st.get("observedGeneration") == generation
    return st if ok else None


def policy_events(kubectl: Kubectl, name: str, namespace: str) -> list[dict[str, Any]]:
    return [
        e
        for e in kubectl.items("events", namespace)
        if e["involvedObject"].get("name") == name and e["reason"] == "PolicyViolation"
    ]


def test_a_disallowed_image_gets_the_condition_one_event_and_no_deployment(
    kubectl: Kubectl, namespace: str, policed: OperatorProcess
) -> None:
    kubectl.apply(manifest("evil", REFUSED_IMAGE), "-n", namespace)
    st = wait_for("the PolicyViolation condition", lambda: refused(kubectl, "evil", namespace, 1), timeout=60)
    ready = condition(st, "Ready")
    assert ready["status"] == "False"
    head = f"spec refused by the operator's policy: spec.serving.image: image '{REFUSED_IMAGE}'"
    assert ready["message"].startswith(head)
    assert st["phase"] == "Degraded"
    [event] = wait_for("the Warning Event", lambda: policy_events(kubectl, "evil", namespace) or None, timeout=20)
    assert event["type"] == "Warning" and "spec.serving.image" in event["message"]
    label = "specdeploy.io/name=evil"
    assert kubectl.deployment("evil", namespace) is None
    assert kubectl.items("controllerrevisions", namespace, label) == []
    assert kubectl.items("jobs", namespace, label) == []
    # The next loops (a resync, a no-op change of metadata) say nothing more.
    kubectl.run("label", "sd", "evil", "-n", namespace, "touched=yes")
    policed.wait_live()
    assert len(policy_events(kubectl, "evil", namespace)) == 1
    assert event.get("count", 1) == 1


def test_an_edit_to_a_disallowed_image_leaves_the_serving_deployment_alone(
    kubectl: Kubectl, namespace: str, policed: OperatorProcess
) -> None:
    obj = manifest("good", ALLOWED_IMAGE)
    kubectl.apply(obj, "-n", namespace)

    def serving() -> dict[str, Any] | None:
        st = sd_status(kubectl, "good", namespace)
        return st if st.get("phase") == "Ready" else None

    before = wait_for("good Ready", serving, timeout=60)
    deployment = kubectl.deployment("good", namespace)
    bad = copy.deepcopy(obj)
    bad["spec"]["serving"]["image"] = REFUSED_IMAGE
    kubectl.apply(bad, "-n", namespace)
    st = wait_for("the PolicyViolation condition", lambda: refused(kubectl, "good", namespace, 2), timeout=60)
    assert st["revision"]["serving"] == before["revision"]["serving"]
    assert f"revision {before['revision']['serving']} keeps serving" in condition(st, "Degraded")["message"]
    after = kubectl.deployment("good", namespace)
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert after["spec"]["template"] == deployment["spec"]["template"]
    assert after["status"].get("readyReplicas") == 1


class CountingServer:
    """An HTTP server on 127.0.0.1 that counts the requests it gets (what a refused Prometheus URL points at)."""

    def __init__(self) -> None:
        hits = self.hits = [0]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[0] += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[]}}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reconciles(op: OperatorProcess) -> float:
    found = re.search(r'^specdeploy_reconcile_duration_seconds_count\{handler="reconcile"\} (\S+)$', op.metrics(), re.M)
    return float(found.group(1)) if found else 0.0


def test_a_prometheus_url_outside_the_allow_list_is_refused_never_queried_and_not_retried_in_a_loop(
    kubectl: Kubectl, namespace: str, policed: OperatorProcess
) -> None:
    server = CountingServer()
    try:
        obj = manifest("ssrf", ALLOWED_IMAGE)
        obj["spec"]["metrics"] = {"source": "Prometheus", "prometheus": {"url": server.url}, "scrapeIntervalSeconds": 2}
        obj["spec"]["rollback"] = {"windowSeconds": 10}
        kubectl.apply(obj, "-n", namespace)
        st = wait_for("the PolicyViolation condition", lambda: refused(kubectl, "ssrf", namespace, 1), timeout=60)
        assert condition(st, "Ready")["message"].startswith(
            f"spec refused by the operator's policy: spec.metrics.prometheus.url: '{server.url}' is not one of the "
            "Prometheus URLs the operator's policy allows"
        )
        assert kubectl.deployment("ssrf", namespace) is None
        before = reconciles(policed)
        time.sleep(6)
        # Nothing changes: the daemon wakes on its scrape interval (2 s) at most, never in a tight retry loop.
        assert reconciles(policed) - before <= 6
        assert server.hits[0] == 0
        assert len(policy_events(kubectl, "ssrf", namespace)) == 1
    finally:
        server.close()

"""The HF token never appears in anything the operator or the validator writes.

A recognisable token sits in a Secret that two SpeculativeDeployments reference through
``spec.serving.hfTokenSecretRef``. The operator runs with ``--debug``; the validation Jobs run through the harness's
kubelet stand-in, which resolves ``secretKeyRef`` like a kubelet, so the validator really has the token in its
environment. One object validates local model folders and is served (scraped by the fake vLLM fleet); the other
names Hub repositories on a Hub that rejects the token and quotes it back in every error. Afterwards everything
written is searched for the token (and its base64 form): the objects' spec and status, Events, the Deployments,
Jobs, pods, Services and ControllerRevisions, the operator's debug log and its /metrics page, and the validator's
argv, stdout, stderr and report (termination message).

The operator's own RBAC cannot read Secrets: ``tests/chart/test_chart_install.py::
test_kubectl_auth_can_i_as_the_service_account`` checks that with ``kubectl auth can-i`` as its ServiceAccount.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import zoo
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.podrunner import PodRunner
from tests.harness.specs import manifest, sd_status
from tests.reliability.echohub import EchoHub

pytestmark = pytest.mark.integration

TOKEN = f"hf_SpecdeployCanary{uuid.uuid4().hex}"
KINDS = ("sd", "events", "deployments", "replicasets", "jobs", "pods", "services", "controllerrevisions", "configmaps")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    target = zoo.llama(root / "llama-3.1-8b-instruct", zoo.LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>")
    draft = zoo.llama(root / "llama-3.2-1b-instruct", zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
    return {"target": str(target), "draft": str(draft)}


@pytest.fixture
def hub() -> Iterator[EchoHub]:
    h = EchoHub("401")
    yield h
    h.close()


def sd(name: str, target: str, draft: str) -> dict[str, Any]:
    return manifest(
        name,
        {
            "target": {"model": target, "maxModelLen": 8192},
            "draft": {"model": draft},
            "serving": {"hfTokenSecretRef": {"name": "hf", "key": "token"}},
            "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 1},
            "rollback": {"windowSeconds": 10, "consecutiveWindows": 1, "minDraftTokens": 10, "warmupSeconds": 0},
        },
    )


def test_the_hf_token_appears_nowhere(
    cluster: LocalCluster,
    kubectl: Kubectl,
    crd: str,
    namespace: str,
    models: dict[str, str],
    hub: EchoHub,
    tmp_path: Path,
) -> None:
    kubectl.run("create", "secret", "generic", "hf", f"--from-literal=token={TOKEN}", "-n", namespace)
    operator = OperatorProcess(cluster.kubeconfig, [namespace], tmp_path / "operator", extra_args=["--debug"])
    hub_env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    runner = PodRunner(cluster.kubeconfig, extra_env=hub_env).start()
    fleet = Fleet(cluster.kubeconfig, lambda draft: Behaviour(rate=0.8 if draft else None)).start()
    operator.start()
    try:
        kubectl.apply(
            [
                sd("local", models["target"], models["draft"]),
                sd("hub", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.2-1B-Instruct"),
            ],
            "-n",
            namespace,
        )
        wait_for(
            "the local pair validated, served and judged",
            lambda: (s := sd_status(kubectl, "local", namespace)).get("phase") == "Ready" and s.get("acceptance"),
            timeout=150,
        )
        wait_for(
            "the Hub pair's validation to report the rejected token",
            lambda: (sd_status(kubectl, "hub", namespace).get("validation") or {}).get("exitCode") == 2,
            timeout=120,
        )
        metrics_page = operator.metrics()
    finally:
        operator.stop()
        runner.stop()
        fleet.stop()

    assert any(TOKEN in seen for seen in hub.seen_tokens), "the validator never sent the token: nothing was tested"
    assert len(runner.runs) >= 2

    written: dict[str, str] = {}
    for kind in KINDS:
        written[f"kubectl get {kind}"] = json.dumps(kubectl.get(kind, namespace=namespace))
    written["operator debug log"] = operator.logs()
    written["operator /metrics"] = metrics_page
    for i, run in enumerate(runner.runs):
        written[f"validator run {i} argv"] = json.dumps(run["argv"])
        written[f"validator run {i} stdout+stderr"] = run["logs"]
        written[f"validator run {i} report"] = run["message"]
    forms = {"plain": TOKEN, "base64": base64.b64encode(TOKEN.encode()).decode(), "tail": TOKEN[-24:]}
    leaks = [f"{where}: {form}" for where, text in written.items() for form, value in forms.items() if value in text]
    total = sum(len(t) for t in written.values())
    print(f"\nsearched {total / 1024:.0f} KiB in {len(written)} places for the token: {len(leaks)} hit(s)")
    print(f"hub pair's validation status: {json.dumps(sd_status(kubectl, 'hub', namespace)['validation'])[:400]}")
    assert (
        "HF_TOKEN is set but this account has no access"
        in sd_status(kubectl, "hub", namespace)["validation"]["summary"]
    )
    assert not leaks, "the HF token leaked:\n" + "\n".join(leaks)

    # The debug log really is a debug log, and the pods get the token only by reference.
    assert " DEBUG " in written["operator debug log"] or "[DEBUG" in written["operator debug log"]
    referenced = set()
    for pod in kubectl.items("pods", namespace):
        for c in pod["spec"]["containers"]:
            for e in c.get("env", []):
                if e["name"] in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
                    assert e == {"name": e["name"], "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
                    referenced.add(pod["metadata"]["labels"].get("app.kubernetes.io/component"))
    assert {"server", "validator"} <= referenced, referenced

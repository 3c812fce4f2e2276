"""Issue 15 items 1-3 on the real control plane: the scale subresource (kubectl scale, the controller-manager's
HPA controller, KEDA's real ScaledObject schema), the PodDisruptionBudget (the disruption controller counts the
pods it spans) and the Gateway API Inference Extension InferencePool (GAIE's real v1 schema).

KEDA's and GAIE's CRDs come from their Go modules at the versions pinned in hack/versions.env
(``tests.harness.gomodule``), as a user installing those projects would apply them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.harness import specs
from tests.harness.gomodule import GoCrds, apply_crds, pinned
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, sd_status

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KEDA_CRDS = GoCrds(
    "github.com/kedacore/keda/v2", pinned("KEDA_VERSION"), "config/crd/bases", ("keda.sh_scaledobjects.yaml",)
)
GAIE_CRDS = GoCrds(
    "sigs.k8s.io/gateway-api-inference-extension",
    pinned("GAIE_VERSION"),
    "config/crd/bases",
    ("inference.networking.k8s.io_inferencepools.yaml",),
)
API = "/apis/specdeploy.io/v1alpha1"


def manifest(name: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = specs.manifest(
        name,
        {
            "target": {"model": "meta-llama/Llama-3.1-70B-Instruct", "maxModelLen": 8192},
            "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "replicas": replicas,
            "validation": {"policy": "Skip"},
        },
    )
    body["spec"].update(spec)
    return body


def ready_with(kubectl: Kubectl, name: str, namespace: str, replicas: int, timeout: float = 90) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        st = sd_status(kubectl, name, namespace)
        ok = condition(st, "Ready").get("status") == "True" and st.get("ready") == f"{replicas}/{replicas}"
        return st if ok else None

    return wait_for(f"{namespace}/{name} Ready with {replicas} replicas", ready, timeout=timeout)


def scale_of(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any]:
    out = kubectl.run("get", "--raw", f"{API}/namespaces/{namespace}/speculativedeployments/{name}/scale").stdout
    scale: dict[str, Any] = json.loads(out)
    return scale


def test_scale_subresource_kubectl_scale_and_hpa_change_pods_not_the_revision_and_the_budget_follows(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(manifest("sc", replicas=1), "-n", namespace)
    first = ready_with(kubectl, "sc", namespace, 1)
    selector = "app.kubernetes.io/component=server,specdeploy.io/name=sc"
    assert first["selector"] == selector
    scale = scale_of(kubectl, "sc", namespace)
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 1 and scale["status"] == {"replicas": 1, "selector": selector}
    assert kubectl.get("pdb", "sc", namespace) is None  # one replica: no budget

    # kubectl scale goes through /scale; the operator rolls out more pods of the same revision.
    kubectl.run("scale", "sd", "sc", "--replicas=3", "-n", namespace)
    scaled = ready_with(kubectl, "sc", namespace, 3)
    assert scaled["revision"]["current"] == first["revision"]["current"]
    assert scaled["revision"]["serving"] == first["revision"]["serving"]
    assert len(kubectl.items("controllerrevisions", namespace, "specdeploy.io/name=sc")) == 1
    assert not kubectl.items("jobs", namespace)  # no validation rerun (Skip: none at all)
    assert len(kubectl.items("pods", namespace, selector)) == 3

    # The budget: created at 2+ replicas, owned by the object; the disruption controller counts the pods it spans.
    def budget_counts_pods() -> dict[str, Any] | None:
        pdb = kubectl.get("pdb", "sc", namespace)
        st = (pdb or {}).get("status") or {}
        return pdb if st.get("expectedPods") == 3 and st.get("currentHealthy") == 3 else None

    pdb = wait_for("the PodDisruptionBudget spanning 3 pods", budget_counts_pods, timeout=60)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["metadata"]["generation"] == 1  # the loops of the scale-out wrote it once (no patch churn)
    assert pdb["status"]["disruptionsAllowed"] == 1
    uid = kubectl.get("sd", "sc", namespace)["metadata"]["uid"]
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == uid

    # spec.disruption.maxUnavailable patches it; the CEL twin refuses a budget that blocks every drain.
    kubectl.run(
        "patch", "sd", "sc", "-n", namespace, "--type=merge", "-p", '{"spec":{"disruption":{"maxUnavailable":"67%"}}}'
    )
    wait_for(
        "maxUnavailable 67%",
        lambda: (kubectl.get("pdb", "sc", namespace) or {}).get("spec", {}).get("maxUnavailable") == "67%",
    )
    refused = kubectl.run(
        "patch",
        "sd",
        "sc",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"disruption":{"maxUnavailable":0}}}',
        check=False,
    )
    assert refused.returncode != 0 and "spec.disruption.maxUnavailable" in refused.stderr, refused.stderr

    # The controller-manager's HPA controller resolves the scale subresource and, below its minimum, scales
    # through it (no metrics API here, so no recommendation from the CPU metric, which is fine).
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "sc", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "specdeploy.io/v1alpha1", "kind": "SpeculativeDeployment", "name": "sc"},
            "minReplicas": 4,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }
    kubectl.apply(hpa)

    def hpa_scaled() -> dict[str, Any] | None:
        got = kubectl.get("hpa", "sc", namespace) or {}
        able = condition(got.get("status") or {}, "AbleToScale")
        return got if able.get("status") == "True" and got["status"].get("desiredReplicas") == 4 else None

    got = wait_for("the HPA able to scale the SpeculativeDeployment", hpa_scaled, timeout=90)
    assert condition(got["status"], "AbleToScale")["reason"] in (
        "SucceededRescale",
        "SucceededGetScale",
        "ReadyForNewScale",
    )
    assert kubectl.get("sd", "sc", namespace)["spec"]["replicas"] == 4
    at_four = ready_with(kubectl, "sc", namespace, 4)
    assert at_four["revision"]["current"] == first["revision"]["current"]
    kubectl.run("delete", "hpa", "sc", "-n", namespace)

    # Below two replicas the budget goes; back at two it returns; the garbage collector takes it with the object.
    kubectl.run("scale", "sd", "sc", "--replicas=1", "-n", namespace)
    wait_for("the budget deleted at 1 replica", lambda: kubectl.get("pdb", "sc", namespace) is None)
    kubectl.run("scale", "sd", "sc", "--replicas=2", "-n", namespace)
    wait_for("the budget back at 2 replicas", lambda: kubectl.get("pdb", "sc", namespace) is not None)
    kubectl.run("delete", "sd", "sc", "-n", namespace, "--timeout=60s")
    wait_for("the budget garbage-collected", lambda: not kubectl.items("pdb", namespace), timeout=60)


def test_keda_scaled_object_example_is_accepted_by_kedas_schema(kubectl: Kubectl, namespace: str) -> None:
    apply_crds(kubectl, KEDA_CRDS.files())
    example = yaml.safe_load((REPO / "examples" / "keda" / "scaledobject.yaml").read_text())
    assert example["spec"]["scaleTargetRef"]["kind"] == "SpeculativeDeployment"
    assert "vllm:num_requests_waiting" in example["spec"]["triggers"][0]["metadata"]["query"]
    example["metadata"]["namespace"] = namespace
    kubectl.run("apply", "--server-side", "--field-manager=specdeploy-tests", "-f", "-", stdin=yaml.safe_dump(example))
    stored = kubectl.get("scaledobject", example["metadata"]["name"], namespace)
    assert stored["spec"]["scaleTargetRef"] == example["spec"]["scaleTargetRef"]  # not pruned: the schema knows it
    assert stored["spec"]["triggers"] == example["spec"]["triggers"]
    assert stored["spec"]["advanced"] == example["spec"]["advanced"]


def test_inference_pool_is_stored_by_gaies_schema_follows_the_spec_and_is_garbage_collected(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    apply_crds(kubectl, GAIE_CRDS.files())
    routing = {"inferencePool": {"enabled": True}}
    kubectl.apply(manifest("pool", routing=routing, serving={"port": 8000}), "-n", namespace)
    ready_with(kubectl, "pool", namespace, 1)
    pool = wait_for("the InferencePool", lambda: kubectl.get("inferencepool", "pool", namespace))
    time.sleep(3)  # a few more loops: the pool is written once, not on every loop
    pool = kubectl.get("inferencepool", "pool", namespace)
    assert pool["metadata"]["generation"] == 1
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"] == {
        "group": "",
        "kind": "Service",
        "name": "pool-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }
    match = ",".join(f"{k}={v}" for k, v in sorted(pool["spec"]["selector"]["matchLabels"].items()))
    assert [p["metadata"]["name"] for p in kubectl.items("pods", namespace, match)] == [
        p["metadata"]["name"] for p in kubectl.items("pods", namespace, "specdeploy.io/name=pool")
    ]
    assert pool["metadata"]["ownerReferences"][0]["uid"] == kubectl.get("sd", "pool", namespace)["metadata"]["uid"]

    # A named endpoint picker patches the pool; disabling deletes it; enabling again brings it back.
    picker = {"name": "picker", "port": 9100, "failureMode": "FailOpen"}
    kubectl.run(
        "patch",
        "sd",
        "pool",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"routing": {"inferencePool": {"endpointPickerRef": picker}}}}),
    )
    wait_for(
        "the pool naming the picker",
        lambda: (
            (kubectl.get("inferencepool", "pool", namespace) or {})
            .get("spec", {})
            .get("endpointPickerRef", {})
            .get("name")
            == "picker"
        ),
    )
    kubectl.run(
        "patch",
        "sd",
        "pool",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"routing":{"inferencePool":{"enabled":false}}}}',
    )
    wait_for("the pool deleted when disabled", lambda: kubectl.get("inferencepool", "pool", namespace) is None)
    kubectl.run(
        "patch",
        "sd",
        "pool",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"routing":{"inferencePool":{"enabled":true}}}}',
    )
    wait_for("the pool back", lambda: kubectl.get("inferencepool", "pool", namespace))
    kubectl.run("delete", "sd", "pool", "-n", namespace, "--timeout=60s")
    wait_for("the pool garbage-collected", lambda: not kubectl.items("inferencepools", namespace), timeout=60)

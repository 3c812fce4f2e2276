"""A SpeculativeDeployment on the real local control plane becomes a vLLM Deployment and Service, reaches Ready,
follows spec changes, and is cleaned up by the garbage collector."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest
import yaml
from tests.harness import specs
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, sd_status

pytestmark = pytest.mark.integration


def manifest(
    name: str, k: int = 4, policy: str = "Skip", replicas: int = 1, tp: int = 1, **spec: Any
) -> dict[str, Any]:
    """A SpeculativeDeployment; TP 1 by default so that many fit on the two 8-GPU fake nodes."""
    body: dict[str, Any] = specs.manifest(
        name,
        {
            "target": {"model": "meta-llama/Llama-3.1-70B-Instruct", "tensorParallelSize": tp, "maxModelLen": 8192},
            "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": k},
            "replicas": replicas,
            "validation": {"policy": policy},
            "rollout": {"strategy": "Replace"},  # a change of k rolls out at once (test_canary: Canary)
        },
    )
    body["spec"].update(spec)
    return body


def rendered(obj: dict[str, Any], namespace: str) -> dict[str, dict[str, Any]]:
    """What `specdeploy render` prints for this object, by kind."""
    o = copy.deepcopy(obj)
    o["metadata"]["namespace"] = namespace
    out = subprocess.run(
        [sys.executable, "-m", "specdeploy.cli", "render", "-f", "-"],
        input=yaml.safe_dump(o),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {d["kind"]: d for d in yaml.safe_load_all(out) if d}


def wait_ready(kubectl: Kubectl, name: str, namespace: str, timeout: float = 60) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        st = sd_status(kubectl, name, namespace)
        return st if condition(st, "Ready").get("status") == "True" and st.get("phase") == "Ready" else None

    return wait_for(f"{namespace}/{name} Ready", ready, timeout=timeout)


def test_apply_creates_rendered_children_and_reaches_ready(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    obj = manifest("llama", tp=4)
    kubectl.apply(obj, "-n", namespace)
    status = wait_ready(kubectl, "llama", namespace)

    dep = kubectl.deployment("llama", namespace)
    svc = kubectl.get("service", "llama", namespace)
    expected = rendered(obj, namespace)
    want_c = expected["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    got_c = dep["spec"]["template"]["spec"]["containers"][0]
    assert got_c["args"] == want_c["args"]
    assert got_c["command"] == want_c["command"]
    assert got_c["resources"]["limits"]["nvidia.com/gpu"] == "4"
    spec_cfg = json.loads(got_c["args"][got_c["args"].index("--speculative-config") + 1])
    assert spec_cfg["model"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert spec_cfg["num_speculative_tokens"] == 4
    assert svc["spec"]["ports"][0]["name"] == "http"
    uid = kubectl.get("sd", "llama", namespace)["metadata"]["uid"]
    for child in (dep, svc):
        refs = child["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == uid and refs[0]["controller"] is True

    assert status["readyReplicas"] == 1
    assert status["observedGeneration"] == 1
    assert status["revision"]["current"] == status["revision"]["serving"]
    table = kubectl.run("get", "sd", "llama", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    for col in ("TARGET", "DRAFT", "K", "TP", "ACCEPT", "READY", "STATUS", "AGE"):
        assert col in header.split(), header
    assert "meta-llama/Llama-3.1-70B-Instruct" in row and "meta-llama/Llama-3.2-1B-Instruct" in row
    assert " Ready " in f" {row} " and "1/1" in row


def test_changing_k_rolls_the_deployment_and_advances_observed_generation(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(manifest("roll", k=4), "-n", namespace)
    first = wait_ready(kubectl, "roll", namespace)
    kubectl.apply(manifest("roll", k=6), "-n", namespace)

    def rolled() -> dict[str, Any] | None:
        dep = kubectl.deployment("roll", namespace)
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        cfg = json.loads(args[args.index("--speculative-config") + 1])
        st = sd_status(kubectl, "roll", namespace)
        return st if cfg["num_speculative_tokens"] == 6 and st.get("observedGeneration") == 2 else None

    status = wait_for("K=6 rolled out", rolled, timeout=60)
    assert status["revision"]["current"] != first["revision"]["current"]
    status = wait_ready(kubectl, "roll", namespace)
    assert status["revision"]["serving"] == status["revision"]["current"]


def test_delete_removes_children_through_garbage_collection(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(manifest("gone"), "-n", namespace)
    wait_ready(kubectl, "gone", namespace)
    kubectl.run("delete", "sd", "gone", "-n", namespace, "--timeout=60s")

    def children_gone() -> bool:
        sel = "specdeploy.io/name=gone"
        return not any(
            kubectl.items(kind, namespace, sel) for kind in ("deployments", "services", "replicasets", "pods")
        )

    wait_for("children garbage-collected", children_gone, timeout=60)


def test_replicas_zero_scales_down_and_reports_zero(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(manifest("idle", replicas=0), "-n", namespace)
    status = wait_ready(kubectl, "idle", namespace)
    assert status["replicas"] == 0
    assert kubectl.deployment("idle", namespace)["spec"]["replicas"] == 0


def test_operator_restart_mid_reconcile_creates_no_duplicates(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"dup-{i}" for i in range(5)]
    kubectl.apply([manifest(n) for n in names], "-n", namespace)
    operator.kill()  # SIGKILL while the five are being reconciled
    operator.start()
    for n in names:
        wait_ready(kubectl, n, namespace)
    deps = kubectl.items("deployments", namespace)
    svcs = kubectl.items("services", namespace)
    revs = kubectl.items("controllerrevisions", namespace)
    assert sorted(d["metadata"]["labels"]["specdeploy.io/name"] for d in deps) == names  # one each, no duplicate
    assert sorted(s["metadata"]["name"] for s in svcs) == names
    assert len(revs) == len(names)
    for n in names:
        pods = kubectl.items("pods", namespace, f"specdeploy.io/name={n}")
        assert len(pods) == 1


def test_steady_state_makes_no_writes(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    kubectl.apply(manifest("quiet", rollback={"warmupSeconds": 600}), "-n", namespace)
    wait_ready(kubectl, "quiet", namespace)
    # The monitor's one transition in this span (not judged yet -> warming up) has been published:
    wait_for(
        "the warm-up verdict in status",
        lambda: sd_status(kubectl, "quiet", namespace).get("acceptance", {}).get("reason") == "WarmingUp",
    )

    def versions() -> dict[str, str]:
        objs = [kubectl.get(kind, "quiet", namespace) for kind in ("sd", "service")]
        objs += kubectl.deployments("quiet", namespace)  # one per revision
        return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in objs}

    before = versions()
    import time

    time.sleep(8)  # several wake-ups and resyncs
    after = versions()
    assert before == after

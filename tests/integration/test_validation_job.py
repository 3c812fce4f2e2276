"""The validation Job gates every rollout: on the real control plane, with the validator's own command run by
the harness (a kubelet stand-in) on real tokenizer files, and its report read from the termination message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness import zoo
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.podrunner import PodRunner
from tests.harness.specs import condition, manifest, sd_status

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return zoo.model_folders(tmp_path_factory.mktemp("models"))


@pytest.fixture
def runner(cluster: LocalCluster) -> Iterator[PodRunner]:
    r = PodRunner(cluster.kubeconfig).start()
    yield r
    r.stop()


def sd(name: str, target: str, draft: str, policy: str = "Enforce") -> dict[str, Any]:
    return manifest(
        name,
        {
            "target": {"model": target, "maxModelLen": 8192},
            "draft": {"model": draft},
            "validation": {"policy": policy},
        },
    )


def draft_of(kubectl: Kubectl, name: str, ns: str) -> str | None:
    dep = kubectl.deployment(name, ns)
    if not dep:
        return None
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    import json

    return str(json.loads(args[args.index("--speculative-config") + 1])["model"])


def test_compatible_draft_is_validated_then_rolled_out(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, runner: PodRunner, models: dict[str, str]
) -> None:
    kubectl.apply(sd("ok", models["target"], models["good"]), "-n", namespace)
    st = wait_for(
        "validated and Ready",
        lambda: (s := sd_status(kubectl, "ok", namespace)).get("phase") == "Ready" and s,
        timeout=120,
    )
    assert condition(st, "Validated")["status"] == "True"
    v = st["validation"]
    assert v["compatible"] is True and v["exitCode"] == 0
    names = {c["name"] for c in v["checks"]}
    assert {"vocabulary", "token_ids", "special_tokens", "context_length", "tensor_parallel", "architecture"} <= names
    job = kubectl.items("jobs", namespace)[0]
    assert job["metadata"]["name"] == f"ok-validate-{st['revision']['current']}"
    [run] = runner.runs
    assert run["argv"][:2] == ["specdeploy", "validate"] and run["exit"] == 0
    assert draft_of(kubectl, "ok", namespace) == models["good"]


def test_incompatible_first_revision_deploys_nothing(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, runner: PodRunner, models: dict[str, str]
) -> None:
    kubectl.apply(sd("mismatch", models["target"], models["bad"]), "-n", namespace)
    st = wait_for(
        "validation failure",
        lambda: (s := sd_status(kubectl, "mismatch", namespace)).get("phase") == "Failed" and s,
        timeout=120,
    )
    assert condition(st, "Validated")["reason"] == "ValidationFailed"
    assert condition(st, "Degraded")["status"] == "True"
    assert "vocabulary" in condition(st, "Validated")["message"]
    assert st["validation"]["compatible"] is False
    assert kubectl.deployment("mismatch", namespace) is None
    assert [f["reason"] for f in st["revision"]["failed"]] == ["ValidationFailed"]
    warnings = [e for e in kubectl.items("events", namespace) if e["reason"] == "ValidationFailed"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
    assert "vocabulary" in warnings[0]["message"]


def test_incompatible_update_keeps_the_last_good_pods_serving(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, runner: PodRunner, models: dict[str, str]
) -> None:
    kubectl.apply(sd("keep", models["target"], models["good"]), "-n", namespace)
    first = wait_for(
        "first Ready", lambda: (s := sd_status(kubectl, "keep", namespace)).get("phase") == "Ready" and s, 120
    )
    kubectl.apply(sd("keep", models["target"], models["bad"]), "-n", namespace)
    st = wait_for(
        "second revision refused",
        lambda: (
            condition(s := sd_status(kubectl, "keep", namespace), "Validated").get("reason") == "ValidationFailed" and s
        ),
        timeout=120,
    )
    assert st["revision"]["serving"] == first["revision"]["current"]
    assert condition(st, "Degraded")["status"] == "True"
    assert condition(st, "Ready")["status"] == "True"  # the last good pods keep serving
    assert draft_of(kubectl, "keep", namespace) == models["good"]


def test_warn_policy_rolls_out_with_the_findings(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, runner: PodRunner, models: dict[str, str]
) -> None:
    kubectl.apply(sd("warned", models["target"], models["bad"], policy="Warn"), "-n", namespace)
    st = wait_for(
        "rolled out despite findings",
        lambda: (
            (s := sd_status(kubectl, "warned", namespace)).get("validation")
            and condition(s, "Ready").get("status") == "True"
            and s
        ),
        timeout=120,
    )
    assert st["validation"]["compatible"] is False
    assert condition(st, "Validated")["status"] == "False"
    assert draft_of(kubectl, "warned", namespace) == models["bad"]
    assert st["revision"]["failed"] == []


def test_job_is_hardened_and_never_carries_a_token_literal(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, models: dict[str, str]
) -> None:
    obj = sd("hardened", models["target"], models["good"])
    obj["spec"]["serving"] = {"hfTokenSecretRef": {"name": "hf"}}
    kubectl.apply(obj, "-n", namespace)
    job = wait_for("the Job", lambda: (j := kubectl.items("jobs", namespace)) and j[0])
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
    token_env = [e for e in c["env"] if e["name"] == "HF_TOKEN"]
    assert token_env == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]

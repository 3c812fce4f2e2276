"""Live acceptance rate and automatic rollback on the real local control plane.

Each Ready vLLM pod gets a scripted vLLM metrics server on its loopback pod IP (``tests.harness.fakevllm``:
real HTTP, vLLM's exact metric names, counters advancing with simulated traffic). The acceptance rate each draft
model shows is chosen by the test. The operator scrapes the pods, closes windows and decides on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status

pytestmark = pytest.mark.integration

GOOD, BAD, SILENT = "org/good-draft", "org/bad-draft", "org/silent-draft"
RATES = {GOOD: 0.8, BAD: 0.2, SILENT: None}
FAST_ROLLBACK = {
    "minAcceptanceRate": 0.5,
    "windowSeconds": 10,
    "consecutiveWindows": 2,
    "minDraftTokens": 100,
    "warmupSeconds": 0,
    "stableAfterSeconds": 5,
}


def behaviour(draft: str | None) -> Behaviour:
    if draft is None:
        return Behaviour(rate=None)
    if draft == SILENT:
        return Behaviour(rate=0.9, draft_tokens_per_second=0.0)  # series exist, zero traffic
    return Behaviour(rate=RATES.get(draft, 0.7))


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour).start()
    yield f
    f.stop()


def sd(name: str, draft: str, **rollback: Any) -> dict[str, Any]:
    return manifest(
        name,
        {
            "target": {"model": "org/target-8b", "tensorParallelSize": 1},
            "draft": {"model": draft},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
            "rollback": {**FAST_ROLLBACK, **rollback},
            "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2},
            "rollout": {"strategy": "Replace"},  # rollbacks as they were (test_canary: Canary)
        },
    )


def deployment_args(kubectl: Kubectl, name: str, ns: str) -> list[str]:
    dep = kubectl.deployment(name, ns)
    return list(dep["spec"]["template"]["spec"]["containers"][0]["args"]) if dep else []


def draft_in(args: list[str]) -> str | None:
    if "--speculative-config" not in args:
        return None
    return str(json.loads(args[args.index("--speculative-config") + 1])["model"])


def events(kubectl: Kubectl, ns: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in kubectl.items("events", ns) if e.get("reason") == reason]


def wait_stable(kubectl: Kubectl, name: str, ns: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(
        f"{name} to become stable",
        lambda: (st := sd_status(kubectl, name, ns)).get("revision", {}).get("stable") and st,
        timeout=timeout,
    )


def test_healthy_draft_stays_and_becomes_stable(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("good", GOOD), "-n", namespace)
    st = wait_stable(kubectl, "good", namespace)
    assert st["revision"]["stable"] == st["revision"]["current"] == st["revision"]["serving"]
    acc = st["acceptance"]
    assert acc["rate"] == pytest.approx(0.8, abs=0.03)
    assert acc["draftTokens"] >= 100 and acc["podsCounted"] == 1
    assert 1 <= acc["recommendedNumSpeculativeTokens"] <= 16
    assert condition(st, "RolledBack")["status"] == "False"
    assert draft_in(deployment_args(kubectl, "good", namespace)) == GOOD
    metrics = operator.metrics()
    assert f'specdeploy_acceptance_rate{{name="good",namespace="{namespace}"}}' in metrics


def test_a_drop_below_threshold_rolls_back_to_the_stable_revision(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("swap", GOOD), "-n", namespace)
    stable = wait_stable(kubectl, "swap", namespace)["revision"]["stable"]
    kubectl.apply(sd("swap", BAD), "-n", namespace)

    def rolled_back() -> dict[str, Any] | None:
        st = sd_status(kubectl, "swap", namespace)
        return st if condition(st, "RolledBack").get("status") == "True" else None

    st = wait_for("a rollback", rolled_back, timeout=120)
    assert st["revision"]["serving"] == stable
    assert st["revision"]["current"] != stable
    assert [f["id"] for f in st["revision"]["failed"]] == [st["revision"]["current"]]
    assert st["phase"] == "RolledBack"
    wait_for(
        "the Deployment back on the good draft", lambda: draft_in(deployment_args(kubectl, "swap", namespace)) == GOOD
    )
    [event] = events(kubectl, namespace, "RolledBack")
    assert event["type"] == "Warning"
    assert "below the threshold 0.500" in event["message"]
    assert "draft tokens accepted" in event["message"]
    # The spec still names the bad draft: the operator never edits spec (GitOps-safe), and does not retry it.
    assert kubectl.get("sd", "swap", namespace)["spec"]["draft"]["model"] == BAD


def test_a_bad_first_revision_gets_speculation_disabled(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("first", BAD), "-n", namespace)

    def disabled() -> list[str] | None:
        args = deployment_args(kubectl, "first", namespace)
        return args if args and "--speculative-config" not in args else None

    args = wait_for("speculation disabled", disabled, timeout=120)
    assert "org/target-8b" in args
    st = wait_for(
        "Ready without speculation",
        lambda: (
            (s := sd_status(kubectl, "first", namespace)).get("revision", {}).get("serving", "").endswith("-nospec")
            and s
        ),
        timeout=60,
    )
    assert condition(st, "RolledBack")["status"] == "True"
    assert len(events(kubectl, namespace, "RolledBack")) == 1


def test_no_data_holds(kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet) -> None:
    kubectl.apply(sd("quiet", SILENT), "-n", namespace)
    import time

    time.sleep(35)  # three windows of zero traffic
    st = sd_status(kubectl, "quiet", namespace)
    assert condition(st, "RolledBack")["status"] == "False"
    assert st["revision"]["failed"] == []
    assert draft_in(deployment_args(kubectl, "quiet", namespace)) == SILENT
    assert st["acceptance"]["verdict"] == "Hold"
    assert "holding" in st["acceptance"]["message"]


def test_operator_killed_mid_rollback_completes_it_exactly_once(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("crash", GOOD), "-n", namespace)
    stable = wait_stable(kubectl, "crash", namespace)["revision"]["stable"]
    kubectl.apply(sd("crash", BAD), "-n", namespace)

    def decision_recorded() -> bool:
        revs = kubectl.items("controllerrevisions", namespace, "specdeploy.io/name=crash")
        return any((r["metadata"].get("annotations") or {}).get("specdeploy.io/state") == "failed" for r in revs)

    wait_for("the failed verdict on the ControllerRevision", decision_recorded, timeout=120, interval=0.05)
    operator.kill()
    operator.start()
    wait_for(
        "rollback completed after restart",
        lambda: (
            sd_status(kubectl, "crash", namespace).get("revision", {}).get("serving") == stable
            and draft_in(deployment_args(kubectl, "crash", namespace)) == GOOD
        ),
        timeout=60,
    )
    import time

    time.sleep(5)
    # said exactly once: before the kill (the restart's create is refused as existing) or after it
    assert len(events(kubectl, namespace, "RolledBack")) == 1
    st = sd_status(kubectl, "crash", namespace)
    assert len(st["revision"]["failed"]) == 1
    assert condition(st, "RolledBack")["status"] == "True"

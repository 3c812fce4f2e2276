"""The control group on the local control plane (issue 14 item 2): control pods beside the speculative ones, the
measured speedup in status.performance, READY counting both, and a speculative revision slower than the control
rolled back with reason SlowerThanControl.

Scripted vLLM pages (tests/harness/fakevllm.py): the speculative pods take 0.05 s per output token, the control pods
(no --speculative-config) 0.03 s, both at 4 running requests: speculation runs at 0.6x the control's speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status

pytestmark = pytest.mark.integration

SLOW = "org/costly-draft"


def behaviour(draft: str | None) -> Behaviour:
    if draft is None:  # the control pods: the target alone
        return Behaviour(rate=None, tpot_seconds=0.03, output_tokens_per_second=400.0, running_requests=4.0)
    return Behaviour(rate=0.9, tpot_seconds=0.05, output_tokens_per_second=400.0, running_requests=4.0)


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour).start()
    yield f
    f.stop()


def test_a_revision_slower_than_its_control_group_is_rolled_back_with_the_numbers(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    spec: dict[str, Any] = {
        "target": {"model": "org/target-8b"},
        "draft": {"model": SLOW},
        "speculation": {"numSpeculativeTokens": 4, "control": {"replicas": 1, "minOutputTokens": 100}},
        "validation": {"policy": "Skip"},
        "rollback": {
            "windowSeconds": 10,
            "consecutiveWindows": 2,
            "minDraftTokens": 100,
            "warmupSeconds": 0,
            "stableAfterSeconds": 600,
            "minSpeedup": 1.0,
            "action": "DisableSpeculation",
        },
        "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2},
        "rollout": {"strategy": "Replace"},
    }
    kubectl.apply(manifest("paid", spec), "-n", namespace)

    def both_ready() -> dict[str, Any] | None:
        st = sd_status(kubectl, "paid", namespace)
        return st if st.get("ready") == "2/2" else None

    wait_for("the speculative and the control pod Ready (READY 2/2)", both_ready, timeout=120)
    names = {d["metadata"]["name"] for d in kubectl.deployments("paid", namespace)}
    assert "paid-control" in names, names

    speedups: list[float] = []

    def rolled_back() -> dict[str, Any] | None:
        st = sd_status(kubectl, "paid", namespace)
        measured = (st.get("performance") or {}).get("speedup")
        if measured is not None:
            speedups.append(float(measured))
        return st if condition(st, "RolledBack").get("status") == "True" else None

    st = wait_for("the slower-than-control revision rolled back", rolled_back, timeout=180)
    # status.performance published the measured speedup before the rollback: 0.03 / 0.05 s per output token.
    assert speedups and speedups[-1] == pytest.approx(0.6, rel=0.1), speedups
    rolled = condition(st, "RolledBack")
    assert rolled["reason"] == "SlowerThanControl", rolled
    assert "slower than the control group" in rolled["message"] and "below minSpeedup 1.00" in rolled["message"]
    [failed] = st["revision"]["failed"]
    assert failed["reason"] == "SlowerThanControl"
    assert st["revision"]["serving"].endswith("-nospec")
    events = [e for e in kubectl.items("events", namespace) if e.get("reason") == "RolledBack"]
    assert len(events) == 1 and "0.60x its speed" in events[0]["message"], events

    # Serving without speculation, there is nothing to compare: the control Deployment goes.
    def control_gone() -> bool:
        return "paid-control" not in {d["metadata"]["name"] for d in kubectl.deployments("paid", namespace)}

    wait_for("the control Deployment deleted", control_gone, timeout=60)

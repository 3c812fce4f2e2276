"""The adaptive depth loop on the local control plane (issue 14 item 3): with a control group whose pods are faster
at high load, the operator chooses a schedule with no speculation above the crossover, rolls it out as a canary of a
new revision, promotes it, and the pods' --speculative-config carries it; the spec is never edited.

Scripted vLLM pages (tests/harness/fakevllm.py): every pod runs 6 requests at once; the speculative pods take
0.05 s per output token, the control pods (no --speculative-config) 0.03 s: at 4-7 running requests speculation
serves at 0.6x the control's speed. No load below that is measured, so the schedule keeps the spec's depth there.
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


def behaviour(draft: str | None) -> Behaviour:
    if draft is None:  # the control pods: the target alone
        return Behaviour(rate=None, tpot_seconds=0.03, output_tokens_per_second=400.0, running_requests=6.0)
    return Behaviour(rate=0.8, tpot_seconds=0.05, output_tokens_per_second=400.0, running_requests=6.0)


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour).start()
    yield f
    f.stop()


def speculative_config(deployment: dict[str, Any]) -> dict[str, Any] | None:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    if "--speculative-config" not in args:
        return None
    config: dict[str, Any] = json.loads(args[args.index("--speculative-config") + 1])
    return config


def test_adaptive_turns_speculation_off_above_the_crossover_through_a_promoted_canary(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    spec: dict[str, Any] = {
        "target": {"model": "org/target-8b"},
        "draft": {"model": "org/draft-1b"},
        "speculation": {
            "numSpeculativeTokens": 4,
            "control": {"replicas": 1, "minOutputTokens": 100},
            "adaptive": {"enabled": True, "minIntervalSeconds": 600},
        },
        "validation": {"policy": "Skip"},
        "rollback": {
            "windowSeconds": 10,
            "consecutiveWindows": 2,
            "minDraftTokens": 100,
            "warmupSeconds": 0,
            "stableAfterSeconds": 600,
        },
        "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2},
        "rollout": {"strategy": "Canary", "canary": {"replicas": 1, "analysisWindows": 2}},
    }
    kubectl.apply(manifest("adapt", spec), "-n", namespace)

    def both_ready() -> dict[str, Any] | None:
        st = sd_status(kubectl, "adapt", namespace)
        return st if st.get("ready") == "2/2" else None

    first = wait_for("the speculative and the control pod Ready (READY 2/2)", both_ready, timeout=90)
    base = first["revision"]["serving"]

    def chosen() -> dict[str, Any] | None:
        st = sd_status(kubectl, "adapt", namespace)
        return st if (st.get("adaptive") or {}).get("schedule") else None

    st = wait_for("a schedule in status.adaptive", chosen, timeout=90)
    adaptive = st["adaptive"]
    assert adaptive["schedule"] == [{"start": 1, "end": 3, "tokens": 4}, {"start": 4, "end": 65536, "tokens": 0}]
    assert "0.60x at 4-7" in adaptive["reason"], adaptive
    assert adaptive["base"] == base and adaptive["revision"] != base and adaptive["changedAt"]
    new = adaptive["revision"]
    assert st["revision"]["current"] == new

    phases: set[str] = set()

    def promoted() -> dict[str, Any] | None:
        now = sd_status(kubectl, "adapt", namespace)
        canary = now.get("canary") or {}
        if canary.get("revision") == new:
            phases.add(str(canary.get("phase")))
        return now if canary.get("revision") == new and canary.get("phase") == "Promoted" else None

    st = wait_for("the schedule's canary promoted", promoted, timeout=90)
    assert phases & {"Starting", "Analyzing", "Promoting"}, phases  # it was judged as a canary first
    assert st["revision"]["serving"] == new and condition(st, "Ready")["status"] == "True"
    assert st["adaptive"]["revision"] == new and st["adaptive"]["changedAt"] == adaptive["changedAt"]

    deployments = {d["metadata"]["name"]: d for d in kubectl.deployments("adapt", namespace)}
    config = speculative_config(deployments[f"adapt-{new}"])
    assert config is not None
    assert config["num_speculative_tokens_per_batch_size"] == [[1, 3, 4], [4, 65536, 0]]
    assert config["num_speculative_tokens"] == 4
    assert "adapt-control" in deployments and f"adapt-{base}" not in deployments
    live = kubectl.get("sd", "adapt", namespace)
    assert "numSpeculativeTokensPerBatchSize" not in live["spec"]["speculation"]  # the spec is never edited

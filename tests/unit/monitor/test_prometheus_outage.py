"""A Prometheus that does not answer holds the object, and status.acceptance says which server and why.

The tracker's Prometheus path against a closed loopback port (nothing listens): the query fails, the window is
counted as unreadable, the decision holds, and the message carries the connection error rather than a bare
"prometheus" (a user reading ``kubectl describe`` must learn that the server is down, not guess).
"""

from __future__ import annotations

import time
from typing import Any

from tests.harness.localcluster import free_port

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.monitor.decision import Reason, Verdict
from specdeploy.monitor.pools import POOLS
from specdeploy.monitor.window import WindowAccumulator
from specdeploy.rollout.history import RevisionRecord, ServingChoice
from specdeploy.tracker import AcceptanceTracker

REV = RevisionRecord(id="0123456789", number=1, spec={})


def spec(url: str) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "org/target-8b"},
            "draft": {"model": "org/draft-1b"},
            "rollback": {"windowSeconds": 10, "consecutiveWindows": 2, "warmupSeconds": 0},
            "metrics": {"source": "Prometheus", "prometheus": {"url": url}, "scrapeIntervalSeconds": 1},
        }
    )


def serving_deployment() -> dict[str, Any]:
    labels = {"specdeploy.io/revision": REV.id}
    return {
        "spec": {"replicas": 1, "template": {"metadata": {"labels": labels}}},
        "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    }


async def test_unanswered_queries_hold_and_the_message_names_the_server_and_the_error() -> None:
    port = free_port()  # bound and released: nothing listens there now
    s = spec(f"http://127.0.0.1:{port}")
    t = AcceptanceTracker()
    t.set_serving(ServingChoice(REV, speculation=True), serving_deployment(), now=time.time() - 60)
    pods = [{"name": "coder-0", "ip": "127.0.0.9", "component": "server", "revision": REV.id, "ready": True}]
    try:
        for _ in range(2):
            t.accumulator = t.accumulator or WindowAccumulator(10.0, start=time.time() - 15)
            if t.accumulator.end > time.time():
                t.accumulator = WindowAccumulator(10.0, start=time.time() - 15)
            await t.scrape("llm", "coder", s, pods)
    finally:
        await POOLS.close()
    verdict = t.finding(s, "llm", "coder")
    assert verdict is not None and not verdict.trip
    assert t.decision is not None
    assert (t.decision.verdict, t.decision.reason) == (Verdict.HOLD, Reason.NO_DATA)
    assert "could not be read (prometheus: " in verdict.message, verdict.message
    assert f"127.0.0.1:{port}" in verdict.message, verdict.message

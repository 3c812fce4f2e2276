"""The tracker's canary glue: set_canary, paired windows from the same scrapes, MonitorFinding.canary.

Real HTTP on loopback: a scripted vLLM pod of the serving revision and one of the canary (``tests.harness.fakevllm``,
vLLM 0.32's metric names and format), scraped by the tracker's own code path (pools, page filter, parse, windows).
Only the tracker's clock is scripted, so that 10 s windows close in milliseconds; the pods' counters advance with
real time, at a draft rate high enough to fill ``minDraftTokens`` between two scrapes.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.harness import loopback
from tests.harness.fakevllm import Behaviour, FakeVllm
from tests.harness.localcluster import free_port

from specdeploy import tracker as tracker_module
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.monitor.finding import CanaryVerdict, MonitorFinding
from specdeploy.monitor.pools import POOLS
from specdeploy.rollout.history import RevisionRecord, ServingChoice
from specdeploy.tracker import AcceptanceTracker

T0 = 1_767_268_800.0
SERVING = RevisionRecord(id="aaaaaaaaaa", number=1, spec={})
CANARY = RevisionRecord(id="bbbbbbbbbb", number=2, spec={})
FAST = 2_000_000.0  # draft tokens per second of real time: thousands between two scrapes a few ms apart


def spec(port: int, **rollout: Any) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "org/target-8b"},
            "draft": {"model": "org/draft-1b"},
            "serving": {"port": port},
            "metrics": {"scrapeIntervalSeconds": 5},
            "rollback": {"windowSeconds": 10, "consecutiveWindows": 2, "warmupSeconds": 20, "minDraftTokens": 100},
            "rollout": {"canary": {"analysisWindows": 2, **rollout}},
        }
    )


def deployment(revision: str, ready: int = 1) -> dict[str, Any]:
    return {
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"specdeploy.io/revision": revision}}}},
        "status": {"replicas": 1, "readyReplicas": ready, "updatedReplicas": 1},
    }


def pod(name: str, ip: str, revision: str) -> dict[str, Any]:
    return {"name": name, "ip": ip, "component": "server", "revision": revision, "ready": True}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(tracker_module, "time", types.SimpleNamespace(time=c.time))
    return c


@pytest.fixture
async def fleet() -> AsyncIterator[Callable[[Behaviour, Behaviour], tuple[int, list[dict[str, Any]]]]]:
    servers: list[FakeVllm] = []

    def start(serving: Behaviour, canary: Behaviour) -> tuple[int, list[dict[str, Any]]]:
        port = free_port()
        servers.append(FakeVllm("127.0.0.2", port, "target", serving))
        servers.append(FakeVllm("127.0.0.3", port, "target", canary))
        return port, [pod("sd-aaaaaaaaaa-0", "127.0.0.2", SERVING.id), pod("sd-bbbbbbbbbb-0", "127.0.0.3", CANARY.id)]

    yield start
    for s in servers:
        s.stop()
    await POOLS.close()


async def run(
    clock: Clock, t: AcceptanceTracker, s: SpeculativeDeploymentSpec, pods: list[dict[str, Any]], n: int
) -> MonitorFinding:
    """``n`` loops of the daemon, 5 s apart: scrape, then follow what serves and the canary."""
    found = None
    for _ in range(n):
        clock.now += 5
        await t.scrape("llm", "sd", s, pods)
        t.set_serving(ServingChoice(SERVING, True), deployment(SERVING.id), now=clock.now)
        t.set_canary(ServingChoice(CANARY, True), deployment(CANARY.id), now=clock.now)
        found = t.finding(s, "llm", "sd")
    assert found is not None
    return found


def behaviour(rate: float, tpot: float) -> Behaviour:
    return Behaviour(rate=rate, draft_tokens_per_second=FAST, tpot_seconds=tpot, output_tokens_per_second=FAST)


def started(t: AcceptanceTracker, clock: Clock) -> None:
    t.set_serving(ServingChoice(SERVING, True), deployment(SERVING.id), now=clock.now)
    t.set_canary(ServingChoice(CANARY, True), deployment(CANARY.id), now=clock.now)


async def test_a_canary_as_good_as_serving_passes_and_its_pods_stay_out_of_the_serving_windows(
    clock: Clock, fleet: Any
) -> None:
    port, pods = fleet(behaviour(0.75, 0.020), behaviour(0.74, 0.020))
    s = spec(port)
    t = AcceptanceTracker()
    started(t, clock)
    found = await run(clock, t, s, pods, 3)
    assert found.canary is not None and found.canary.verdict is CanaryVerdict.STARTING
    assert "warming up" in found.canary.message
    found = await run(clock, t, s, pods, 8)
    assert found.revision == SERVING.id
    assert found.canary is not None and found.canary.verdict is CanaryVerdict.PASSED, found.canary.message
    assert found.canary.acceptance_canary == pytest.approx(0.74, abs=0.01)
    assert found.canary.acceptance_serving == pytest.approx(0.75, abs=0.01)
    assert found.canary.tpot_canary == pytest.approx(0.020) and found.canary.tpot_serving == pytest.approx(0.020)
    assert all(w.pods_counted in {(), ("sd-aaaaaaaaaa-0",)} for w in t.windows), "a canary pod in serving's windows"
    assert any(w.pods_counted for w in t.windows)
    again = await run(clock, t, s, pods, 1)
    assert again.canary == found.canary, "a verdict is final for its canary revision"


async def test_a_canary_with_fine_acceptance_and_half_again_slower_tokens_fails(clock: Clock, fleet: Any) -> None:
    port, pods = fleet(behaviour(0.75, 0.020), behaviour(0.80, 0.030))
    s = spec(port)
    t = AcceptanceTracker()
    started(t, clock)
    found = await run(clock, t, s, pods, 11)
    assert found.canary is not None and found.canary.verdict is CanaryVerdict.FAILED, found.canary.message
    assert "30.0 ms is 50% above the serving revision's 20.0 ms" in found.canary.message


async def test_a_canary_with_low_acceptance_fails(clock: Clock, fleet: Any) -> None:
    port, pods = fleet(behaviour(0.75, 0.020), behaviour(0.30, 0.020))
    s = spec(port)
    t = AcceptanceTracker()
    started(t, clock)
    found = await run(clock, t, s, pods, 11)
    assert found.canary is not None and found.canary.verdict is CanaryVerdict.FAILED
    assert "below rollback.minAcceptanceRate" in found.canary.message


async def test_a_serving_revision_without_speculation_still_reports_the_canary(clock: Clock, fleet: Any) -> None:
    port, pods = fleet(Behaviour(rate=None, draft_tokens_per_second=FAST, tpot_seconds=0.02), behaviour(0.7, 0.019))
    s = spec(port)
    t = AcceptanceTracker()
    nospec = ServingChoice(SERVING, False)
    pods[0]["revision"] = nospec.id
    t.set_serving(nospec, deployment(nospec.id), now=clock.now)
    t.set_canary(ServingChoice(CANARY, True), deployment(CANARY.id), now=clock.now)
    found = None
    for _ in range(11):
        clock.now += 5
        await t.scrape("llm", "sd", s, pods)
        t.set_serving(nospec, deployment(nospec.id), now=clock.now)
        t.set_canary(ServingChoice(CANARY, True), deployment(CANARY.id), now=clock.now)
        found = t.finding(s, "llm", "sd")
    assert found is not None and found.revision == nospec.id and found.acceptance is None
    assert not found.trip and not found.healthy
    assert found.canary is not None and found.canary.verdict is CanaryVerdict.PASSED, found.canary.message
    assert found.canary.acceptance_serving is None and "no speculation" in found.canary.message


def test_a_canary_that_is_not_ready_is_starting_and_a_new_canary_starts_over(clock: Clock) -> None:
    t = AcceptanceTracker()
    s = spec(8000)
    t.set_serving(ServingChoice(SERVING, True), deployment(SERVING.id), now=clock.now)
    t.set_canary(ServingChoice(CANARY, True), deployment(CANARY.id, ready=0), now=clock.now)
    found = t.finding(s)
    assert found is not None and found.canary is not None
    assert found.canary.verdict is CanaryVerdict.STARTING and "waiting for every pod" in found.canary.message
    t.canary_verdicts[CANARY.id] = found.canary  # as if it had been judged
    other = RevisionRecord(id="cccccccccc", number=3, spec={})
    t.set_canary(ServingChoice(other, True), deployment(other.id), now=clock.now)
    found = t.finding(s)
    assert found is not None and found.canary is not None and found.canary.revision == other.id
    t.set_canary(None, None, now=clock.now)
    assert t.finding(s) is None or t.finding(s).canary is None  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------- metrics.source Prometheus
@asynccontextmanager
async def serving_prometheus(fake: ScriptedPrometheus) -> AsyncIterator[str]:
    from aiohttp import web

    app = web.Application()
    app.add_routes([web.get("/api/v1/query", fake.query)])
    async with loopback.serving(app) as url:
        yield url


class ScriptedPrometheus:
    """Answers the operator's PromQL per side: a query naming the other side's pod (the canary's, or the control
    group's) gets that side's numbers."""

    def __init__(self, serving: dict[str, float], canary: dict[str, float], other: str = "sd-bbbbbbbbbb-0") -> None:
        self.sides = {"serving": serving, "canary": canary}
        self.other = other
        self.asked: list[str] = []

    async def query(self, request: Any) -> Any:
        from aiohttp import web

        q = request.query["query"]
        self.asked.append(q)
        numbers = self.sides["canary" if self.other in q else "serving"]
        value = next((v for name, v in numbers.items() if f"({name}{{" in q), None)
        result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


async def test_with_prometheus_the_canary_and_serving_windows_are_queried_per_side(clock: Clock) -> None:
    acceptance = {
        "vllm:spec_decode_num_drafts_total": 1000.0,
        "vllm:spec_decode_num_draft_tokens_total": 4000.0,
        "vllm:request_time_per_output_token_seconds_count": 10.0,
        "vllm:generation_tokens_total": 5000.0,
    }
    serving = {
        **acceptance,
        "vllm:spec_decode_num_accepted_tokens_total": 3000.0,
        "vllm:request_time_per_output_token_seconds_sum": 0.2,
    }
    canary = {
        **acceptance,
        "vllm:spec_decode_num_accepted_tokens_total": 2900.0,
        "vllm:request_time_per_output_token_seconds_sum": 0.3,  # 30 ms vs 20 ms per output token
    }
    fake = ScriptedPrometheus(serving, canary)
    pods = [pod("sd-aaaaaaaaaa-0", "127.0.0.2", SERVING.id), pod("sd-bbbbbbbbbb-0", "127.0.0.3", CANARY.id)]
    t = AcceptanceTracker()
    started(t, clock)
    try:
        async with serving_prometheus(fake) as url:
            s = SpeculativeDeploymentSpec.model_validate(
                {
                    **spec(8000).model_dump(by_alias=True, exclude_unset=True, mode="json"),
                    "metrics": {"scrapeIntervalSeconds": 5, "source": "Prometheus", "prometheus": {"url": url}},
                }
            )
            found = await run(clock, t, s, pods, 11)
    finally:
        await POOLS.close()
    assert found.acceptance is not None and found.acceptance["rate"] == 0.75, "serving windows from its own pods"
    assert found.canary is not None and found.canary.verdict is CanaryVerdict.FAILED, found.canary.message
    assert found.canary.acceptance_canary == pytest.approx(0.725) and found.canary.acceptance_serving == 0.75
    assert "30.0 ms is 50% above the serving revision's 20.0 ms" in found.canary.message
    assert any("sd-bbbbbbbbbb-0" in q for q in fake.asked) and any("sd-aaaaaaaaaa-0" in q for q in fake.asked)
    assert not any("sd-bbbbbbbbbb-0" in q and "sd-aaaaaaaaaa-0" in q for q in fake.asked), "never both sides at once"


async def test_with_prometheus_the_control_group_is_queried_over_the_serving_windows_and_trips_min_speedup(
    clock: Clock,
) -> None:
    from specdeploy.render.control import control_revision

    counters = {
        "vllm:spec_decode_num_drafts_total": 1000.0,
        "vllm:spec_decode_num_draft_tokens_total": 4000.0,
        "vllm:spec_decode_num_accepted_tokens_total": 3000.0,
        "vllm:request_time_per_output_token_seconds_count": 10.0,
        "vllm:generation_tokens_total": 5000.0,
        "vllm:num_requests_running": 2.0,
    }
    speculative = {**counters, "vllm:request_time_per_output_token_seconds_sum": 0.3}  # 30 ms per output token
    control = {**counters, "vllm:request_time_per_output_token_seconds_sum": 0.2}  # 20 ms: speculation 0.67x
    fake = ScriptedPrometheus(speculative, control, other="sd-control-0")
    pods = [
        pod("sd-aaaaaaaaaa-0", "127.0.0.2", SERVING.id),
        pod("sd-control-0", "127.0.0.3", control_revision(SERVING.id)),
    ]
    t = AcceptanceTracker()
    t.set_serving(ServingChoice(SERVING, True), deployment(SERVING.id), now=clock.now)
    found = None
    try:
        async with serving_prometheus(fake) as url:
            s = SpeculativeDeploymentSpec.model_validate(
                {
                    "target": {"model": "org/target-8b"},
                    "draft": {"model": "org/draft-1b"},
                    "speculation": {"control": {"replicas": 1, "minOutputTokens": 100}},
                    "metrics": {"scrapeIntervalSeconds": 5, "source": "Prometheus", "prometheus": {"url": url}},
                    "rollback": {"windowSeconds": 10, "consecutiveWindows": 2, "warmupSeconds": 20, "minSpeedup": 0.9},
                }
            )
            for _ in range(12):
                clock.now += 5
                await t.scrape("llm", "sd", s, pods)
                found = t.finding(s, "llm", "sd")
    finally:
        await POOLS.close()
    assert found is not None and found.trip and found.trip_reason == "SlowerThanControl", found
    assert "0.67x" in found.message
    assert found.performance is not None and found.performance["speedup"] == pytest.approx(0.667, abs=0.001)
    assert any("sd-control-0" in q for q in fake.asked), "the control pods were queried"
    assert not any("sd-control-0" in q and "sd-aaaaaaaaaa-0" in q for q in fake.asked), "never both groups at once"

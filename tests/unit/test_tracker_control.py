"""The control group in the tracker (issue 14 item 2): control windows paired with the serving revision's by span,
compared per load, and spec.rollback.minSpeedup tripping the serving revision with reason SlowerThanControl.

Windows are built as the accumulator closes them (speed per revision, monitor.speed); only the HTTP scraping is left
out. The speeds are the issue's CPU numbers for a copy draft: 0.58x the control's speed at 8 running requests.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.unit.test_tracker import REV, T0, deployment, judge, windows

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.monitor.control import ControlGroup, compare, speed_decision
from specdeploy.monitor.decision import Verdict
from specdeploy.monitor.speed import Speed
from specdeploy.monitor.window import Window, WindowAccumulator
from specdeploy.rollout.history import ServingChoice
from specdeploy.tracker import AcceptanceTracker

BASE: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "speculation": {"control": {"replicas": 1, "minOutputTokens": 500}},
    "rollback": {
        "minAcceptanceRate": 0.5,
        "consecutiveWindows": 3,
        "minDraftTokens": 1000,
        "warmupSeconds": 120,
        "minSpeedup": 1.0,
    },
}
SPEC = SpeculativeDeploymentSpec.model_validate(BASE)
CONTROL_TPOT = 0.100  # seconds per output token of the target alone at 8 running requests


def speed(tpot: float, tokens: float = 1000, running: float = 8.0, *, request: bool = True) -> Speed:
    return Speed(
        output_tokens=tokens,
        request_tpot_seconds=tpot if request else None,
        requests=10 if request else 0,
        inter_token_seconds=tpot * 1.5,
        steps=100,
        running_requests=running,
    )


def with_speed(window: Window, value: Speed | None) -> Window:
    return dataclasses.replace(window, speed=value)


def control_twins(serving: list[Window], tpot: float = CONTROL_TPOT, **kw: Any) -> ControlGroup:
    group = ControlGroup.beside("0123456789-control", WindowAccumulator(60, start=serving[0].start))
    for w in serving:
        group.closed[w.start] = Window(
            start=w.start, end=w.end, counters=None, acceptance=None, speed=speed(tpot, **kw)
        )
    return group


def slow_tracker(speedup: float, rates: list[float | None] | None = None) -> AcceptanceTracker:
    tracker = AcceptanceTracker()
    tracker.set_serving(ServingChoice(REV, speculation=True), deployment(REV.id), now=T0)
    judge(tracker, rates or [0.9, 0.9, 0.9])  # acceptance is fine: a copy draft accepts everything
    tracker.windows = [with_speed(w, speed(CONTROL_TPOT / speedup)) for w in tracker.windows]
    tracker.control = control_twins(tracker.windows)
    return tracker


def test_speculation_slower_than_the_control_trips_with_its_own_reason() -> None:
    tracker = slow_tracker(0.58)
    finding = tracker.finding(SPEC)
    assert finding is not None
    assert (finding.trip, finding.trip_reason, finding.healthy) == (True, "SlowerThanControl", False)
    assert "0.58x its speed, below minSpeedup 1.00 in 3 consecutive" in finding.message
    assert "0.58x at 8-15 running" in finding.message


def test_as_fast_as_the_control_does_not_trip_and_without_min_speedup_nothing_trips() -> None:
    finding = slow_tracker(1.3).finding(SPEC)
    assert finding is not None and not finding.trip and finding.healthy
    report_only = SpeculativeDeploymentSpec.model_validate(
        {**BASE, "rollback": {**BASE["rollback"], "minSpeedup": None}}
    )
    finding = slow_tracker(0.58).finding(report_only)
    assert finding is not None and not finding.trip


def test_a_low_acceptance_trip_keeps_its_own_reason_and_message() -> None:
    finding = slow_tracker(0.58, rates=[0.2, 0.2, 0.2]).finding(SPEC)
    assert finding is not None and finding.trip and finding.trip_reason is None
    assert "below the threshold 0.500" in finding.message


def test_windows_without_a_control_twin_or_before_warm_up_compare_nothing() -> None:
    tracker = slow_tracker(0.58)
    assert tracker.control is not None
    del tracker.control.closed[tracker.windows[1].start]  # a control window that never closed: no pair, holds
    decision, _ = speed_decision(SPEC, tracker.control, tracker.windows, tracker.ready_since)
    assert decision is not None and decision.verdict is Verdict.HOLD
    early = speed_decision(SPEC, tracker.control, tracker.windows, T0 + 3600)  # windows started before warm-up
    assert early == (None, None)


def test_time_per_output_token_is_compared_like_with_like() -> None:
    ours = with_speed(windows([0.9], T0)[0], speed(0.05, request=False))  # no request finished on our side
    theirs = with_speed(windows([None], T0)[0], speed(0.1))
    payoff = compare(ours, theirs, 500)
    assert payoff.speedup is not None
    assert abs(payoff.speedup - 2.0) < 1e-9  # inter-token latency on both sides (0.15 / 0.075), not 0.1 / 0.075
    missing_load = with_speed(theirs, dataclasses.replace(speed(0.1), running_requests=None))
    assert not compare(ours, missing_load, 500).qualifies


def test_the_measured_speedup_pools_the_windows_the_decision_judged() -> None:
    tracker = slow_tracker(0.58)
    # A first judged window at 0.29x: the pooled speedup is over all three windows' tokens, the last three judged.
    tracker.windows[0] = with_speed(tracker.windows[0], speed(CONTROL_TPOT / 0.29))
    decision, pooled = speed_decision(SPEC, tracker.control, tracker.windows, tracker.ready_since)
    assert decision is not None and decision.verdict is Verdict.ROLLBACK
    assert pooled is not None and pooled.windows == 3 and pooled.tokens == 3000
    assert pooled.speedup == pytest.approx(CONTROL_TPOT / ((CONTROL_TPOT / 0.29 + 2 * CONTROL_TPOT / 0.58) / 3))
    assert (pooled.start, pooled.end) == (tracker.windows[0].start, tracker.windows[-1].end)
    [bucket] = [b for b in pooled.by_load if b.speedup is not None]
    assert (bucket.start, bucket.end, bucket.tokens) == (8, 15, 3000)


def test_a_new_serving_revision_drops_the_control_windows() -> None:
    tracker = slow_tracker(0.58)
    other = ServingChoice(dataclasses.replace(REV, id="9876543210"), speculation=True)
    tracker.set_serving(other, deployment("9876543210"), now=T0 + 999)
    assert tracker.control is None


def test_status_performance_publishes_the_speedup_against_the_control() -> None:
    tracker = slow_tracker(0.58)
    finding = tracker.finding(SPEC)
    assert finding is not None and finding.performance is not None
    assert finding.performance["speedup"] == 0.58
    [at_load] = finding.performance["speedupByLoad"]
    assert at_load == {"runningMin": 8, "runningMax": 15, "speedup": 0.58, "tokens": 3000}
    assert finding.performance["speedupTo"] is not None and finding.performance["speedupFrom"] is not None
    assert "in the last 3 qualifying window(s)" in finding.performance["message"]

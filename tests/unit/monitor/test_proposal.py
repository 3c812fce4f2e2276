"""The adaptive loop's proposal (issue 14 item 3): the tracker's measurements -> a batch-size schedule, and the
tracker carrying it on its finding only with spec.speculation.adaptive.enabled."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.unit.rollout.world import windows_at

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.monitor.decision import decide
from specdeploy.monitor.payoff import DEFAULT_BUCKETS, SpeedObservation, measure
from specdeploy.monitor.proposal import propose_schedule, revision_schedule
from specdeploy.rollout.history import RevisionRecord, ServingChoice
from specdeploy.tracker import AcceptanceTracker, policy_of

PER_POSITION = (0.8, 0.5, 0.2, 0.05)  # Leviathan with draft cost 0.1: depth 3 is best (1.92x modelled)


def spec(*, control: bool, adaptive: bool = True) -> SpeculativeDeploymentSpec:
    speculation: dict[str, Any] = {"numSpeculativeTokens": 4, "adaptive": {"enabled": adaptive}}
    if control:
        speculation["control"] = {"replicas": 1, "minOutputTokens": 1000}
    return SpeculativeDeploymentSpec.model_validate(
        {"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "speculation": speculation}
    )


def test_with_a_control_group_speculation_is_off_from_the_first_load_where_it_loses() -> None:
    measured = measure(
        [SpeedObservation(1, 0.010, 3000), SpeedObservation(6, 0.030, 3000)],
        [SpeedObservation(1, 0.016, 3000), SpeedObservation(6, 0.024, 3000)],
        1000,
    )
    choice = propose_schedule(spec(control=True), PER_POSITION, None, measured, None)
    assert choice is not None
    assert choice.schedule == ((1, 3, 4), (4, 65_536, 0))  # 2-3 unmeasured, below the loss: the depth stays
    assert "0.80x at 4-7" in choice.reason and "1.60x at 1" in choice.reason
    assert "k=4 from the spec (no cost estimate)" in choice.reason


def test_a_bucket_below_the_minimum_of_tokens_decides_nothing_and_no_measurement_proposes_nothing() -> None:
    thin = measure([SpeedObservation(6, 0.030, 500)], [SpeedObservation(6, 0.024, 3000)], 0)
    choice = propose_schedule(spec(control=True), PER_POSITION, None, thin, None)
    assert choice is not None and choice.schedule == ((1, 65_536, 4),)
    assert propose_schedule(spec(control=True), PER_POSITION, None, None, None) is None  # wait for the control


def test_without_a_control_group_the_model_with_the_revisions_own_cost_decides() -> None:
    choice = propose_schedule(spec(control=False), PER_POSITION, 0.1, None, None)
    assert choice is not None and choice.schedule == ((1, 65_536, 3),)
    assert "no control group" in choice.reason and "modelled depth 3" in choice.reason
    assert "draft cost 0.100" in choice.reason


def test_schedule_ranges_are_the_measured_load_ranges_and_a_revision_snapshot_reads_back() -> None:
    assert DEFAULT_BUCKETS[0] == (1, 1) and DEFAULT_BUCKETS[-1][1] == 65_536
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(DEFAULT_BUCKETS))
    snapshot = {"speculation": {"numSpeculativeTokensPerBatchSize": [{"start": 1, "end": 4, "tokens": 4}]}}
    assert revision_schedule(snapshot) == ((1, 4, 4),)
    assert revision_schedule({"speculation": {"numSpeculativeTokens": 4}}) is None
    assert revision_schedule({"speculation": {"numSpeculativeTokensPerBatchSize": [{"start": "x"}]}}) is None


def finding_for(s: SpeculativeDeploymentSpec, validation: dict[str, Any] | None, status_validation: Any = None) -> Any:
    now = time.time()
    record = RevisionRecord(id="7d9f", number=1, spec={}, validation=validation)
    tracker = AcceptanceTracker()
    tracker.set_serving(ServingChoice(record, speculation=True), None, now=now)
    tracker.windows = windows_at([0.6, 0.6, 0.6], now - 180)
    tracker.decision = decide(policy_of(s), tracker.ready_since, now, tracker.windows)
    return tracker.finding(s, validation=status_validation)


def test_the_tracker_proposes_only_with_adaptive_enabled_and_prices_with_the_serving_revisions_own_cost() -> None:
    assert finding_for(spec(control=False, adaptive=False), {"parameterRatio": 0.1}).schedule is None
    own = finding_for(spec(control=False), {"parameterRatio": 0.1}).schedule
    assert own is not None and "draft cost 0.100" in own.reason
    # status.validation describing another revision (after a rollback) is not this revision's cost
    other = finding_for(spec(control=False), None, {"revision": "0000", "parameterRatio": 0.5}).schedule
    assert other is not None and "no cost estimate" in other.reason

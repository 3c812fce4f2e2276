"""The acceptance tracker's pure side: following the serving revision, Ready time, verdicts, and when to publish.

Windows are built from spec-decode counters as the window accumulator closes them, and the decision is the real
``monitor.decision.decide``; only the HTTP scraping is left out (it is exercised on the local control plane).
"""

from __future__ import annotations

from typing import Any

import pytest

from specdeploy.api import AcceptanceStatus, SpeculativeDeploymentSpec
from specdeploy.monitor.decision import Reason, Verdict, decide
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.monitor.parse import SpecDecodeCounters
from specdeploy.monitor.window import Window, WindowAccumulator
from specdeploy.rollout.history import RevisionRecord, ServingChoice
from specdeploy.tracker import RATE_EPSILON, AcceptanceTracker, policy_of

SPEC = SpeculativeDeploymentSpec.model_validate(
    {
        "target": {"model": "org/target-70b", "tensorParallelSize": 4},
        "draft": {"model": "org/draft-7b"},
        "rollback": {"minAcceptanceRate": 0.5, "consecutiveWindows": 3, "minDraftTokens": 1000, "warmupSeconds": 120},
    }
)
T0 = 1_767_268_800.0
REV = RevisionRecord(id="0123456789", number=1, spec={})
OTHER = RevisionRecord(id="9876543210", number=2, spec={})


def deployment(revision: str, replicas: int = 2, ready: int = 2, updated: int | None = None) -> dict[str, Any]:
    """The live Deployment as the daemon sees it (only what the tracker reads)."""
    return {
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"specdeploy.io/revision": revision}}}},
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
        },
    }


def windows(rates: list[float | None], start: float, tokens: float = 8000, pods: int = 2) -> list[Window]:
    """Closed 60 s windows; per-position counts for k = 4 consistent with each rate."""
    out = []
    for i, rate in enumerate(rates):
        begin = start + 60 * i
        if rate is None:
            out.append(Window(start=begin, end=begin + 60, counters=None, acceptance=None))
            continue
        drafts = tokens / 4
        accepted = round(rate * tokens)
        # spread the accepted tokens over positions, earlier positions first, none above the draft count
        per_position: list[float] = []
        left = float(accepted)
        for _ in range(4):
            take = min(drafts, left)
            per_position.append(take)
            left -= take
        counters = SpecDecodeCounters(
            engine="v1",
            drafts=drafts,
            draft_tokens=tokens,
            accepted_tokens=accepted,
            per_position=tuple(per_position),
        )
        out.append(Window.from_counters(begin, begin + 60, counters, [f"coder-pod-{p}" for p in range(pods)]))
    return out


def tracker_serving(serving: ServingChoice | None = None, ready_at: float = T0) -> AcceptanceTracker:
    tracker = AcceptanceTracker()
    tracker.set_serving(serving or ServingChoice(REV, speculation=True), deployment(REV.id), now=ready_at)
    return tracker


def judge(tracker: AcceptanceTracker, rates: list[float | None], now: float | None = None, **kw: Any) -> None:
    """Feed closed windows (starting after warm-up) and take the decision as ``scrape()`` does."""
    assert tracker.ready_since is not None
    start = tracker.ready_since + 120
    tracker.windows = windows(rates, start, **kw)
    at = now if now is not None else (tracker.windows[-1].end if tracker.windows else start)
    tracker.decision = decide(policy_of(SPEC), tracker.ready_since, at, tracker.windows)


def verdict(tracker: AcceptanceTracker) -> MonitorFinding:
    v = tracker.finding(SPEC)
    assert v is not None
    return v


# ----------------------------------------------------------------------------------------- following what serves
def test_policy_of_reads_the_spec_rollback_section() -> None:
    policy = policy_of(SPEC)
    assert (policy.min_acceptance_rate, policy.consecutive_windows, policy.min_draft_tokens) == (0.5, 3, 1000)
    assert policy.warmup_seconds == 120


def test_ready_since_is_when_every_replica_of_the_serving_revision_became_ready() -> None:
    tracker = AcceptanceTracker()
    serving = ServingChoice(REV, speculation=True)
    tracker.set_serving(serving, deployment(REV.id, ready=1), now=T0)
    assert tracker.serving_id == REV.id and tracker.speculation and tracker.ready_since is None
    tracker.set_serving(serving, deployment(REV.id, ready=2, updated=1), now=T0 + 10)
    assert tracker.ready_since is None, "an old-template pod still counts as not rolled out"
    tracker.set_serving(serving, deployment(OTHER.id), now=T0 + 20)
    assert tracker.ready_since is None, "the Deployment still runs another revision"
    tracker.set_serving(serving, deployment(REV.id), now=T0 + 30)
    assert tracker.ready_since == T0 + 30
    tracker.set_serving(serving, deployment(REV.id), now=T0 + 90)
    assert tracker.ready_since == T0 + 30, "Ready since when it first became Ready"


def test_losing_one_pod_keeps_the_ready_time_losing_all_resets_it() -> None:
    tracker = tracker_serving()
    tracker.set_serving(ServingChoice(REV, True), deployment(REV.id, ready=1), now=T0 + 100)
    assert tracker.ready_since == T0
    tracker.set_serving(ServingChoice(REV, True), deployment(REV.id, ready=0), now=T0 + 200)
    assert tracker.ready_since is None
    tracker.set_serving(ServingChoice(REV, True), deployment(REV.id), now=T0 + 300)
    assert tracker.ready_since == T0 + 300, "warm-up starts again after a full outage"


def test_zero_replicas_is_never_ready() -> None:
    tracker = AcceptanceTracker()
    tracker.set_serving(ServingChoice(REV, True), deployment(REV.id, replicas=0, ready=0), now=T0)
    assert tracker.ready_since is None


def test_a_new_serving_revision_starts_from_nothing() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.2, 0.2, 0.2])
    tracker.accumulator = WindowAccumulator(60, start=T0)
    tracker.set_serving(ServingChoice(OTHER, speculation=True), deployment(REV.id), now=T0 + 1000)
    assert tracker.serving_id == OTHER.id
    assert tracker.windows == [] and tracker.decision is None
    assert tracker.accumulator is None and tracker.ready_since is None
    assert tracker.finding(SPEC) is None, "no verdict carried over to the revision that replaced the bad one"


def test_the_same_revision_without_speculation_is_a_new_serving_with_nothing_to_judge() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.2, 0.2, 0.2])
    tracker.set_serving(ServingChoice(REV, speculation=False), deployment(REV.id + "-nospec"), now=T0 + 1000)
    assert tracker.serving_id == REV.id + "-nospec" and not tracker.speculation
    assert tracker.decision is None and tracker.finding(SPEC) is None


def test_the_same_serving_keeps_its_windows() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.7, 0.7])
    kept = list(tracker.windows)
    tracker.set_serving(ServingChoice(REV, speculation=True), deployment(REV.id), now=T0 + 500)
    assert tracker.windows == kept and tracker.decision is not None


def test_nothing_serving_gives_no_verdict() -> None:
    tracker = AcceptanceTracker()
    tracker.set_serving(None, None, now=T0)
    assert tracker.serving_id is None and tracker.finding(SPEC) is None


# ----------------------------------------------------------------------------------------- verdicts
def test_three_bad_windows_trip_and_the_message_carries_the_numbers() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.3, 0.25, 0.2])
    v = verdict(tracker)
    assert (v.revision, v.trip, v.healthy) == (REV.id, True, False)
    assert "0.200 is below the threshold 0.500 in 3 consecutive" in v.message
    assert "1,600 of 8,000 draft tokens accepted" in v.message


def test_three_good_windows_are_healthy() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.7, 0.8, 0.75])
    v = verdict(tracker)
    assert not v.trip and v.healthy


@pytest.mark.parametrize(
    "rates",
    [[0.7, 0.3, 0.7], [0.2, 0.2], [None, None, None], [0.2, None, 0.2]],
    ids=["mixed", "too-few", "no-data", "two-bad-and-a-gap"],
)
def test_anything_else_holds(rates: list[float | None]) -> None:
    tracker = tracker_serving()
    judge(tracker, rates)
    v = verdict(tracker)
    assert not v.trip and not v.healthy


def test_thin_traffic_holds() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.1, 0.1, 0.1], tokens=400)
    v = verdict(tracker)
    assert not v.trip and not v.healthy
    assert v.acceptance is not None and v.acceptance["reason"] == str(Reason.NO_DATA)


# ----------------------------------------------------------------------------------------- status.acceptance
def test_the_published_acceptance_fits_the_status_schema_and_says_what_the_user_reads() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.7, 0.8, 0.75])
    acc = verdict(tracker).acceptance
    assert acc is not None
    model = AcceptanceStatus.model_validate(acc, by_alias=True)
    assert model.model_dump(mode="json", by_alias=True, exclude_unset=True) == acc, "no key the CRD would prune"
    assert acc["revision"] == REV.id and acc["verdict"] == str(Verdict.HEALTHY)
    assert acc["rate"] == 0.75 and acc["rateText"] == "0.75"
    assert acc["draftTokens"] == 8000 and acc["acceptedTokens"] == 6000 and acc["drafts"] == 2000
    assert acc["meanAcceptedLength"] == pytest.approx(4.0)
    assert acc["perPosition"] == [1.0, 1.0, 1.0, 0.0]
    assert acc["podsCounted"] == 2 and acc["windowSeconds"] == 60
    assert acc["windowEnd"].endswith("Z")
    assert 1 <= acc["recommendedNumSpeculativeTokens"] <= 16


def test_the_recommended_depth_prices_a_draft_step_with_the_validators_parameter_ratio() -> None:
    """A draft as large as its target never pays for a deeper speculation: k 1, whatever the acceptance."""
    from specdeploy.monitor.speedup import recommend_depth
    from specdeploy.tracker import DEFAULT_COST_RATIO

    def recommended(validation: dict[str, Any] | None) -> int:
        tracker = tracker_serving()
        judge(tracker, [0.9, 0.9, 0.9])  # per position 1, 1, 1, 0.6
        v = tracker.finding(SPEC, validation=validation)
        assert v is not None and v.acceptance is not None
        return int(v.acceptance["recommendedNumSpeculativeTokens"])

    unknown = recommended(None)
    assert unknown == recommend_depth([1.0, 1.0, 1.0, 0.6], DEFAULT_COST_RATIO).k > 1
    assert recommended({"revision": REV.id, "parameterRatio": 1.0}) == 1
    assert recommended({"revision": REV.id, "parameterRatio": 0.05}) >= unknown
    # a ratio validated for another revision (another draft) or not a usable number is not used
    assert recommended({"revision": OTHER.id, "parameterRatio": 1.0}) == unknown
    assert recommended({"revision": REV.id, "parameterRatio": float("nan")}) == unknown


def test_the_recommendation_for_a_revision_does_not_jump_when_status_validation_moves_to_another() -> None:
    """Issue 14: after a rollback status.validation describes the failed revision; the revision serving again keeps
    the cost its own validation gave (it jumped from 1 to the 0.1 default's k before)."""
    tracker = tracker_serving()
    judge(tracker, [0.9, 0.9, 0.9])

    def recommended(validation: dict[str, Any] | None) -> int:
        v = tracker.finding(SPEC, validation=validation)
        assert v is not None and v.acceptance is not None
        return int(v.acceptance["recommendedNumSpeculativeTokens"])

    assert recommended({"revision": REV.id, "parameterRatio": 1.0}) == 1
    assert recommended({"revision": OTHER.id, "parameterRatio": 0.01}) == 1, "the failed revision's validation"
    assert recommended(None) == 1


def test_the_recommendation_reads_the_revisions_own_validation_record() -> None:
    """After an operator restart the tracker remembers nothing, and status.validation may describe another
    revision: the serving revision's own ControllerRevision carries its validation summary."""
    record = RevisionRecord(id=REV.id, number=1, spec={}, validation={"revision": REV.id, "parameterRatio": 1.0})
    tracker = tracker_serving(ServingChoice(record, speculation=True))
    judge(tracker, [0.9, 0.9, 0.9])
    v = tracker.finding(SPEC, validation={"revision": OTHER.id, "parameterRatio": 0.01})
    assert v is not None and v.acceptance is not None
    assert v.acceptance["recommendedNumSpeculativeTokens"] == 1


def test_while_warming_up_the_countdown_does_not_change_the_published_status() -> None:
    tracker = tracker_serving()
    tracker.decision = decide(policy_of(SPEC), T0, T0 + 10, [])
    first = verdict(tracker).acceptance
    assert first is not None and first["reason"] == str(Reason.WARMING_UP)
    assert set(first) == {"revision", "verdict", "reason", "message"}, "nothing measured: no numbers, no empty list"
    assert "from now" not in first["message"] and "2026-01-01T12:02:00Z" in first["message"]
    tracker.decision = decide(policy_of(SPEC), T0, T0 + 70, [])
    assert "50s from now" in tracker.decision.message
    assert verdict(tracker).acceptance == first


def test_a_rate_that_moved_less_than_epsilon_is_not_republished() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.7, 0.7, 0.7000])
    first = verdict(tracker).acceptance
    assert first is not None
    judge(tracker, [0.7, 0.7, 0.7 + RATE_EPSILON / 2])
    assert verdict(tracker).acceptance == first, "tiny changes would be a status write every scrape"
    judge(tracker, [0.7, 0.7, 0.7 + RATE_EPSILON * 2])
    moved = verdict(tracker).acceptance
    assert moved is not None and moved != first and moved["rate"] == pytest.approx(0.71, abs=0.001)


def test_a_new_verdict_or_a_new_pod_count_is_published_even_at_the_same_rate() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.7, 0.7])
    collecting = verdict(tracker).acceptance
    assert collecting is not None and collecting["verdict"] == "Hold"
    judge(tracker, [0.7, 0.7, 0.7])
    healthy = verdict(tracker).acceptance
    assert healthy is not None and healthy["verdict"] == "Healthy"
    judge(tracker, [0.7, 0.7, 0.7], pods=3)
    three_pods = verdict(tracker).acceptance
    assert three_pods is not None and three_pods["podsCounted"] == 3


def test_losing_the_rate_is_published() -> None:
    tracker = tracker_serving()
    judge(tracker, [0.7, 0.7, 0.7])
    before = verdict(tracker).acceptance
    assert before is not None and "rate" in before
    tracker.windows = []
    tracker.decision = decide(policy_of(SPEC), T0, T0 + 1000, [])
    after = verdict(tracker).acceptance
    assert after is not None and "rate" not in after and after["reason"] == str(Reason.NO_DATA)


def test_a_window_read_mid_update_still_publishes_rates_the_status_schema_accepts() -> None:
    tracker = tracker_serving()
    start = T0 + 120
    # accepted counted for a step whose drafts were not yet on the page: 101 accepted of 100 proposed
    counters = SpecDecodeCounters(
        engine="v1", drafts=25, draft_tokens=100, accepted_tokens=101, per_position=(26, 25, 25, 25)
    )
    tracker.windows = [Window.from_counters(start, start + 60, counters, ["coder-pod-0"])]
    tracker.decision = decide(policy_of(SPEC), T0, start + 60, tracker.windows)
    acc = verdict(tracker).acceptance
    assert acc is not None and acc["rate"] == 1.0 and acc["rateText"] == "1.00"
    assert max(acc["perPosition"]) == 1.0
    AcceptanceStatus.model_validate(acc, by_alias=True)


def test_a_v0_engine_publishes_its_rate_but_no_token_counts() -> None:
    tracker = tracker_serving()
    start = T0 + 120
    counters = SpecDecodeCounters(engine="v0", drafts=0, draft_tokens=5e6, accepted_tokens=3e6, v0_acceptance_rate=0.62)
    tracker.windows = [Window.from_counters(start, start + 60, counters, ["coder-pod-0"])]
    tracker.decision = decide(policy_of(SPEC), T0, start + 60, tracker.windows)
    v = verdict(tracker)
    assert not v.trip and not v.healthy, "V0 gives no token counts, so minDraftTokens cannot be met"
    acc = v.acceptance
    assert acc is not None and acc["rate"] == 0.62
    assert not {"draftTokens", "acceptedTokens", "drafts"} & set(acc), "unknown, not zero"
    AcceptanceStatus.model_validate(acc, by_alias=True)


# ----------------------------------------------------------------------------------------- status.performance
def speed_windows(tpots: list[float], start: float) -> list[Window]:
    from specdeploy.monitor.speed import Speed

    return [
        Window(
            start=start + 60 * i,
            end=start + 60 * (i + 1),
            counters=None,
            acceptance=None,
            speed=Speed(output_tokens=1200, tokens_per_second=20.0, request_tpot_seconds=t, requests=6, pods=2),
        )
        for i, t in enumerate(tpots)
    ]


def test_the_serving_revisions_speed_is_published_and_noise_is_not_rewritten() -> None:
    from specdeploy.api.status import PerformanceStatus

    tracker = tracker_serving()
    judge(tracker, [0.7, 0.7, 0.7])
    tracker.windows += speed_windows([0.020], T0 + 1000)
    perf = verdict(tracker).performance
    assert perf is not None and perf["revision"] == REV.id and perf["timePerOutputTokenSeconds"] == 0.02
    assert "speedup" not in perf and "control group" in perf["message"]
    PerformanceStatus.model_validate(perf)
    tracker.windows += speed_windows([0.0202], T0 + 1060)
    assert verdict(tracker).performance == perf, "a 1% move is not worth a status write"
    tracker.windows += speed_windows([0.030], T0 + 1120)
    moved = verdict(tracker).performance
    assert moved is not None and moved["timePerOutputTokenSeconds"] == 0.03


def test_a_revision_without_speculation_still_reports_its_speed_and_nothing_else() -> None:
    nospec = ServingChoice(REV, speculation=False)
    tracker = AcceptanceTracker()
    tracker.set_serving(nospec, deployment(nospec.id), now=T0)
    assert tracker.finding(SPEC) is None, "nothing measured yet"
    tracker.windows = speed_windows([0.015], T0 + 200)
    v = tracker.finding(SPEC)
    assert v is not None and v.revision == REV.id + "-nospec"
    assert not v.trip and not v.healthy and v.acceptance is None
    assert v.performance is not None and v.performance["timePerOutputTokenSeconds"] == 0.015


def test_speed_during_warm_up_is_not_published() -> None:
    tracker = tracker_serving()  # Ready at T0, warm-up 120 s
    tracker.windows = speed_windows([0.050], T0 + 30)
    assert tracker.finding(SPEC) is None or tracker.finding(SPEC).performance is None  # type: ignore[union-attr]
    tracker.windows += speed_windows([0.020], T0 + 120)
    v = tracker.finding(SPEC)
    assert v is not None and v.performance is not None and v.performance["timePerOutputTokenSeconds"] == 0.02

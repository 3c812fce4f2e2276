"""The rollback decision: examples a user would recognise, and properties over arbitrary window histories."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specdeploy.monitor.decision import Policy, Reason, Verdict, decide, qualifies
from specdeploy.monitor.parse import SpecDecodeCounters
from specdeploy.monitor.window import Window

POLICY = Policy(min_acceptance_rate=0.5, consecutive_windows=3, min_draft_tokens=1000, warmup_seconds=300)
READY = 1_800_000_000.0
W = 60.0


def window(index: int, rate: float | None, tokens: float = 5000, *, incomplete: bool = False) -> Window:
    """The index-th window after warm-up; rate None means no spec-decode data."""
    start = READY + POLICY.warmup_seconds + index * W
    if rate is None:
        return Window(start=start, end=start + W, counters=None, acceptance=None)
    counters = SpecDecodeCounters(
        engine="v1", drafts=tokens / 4, draft_tokens=tokens, accepted_tokens=round(rate * tokens)
    )
    built = Window.from_counters(start, start + W, counters, ["pod-a"])
    if incomplete:
        built = Window(
            start=built.start,
            end=built.end,
            counters=built.counters,
            acceptance=built.acceptance,
            pods_counted=built.pods_counted,
            incomplete_pods=("pod-b",),
        )
    return built


def now_after(windows: list[Window]) -> float:
    return windows[-1].end if windows else READY + POLICY.warmup_seconds


def test_three_bad_windows_roll_back_with_the_numbers_in_the_message() -> None:
    windows = [window(0, 0.31), window(1, 0.30), window(2, 0.312, tokens=13200)]
    decision = decide(POLICY, READY, now_after(windows), windows)
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.reason is Reason.BELOW_THRESHOLD
    assert decision.rate == pytest.approx(0.312, abs=1e-4)
    assert (decision.draft_tokens, decision.accepted_tokens) == (13200, 4118)
    assert decision.window_end == windows[-1].end
    for text in ("0.312", "0.500", "3 consecutive", "4,118 of 13,200", "2027-01-15T08:"):
        assert text in decision.message


def test_healthy_after_k_good_windows() -> None:
    windows = [window(i, 0.7) for i in range(3)]
    decision = decide(POLICY, READY, now_after(windows), windows)
    assert decision.verdict is Verdict.HEALTHY and decision.reason is Reason.HEALTHY


def test_warm_up_and_not_ready_hold() -> None:
    windows = [window(i, 0.1) for i in range(3)]
    assert decide(POLICY, None, now_after(windows), windows).reason is Reason.NOT_READY
    early = decide(POLICY, READY, READY + 100, windows)
    assert early.verdict is Verdict.HOLD and early.reason is Reason.WARMING_UP
    assert "200s from now" in early.message


def test_windows_that_started_during_warm_up_are_ignored() -> None:
    during = [window(-3, 0.1), window(-2, 0.1), window(-1, 0.1)]  # before READY + warmup
    decision = decide(POLICY, READY, READY + 10_000, during)
    assert decision.verdict is Verdict.HOLD and decision.reason is Reason.NO_DATA


def test_thin_incomplete_and_empty_windows_hold_without_clearing() -> None:
    windows = [
        window(0, 0.2),
        window(1, 0.9, tokens=10),  # too few tokens: ignored, does not clear
        window(2, 0.2),
        window(3, 0.9, incomplete=True),  # a pod could not be scraped: ignored
        window(4, None),  # no data
    ]
    decision = decide(POLICY, READY, now_after(windows), windows)
    assert decision.verdict is Verdict.HOLD and decision.reason is Reason.COLLECTING
    assert decision.qualifying_windows == 2 and decision.bad_windows == 2
    windows.append(window(5, 0.2))
    assert decide(POLICY, READY, now_after(windows), windows).verdict is Verdict.ROLLBACK


def test_no_data_message_says_why() -> None:
    windows = [window(0, None), window(1, 0.1, tokens=5), window(2, 0.1, incomplete=True)]
    decision = decide(POLICY, READY, now_after(windows), windows)
    assert decision.reason is Reason.NO_DATA
    for text in ("1 without spec-decode data", "1 with fewer than 1000 draft tokens", "pod-b"):
        assert text in decision.message


def test_flapping_around_the_threshold_holds() -> None:
    windows = [window(i, 0.49 if i % 2 else 0.51) for i in range(20)]
    decision = decide(POLICY, READY, now_after(windows), windows)
    assert decision.verdict is Verdict.HOLD and decision.reason is Reason.MIXED


def test_exactly_at_threshold_is_good() -> None:
    windows = [window(i, 0.5) for i in range(3)]
    assert decide(POLICY, READY, now_after(windows), windows).verdict is Verdict.HEALTHY


def test_v0_windows_qualify_only_without_a_token_minimum() -> None:
    counters = SpecDecodeCounters(engine="v0", drafts=0, draft_tokens=0, accepted_tokens=0, v0_acceptance_rate=0.2)
    start = READY + POLICY.warmup_seconds
    v0 = Window.from_counters(start, start + W, counters)
    assert not qualifies(v0, POLICY)
    lenient = Policy(0.5, 1, 0, 300)
    assert qualifies(v0, lenient)
    decision = decide(lenient, READY, v0.end, [v0])
    assert decision.verdict is Verdict.ROLLBACK and "token counts unknown (V0 engine)" in decision.message


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("minAcceptanceRate", {"min_acceptance_rate": 1.5}),
        ("consecutiveWindows", {"consecutive_windows": 0}),
        ("minDraftTokens", {"min_draft_tokens": -1}),
        ("warmupSeconds", {"warmup_seconds": -5}),
    ],
)
def test_bad_policy_names_the_field(field: str, kwargs: dict[str, float]) -> None:
    values: dict[str, float] = {
        "min_acceptance_rate": 0.5,
        "consecutive_windows": 3,
        "min_draft_tokens": 10,
        "warmup_seconds": 0,
    }
    values.update(kwargs)
    with pytest.raises(ValueError, match=field):
        Policy(**values)  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------------------------

# A window: a rate (None = no data), a token count, whether a pod failed. Rates straddle the threshold.
window_spec = st.tuples(
    st.one_of(st.none(), st.sampled_from([0.0, 0.2, 0.49, 0.4999, 0.5, 0.5001, 0.51, 0.8, 1.0])),
    st.sampled_from([0, 10, 999, 1000, 50_000]),
    st.booleans(),
)
policies = st.builds(
    Policy,
    min_acceptance_rate=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]),
    consecutive_windows=st.integers(1, 5),
    min_draft_tokens=st.sampled_from([0, 1000]),
    warmup_seconds=st.sampled_from([0, 300, 900]),
)


def build(specs: list[tuple[float | None, int, bool]], first_index: int = -3) -> list[Window]:
    return [window(first_index + i, rate, tokens, incomplete=bad) for i, (rate, tokens, bad) in enumerate(specs)]


def qualifying(policy: Policy, windows: list[Window]) -> list[Window]:
    return [w for w in windows if w.start >= READY + policy.warmup_seconds and qualifies(w, policy)]


@settings(max_examples=400, deadline=None)
@given(policy=policies, specs=st.lists(window_spec, max_size=12), now_offset=st.floats(0, 2000))
def test_rollback_exactly_when_the_last_k_qualifying_windows_are_bad(
    policy: Policy, specs: list[tuple[float | None, int, bool]], now_offset: float
) -> None:
    windows = build(specs)
    now = READY + now_offset
    decision = decide(policy, READY, now, windows)
    counted = qualifying(policy, windows)
    last = counted[-policy.consecutive_windows :]
    all_bad = len(last) == policy.consecutive_windows and all(
        w.rate is not None and w.rate < policy.min_acceptance_rate for w in last
    )
    warmed = now >= READY + policy.warmup_seconds
    assert (decision.verdict is Verdict.ROLLBACK) == (warmed and all_bad)
    if decision.verdict is Verdict.ROLLBACK:
        # never with fewer than K qualifying bad windows, never before warm-up
        assert decision.bad_windows == policy.consecutive_windows <= len(counted)
        assert now >= READY + policy.warmup_seconds


@settings(max_examples=400, deadline=None)
@given(policy=policies, specs=st.lists(window_spec, max_size=12), good=st.sampled_from([0.5, 0.8, 1.0]))
def test_a_good_window_at_the_end_never_produces_a_rollback(
    policy: Policy, specs: list[tuple[float | None, int, bool]], good: float
) -> None:
    windows = build(specs)
    if good < policy.min_acceptance_rate:
        return
    appended = [*windows, window(len(specs) - 3, good, tokens=50_000)]
    now = appended[-1].end + policy.warmup_seconds
    before = decide(policy, READY, now, windows)
    after = decide(policy, READY, now, appended)
    assert after.verdict is not Verdict.ROLLBACK or before.verdict is Verdict.ROLLBACK
    if appended[-1].start >= READY + policy.warmup_seconds:  # it qualifies: it clears any rollback
        assert after.verdict is not Verdict.ROLLBACK


@settings(max_examples=300, deadline=None)
@given(policy=policies, specs=st.lists(window_spec, max_size=12))
def test_no_data_windows_never_change_the_verdict(policy: Policy, specs: list[tuple[float | None, int, bool]]) -> None:
    windows = build(specs)
    padded = [*windows, window(len(specs) - 3, None), window(len(specs) - 2, 0.0, incomplete=True)]
    now = padded[-1].end + 1000
    assert decide(policy, READY, now, windows).verdict is decide(policy, READY, now, padded).verdict


@settings(max_examples=200, deadline=None)
@given(policy=policies, n=st.integers(0, 30))
def test_alternating_windows_never_trip_with_k_at_least_two(policy: Policy, n: int) -> None:
    if policy.consecutive_windows < 2 or policy.min_acceptance_rate == 0.0:
        return
    low, high = policy.min_acceptance_rate - 0.01, policy.min_acceptance_rate
    windows = [window(i, low if i % 2 else high, tokens=50_000) for i in range(n)]
    assert decide(policy, READY, READY + 10**6, windows).verdict is not Verdict.ROLLBACK

"""Canary judging: a canary beside the serving revision passes, fails (low, dropped, slower) or holds (no data)."""

from __future__ import annotations

import pytest

from specdeploy.monitor.canary import CanaryPolicy, WindowPair, judge_canary, latency, qualifies
from specdeploy.monitor.finding import CanaryVerdict
from specdeploy.monitor.parse import SpecDecodeCounters
from specdeploy.monitor.speed import Speed
from specdeploy.monitor.window import Window

T0 = 1_767_268_800.0
POLICY = CanaryPolicy(
    min_acceptance_rate=0.5,
    min_draft_tokens=1000,
    max_acceptance_drop=0.1,
    max_latency_increase=0.1,
    analysis_windows=3,
)


def window(
    i: int,
    rate: float | None,
    tokens: float = 4000,
    tpot: float | None = 0.020,
    output: float = 1000,
    itl: float | None = None,
    incomplete: bool = False,
) -> Window:
    """The i-th 60 s window: ``tokens`` draft tokens accepted at ``rate``, ``output`` tokens at ``tpot`` s each."""
    start = T0 + 60 * i
    counters = None
    if rate is not None:
        counters = SpecDecodeCounters(
            engine="v1", drafts=tokens / 4, draft_tokens=tokens, accepted_tokens=rate * tokens, per_position=()
        )
    speed = Speed(
        output_tokens=output,
        tokens_per_second=output / 60,
        request_tpot_seconds=tpot,
        requests=10 if tpot is not None else 0,
        inter_token_seconds=itl,
        steps=output if itl is not None else 0,
        pods=1,
    )
    w = Window.from_counters(start, start + 60, counters, ["pod"], speed=speed)
    if incomplete:
        return Window(
            start=w.start,
            end=w.end,
            counters=w.counters,
            acceptance=w.acceptance,
            incomplete_pods=("pod",),
            speed=speed,
        )
    return w


def pairs(canary: list[Window], serving: list[Window]) -> list[WindowPair]:
    return [WindowPair(c, s) for c, s in zip(canary, serving, strict=True)]


def judge(ps: list[WindowPair], serving_speculates: bool = True, canary_speculates: bool = True) -> object:
    return judge_canary(
        POLICY,
        ps,
        revision="canary-rev",
        serving="serving-rev",
        serving_speculates=serving_speculates,
        canary_speculates=canary_speculates,
    )


def test_three_good_windows_pass_and_the_message_says_what_was_compared() -> None:
    found = judge(pairs([window(i, 0.72) for i in range(3)], [window(i, 0.75, tokens=12000) for i in range(3)]))
    assert found.verdict is CanaryVerdict.PASSED and found.windows_passed == 3
    assert found.acceptance_canary == pytest.approx(0.72) and found.acceptance_serving == pytest.approx(0.75)
    assert found.tpot_canary == pytest.approx(0.020) and found.tpot_serving == pytest.approx(0.020)
    assert "acceptance 0.720 over 12,000 draft tokens vs 0.750 over 36,000" in found.message
    assert "20.0 ms over 3,000 output tokens" in found.message
    assert "3 of 3 window(s) passed: promote" in found.message
    assert found.revision == "canary-rev" and found.serving == "serving-rev"


def test_fewer_passing_windows_than_asked_keep_analyzing() -> None:
    found = judge(pairs([window(i, 0.72) for i in range(2)], [window(i, 0.75) for i in range(2)]))
    assert found.verdict is CanaryVerdict.ANALYZING and found.windows_passed == 2
    assert "2 of 3 window(s) passed so far" in found.message


def test_a_canary_below_the_minimum_rate_fails_even_when_serving_is_as_low() -> None:
    found = judge(pairs([window(0, 0.45)], [window(0, 0.46)]))
    assert found.verdict is CanaryVerdict.FAILED
    assert "canary acceptance 0.450 is below rollback.minAcceptanceRate 0.500" in found.message
    assert found.message.endswith("abort")


def test_a_canary_that_dropped_more_than_allowed_below_serving_fails() -> None:
    found = judge(pairs([window(0, 0.72), window(1, 0.64)], [window(0, 0.75), window(1, 0.76)]))
    assert found.verdict is CanaryVerdict.FAILED and found.windows_passed == 1
    assert "0.120 below the serving revision's 0.760" in found.message
    assert found.acceptance_canary == pytest.approx(0.64), "the failing window's numbers"


def test_a_drop_within_the_margin_passes() -> None:
    found = judge(pairs([window(i, 0.66) for i in range(3)], [window(i, 0.75) for i in range(3)]))
    assert found.verdict is CanaryVerdict.PASSED


def test_a_canary_with_fine_acceptance_but_slower_tokens_fails() -> None:
    found = judge(pairs([window(0, 0.80, tpot=0.030)], [window(0, 0.75, tpot=0.020)]))
    assert found.verdict is CanaryVerdict.FAILED
    assert "30.0 ms is 50% above the serving revision's 20.0 ms" in found.message
    assert "vllm:request_time_per_output_token_seconds" in found.message


def test_slightly_slower_within_the_margin_passes() -> None:
    found = judge(pairs([window(i, 0.8, tpot=0.0215) for i in range(3)], [window(i, 0.75) for i in range(3)]))
    assert found.verdict is CanaryVerdict.PASSED


def test_without_finished_requests_the_inter_token_latency_is_compared_never_mixed() -> None:
    slow = pairs([window(0, 0.8, tpot=None, itl=0.05)], [window(0, 0.75, tpot=0.02, itl=0.03)])
    assert latency(slow[0]) is not None and latency(slow[0]).source == "vllm:inter_token_latency_seconds"  # type: ignore[union-attr]
    assert judge(slow).verdict is CanaryVerdict.FAILED
    mixed = pairs([window(0, 0.8, tpot=None, itl=0.05)], [window(0, 0.75, tpot=0.02, itl=None)])
    assert latency(mixed[0]) is None, "a per-request mean is not compared with a per-step one"


def test_no_output_tokens_on_one_side_compares_acceptance_only() -> None:
    found = judge(pairs([window(i, 0.8, tpot=0.05, output=0) for i in range(3)], [window(i, 0.75) for i in range(3)]))
    assert found.verdict is CanaryVerdict.PASSED
    assert "time per output token not compared" in found.message


@pytest.mark.parametrize(
    "canary,serving",
    [
        (window(0, None), window(0, 0.75)),  # canary without data
        (window(0, 0.2, tokens=500), window(0, 0.75)),  # thin canary traffic, however bad
        (window(0, 0.2, incomplete=True), window(0, 0.75)),  # a canary pod could not be read
        (window(0, 0.2), window(0, None)),  # no serving rate to compare with
        (window(0, 0.2), window(0, 0.75, incomplete=True)),  # a serving pod could not be read
    ],
    ids=["no-canary-data", "thin", "canary-incomplete", "no-serving-rate", "serving-incomplete"],
)
def test_no_data_holds(canary: Window, serving: Window) -> None:
    pair = WindowPair(canary, serving)
    assert not qualifies(pair, POLICY, serving_speculates=True)
    found = judge([pair])
    assert found.verdict is CanaryVerdict.ANALYZING and found.windows_passed == 0
    assert "no qualifying window yet (1 compared" in found.message and "holding" in found.message


def test_holding_windows_between_passing_ones_do_not_break_the_count() -> None:
    c = [window(0, 0.8), window(1, None), window(2, 0.8), window(3, 0.2, tokens=10), window(4, 0.8)]
    s = [window(i, 0.75) for i in range(5)]
    assert judge(pairs(c, s)).verdict is CanaryVerdict.PASSED


def test_the_first_failing_window_decides_even_after_passes() -> None:
    c = [window(0, 0.8), window(1, 0.8), window(2, 0.3)]
    found = judge(pairs(c, [window(i, 0.75) for i in range(3)]))
    assert found.verdict is CanaryVerdict.FAILED and found.windows_passed == 2


def test_serving_without_speculation_compares_acceptance_with_the_minimum_only() -> None:
    # serving runs speculation off: its windows have no rate, and a canary at 0.6 is judged against 0.5 alone
    c = [window(i, 0.6) for i in range(3)]
    s = [window(i, None) for i in range(3)]
    found = judge(pairs(c, s), serving_speculates=False)
    assert found.verdict is CanaryVerdict.PASSED and found.acceptance_serving is None
    assert "no speculation" in found.message
    low = judge(pairs([window(0, 0.4)], [window(0, None)]), serving_speculates=False)
    assert low.verdict is CanaryVerdict.FAILED


def test_speculation_slower_than_a_serving_revision_without_it_fails() -> None:
    found = judge(pairs([window(0, 0.9, tpot=0.03)], [window(0, None, tpot=0.02)]), serving_speculates=False)
    assert found.verdict is CanaryVerdict.FAILED and "above the serving revision's" in found.message


def test_a_canary_without_speculation_is_judged_on_speed_alone() -> None:
    c = [window(i, None, tpot=0.02) for i in range(3)]
    s = [window(i, 0.75, tpot=0.02) for i in range(3)]
    assert judge(pairs(c, s), canary_speculates=False).verdict is CanaryVerdict.PASSED
    slow = judge(pairs([window(0, None, tpot=0.04)], [window(0, 0.75)]), canary_speculates=False)
    assert slow.verdict is CanaryVerdict.FAILED


def test_the_policy_refuses_out_of_range_values_naming_the_field() -> None:
    with pytest.raises(ValueError, match="analysisWindows"):
        CanaryPolicy(0.5, 1000, 0.1, 0.1, 0)
    with pytest.raises(ValueError, match="maxAcceptanceDrop"):
        CanaryPolicy(0.5, 1000, 1.5, 0.1, 3)
    with pytest.raises(ValueError, match="maxLatencyIncrease"):
        CanaryPolicy(0.5, 1000, 0.1, -1, 3)

"""Does speculation pay: speedup against the control group per load, the minSpeedup verdict, the adaptive schedule.

The numbers in the scenarios are the issue's CPU measurements (tiny models, 2 cores): n-gram k=4 1.60x at 1
concurrent request and 1.06x at 8; a copy draft k=4 0.94x at 1 and 0.58x at 8.
"""

from __future__ import annotations

import itertools

import pytest

from specdeploy.api.payoff import BatchSizeRange, check_schedule
from specdeploy.monitor.decision import Verdict
from specdeploy.monitor.payoff import (
    DEFAULT_BUCKETS,
    Payoff,
    ScheduleChoice,
    SpeedObservation,
    SpeedReason,
    choose_schedule,
    decide_speed,
    measure,
    next_schedule,
    pool,
)

CONTROL_TPOT = {1: 0.040, 8: 0.100}  # seconds per output token of the target alone, by running requests


def obs(running: float, speedup: float, tokens: float = 600) -> SpeedObservation:
    """A speculative pod at ``running`` requests whose speed is ``speedup`` times the control's there."""
    return SpeedObservation(running=running, tpot=CONTROL_TPOT[round(running)] / speedup, tokens=tokens)


def control(running: float, tokens: float = 600) -> SpeedObservation:
    return SpeedObservation(running=running, tpot=CONTROL_TPOT[round(running)], tokens=tokens)


def test_speedup_is_compared_at_the_same_load_not_across_loads() -> None:
    # n-gram: 1.60x at 1 running, 1.06x at 8. A naive ratio of the groups' means would mix loads: most control
    # tokens come at 8 running (slow), most speculative ones at 1 (fast), and it would claim far more than 1.6x.
    payoff = measure(
        [obs(1, 1.60, tokens=900), obs(8, 1.06, tokens=300)],
        [control(1, tokens=200), control(8, tokens=1000)],
        min_tokens=500,
    )
    assert payoff.qualifies
    by_load = {b.start: b for b in payoff.by_load}
    assert by_load[1].speedup == pytest.approx(1.60)
    assert by_load[8].speedup == pytest.approx(1.06)
    assert payoff.speedup == pytest.approx((1.60 * 900 + 1.06 * 300) / 1200)  # weighted by our tokens per bucket
    naive = (0.040 * 200 + 0.100 * 1000) / 1200 / ((0.040 / 1.6 * 900 + 0.100 / 1.06 * 300) / 1200)
    assert naive > 2.0 > payoff.speedup
    assert [b.status() for b in payoff.by_load] == [
        {"running": "1", "speedup": 1.6, "tokens": 900},
        {"running": "8-15", "speedup": 1.06, "tokens": 300},
    ]
    assert "1.60x at 1 running" in payoff.message and "1.06x at 8-15 running" in payoff.message


def test_a_load_one_bucket_apart_is_compared_but_not_one_eight_times_higher() -> None:
    # Same offered traffic: speculation finishes requests sooner, so it runs 7 at once where the control runs 9.
    near = measure(
        [SpeedObservation(running=7, tpot=0.1, tokens=900)], [SpeedObservation(9, 0.12, 900)], min_tokens=500
    )
    assert near.qualifies and near.speedup == pytest.approx(1.2)
    assert [b.status()["running"] for b in near.by_load] == ["4-7"]  # reported at the speculative engines' load


def test_a_window_with_too_few_tokens_or_no_common_load_does_not_qualify() -> None:
    thin = measure([obs(1, 0.5, tokens=100)], [control(1, tokens=1000)], min_tokens=500)
    assert not thin.qualifies
    assert "100 output tokens from the speculative pods" in thin.message and "500 each needed" in thin.message
    apart = measure([obs(1, 1.5, tokens=1000)], [control(8, tokens=1000)], min_tokens=500)
    assert not apart.qualifies and apart.speedup is None
    assert "never ran at the same load" in apart.message
    # Garbage from a page (NaN, zero time) is not an observation.
    junk = measure([SpeedObservation(1, float("nan"), 900), SpeedObservation(1, 0.0, 900)], [control(1)], 1)
    assert junk.tokens == 0 and not junk.qualifies


def window(speedup: float | None, qualifies: bool = True) -> Payoff:
    return Payoff(speedup, (), 1000, 1000, qualifies, f"{speedup}x")


def test_pooled_windows_give_the_histograms_own_mean_over_all_their_requests() -> None:
    # Window 1: 2 requests finished at 0.50 s/token; window 2: 6 at 0.10 s/token (the same output tokens each).
    # The histogram over both says (2 * 0.5 + 6 * 0.1) / 8 = 0.2 s/token: a client timing those eight requests
    # sees that, not the windows' plain mean 0.3.
    first = measure([SpeedObservation(2, 0.50, 600, samples=2)], [SpeedObservation(2, 0.05, 600, samples=10)], 100)
    second = measure([SpeedObservation(2, 0.10, 600, samples=6)], [SpeedObservation(2, 0.05, 600, samples=10)], 100)
    pooled = pool([first, second], 100)
    assert pooled.speedup == pytest.approx(0.05 / 0.2)
    assert pooled.tokens == 1200 and pooled.windows == 2 and pooled.qualifies
    assert "in 2 windows" in pooled.message
    with pytest.raises(ValueError, match="at least one"):
        pool([], 100)


def test_pooled_windows_keep_the_control_observations_each_window_matched() -> None:
    # Seen on real vLLM: in the second window the control pod ran 1.4 requests (bucket 1) while the speculative one
    # ran 1.8 (bucket 2-3); that window compared them (within a factor 2). The pooled figure must compare the same
    # pairs, not drop the second control window because the first one had an observation in bucket 2-3.
    first = measure([SpeedObservation(1.8, 0.0233, 1587, 34)], [SpeedObservation(1.9, 0.0116, 3276, 68)], 100)
    second = measure([SpeedObservation(1.8, 0.0350, 1098, 22)], [SpeedObservation(1.4, 0.0063, 5254, 109)], 100)
    assert second.speedup == pytest.approx(0.0063 / 0.0350)
    pooled = pool([first, second], 100)
    control = (68 * 0.0116 + 109 * 0.0063) / 177
    speculative = (34 * 0.0233 + 22 * 0.0350) / 56
    assert pooled.speedup == pytest.approx(control / speculative)  # 0.30x; dropping the second control gave 0.42x
    assert (pooled.tokens, pooled.control_tokens) == (2685, 8530)


def test_k_slow_windows_in_a_row_roll_back_with_the_numbers_in_words() -> None:
    decision = decide_speed(1.0, 3, [window(0.94), window(0.58), window(0.61)])
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.reason is SpeedReason.SLOWER
    assert decision.reason == "SlowerThanControl"
    assert "0.61x its speed, below minSpeedup 1.00 in 3 consecutive" in decision.message
    assert "speedups 0.94x, 0.58x, 0.61x" in decision.message


def test_windows_that_do_not_qualify_hold_and_neither_count_nor_clear() -> None:
    slow, thin = window(0.6), window(None, qualifies=False)
    assert decide_speed(1.0, 3, [slow, thin, slow, thin]).verdict is Verdict.HOLD
    assert decide_speed(1.0, 3, [slow, thin, slow, thin, slow]).verdict is Verdict.ROLLBACK
    mixed = decide_speed(1.0, 3, [slow, window(1.2), slow])
    assert mixed.verdict is Verdict.HOLD and mixed.reason is SpeedReason.MIXED
    nothing = decide_speed(1.0, 3, [thin])
    assert nothing.verdict is Verdict.HOLD and nothing.reason is SpeedReason.NO_CONTROL
    assert decide_speed(1.0, 3, []).reason is SpeedReason.NO_CONTROL


def test_a_margin_below_one_tolerates_a_small_slowdown() -> None:
    assert decide_speed(0.9, 2, [window(0.94), window(0.93)]).verdict is Verdict.HEALTHY
    assert decide_speed(1.0, 2, [window(0.94), window(0.93)]).verdict is Verdict.ROLLBACK


def test_schedule_turns_speculation_off_where_it_loses_against_the_control() -> None:
    # A copy draft: acceptance 1.0, faster at 1 running in this scenario, 0.58x at 8 running.
    payoff = measure([obs(1, 1.2), obs(8, 0.58)], [control(1), control(8)], min_tokens=500)
    choice = choose_schedule(4, [1.0, 1.0, 1.0, 1.0], None, measured=payoff.by_load, min_tokens=500)
    assert choice is not None
    # Off at 8-15 where it loses, and above (no data there: load only makes verification dearer); on below.
    assert choice.schedule == ((1, 7, 4), (8, 65_536, 0))
    assert "0.58x at 8-15" in choice.reason and "1.20x at 1" in choice.reason
    # Every schedule it chooses is one vLLM accepts.
    check_schedule([BatchSizeRange(start=s, end=e, tokens=t) for s, e, t in choice.schedule], k=4)


def test_a_paying_load_above_a_losing_one_keeps_speculating() -> None:
    payoff = measure([obs(1, 0.9), obs(8, 1.1)], [control(1), control(8)], min_tokens=500)
    choice = choose_schedule(4, [0.5], None, measured=payoff.by_load, min_tokens=500)
    assert choice is not None
    # Measured: off at 1, on at 8-15; the unmeasured 2-7 lie above a loss, 16+ above a gain.
    assert choice.schedule == ((1, 7, 0), (8, 65_536, 4))


def test_schedule_from_the_model_alone_uses_the_modelled_depth_everywhere() -> None:
    alpha = 0.8
    measured = [alpha ** (i + 1) for i in range(8)]
    choice = choose_schedule(8, measured, 0.1, measured=())
    assert choice is not None
    assert choice.schedule == ((1, 65_536, 6),)  # the reference table: k* = 6 at alpha 0.8, c = 0.1
    assert "no control group" in choice.reason and "modelled depth 6" in choice.reason
    costly = choose_schedule(4, [0.02], 0.5)
    assert costly is not None and costly.schedule == ((1, 65_536, 0),)
    assert "no depth pays" in costly.reason
    assert choose_schedule(4, [], 0.1) is None


def test_a_bucket_already_off_stays_off_and_thin_buckets_keep_their_depth() -> None:
    current = ((1, 7, 4), (8, 65_536, 0))
    # At 8+ the pods do not speculate: a measured 1.0x there says nothing about speculation.
    payoff = measure([obs(1, 1.5), obs(8, 1.0, tokens=50)], [control(1), control(8, tokens=50)], min_tokens=500)
    choice = choose_schedule(4, [0.7], None, measured=payoff.by_load, min_tokens=500, current=current)
    assert choice is not None and choice.schedule == current


def test_schedule_changes_at_most_once_per_interval_and_only_when_different() -> None:
    new = ScheduleChoice(((1, 7, 4), (8, 65_536, 0)), "why")
    assert next_schedule(None, new, None, 1000.0, 600) is new
    assert next_schedule(None, new, 500.0, 1000.0, 600) is None  # changed 500 s ago
    assert next_schedule(None, new, 400.0, 1000.0, 600) is new
    assert next_schedule(new.schedule, new, None, 1000.0, 600) is None  # nothing new
    assert next_schedule(None, None, None, 1000.0, 600) is None


def test_buckets_cover_every_batch_size_once() -> None:
    assert DEFAULT_BUCKETS[0][0] == 1
    for (_, end), (start, _) in itertools.pairwise(DEFAULT_BUCKETS):
        assert start == end + 1

"""status.performance: what is published about the serving revision's speed, and when it is worth a write."""

from __future__ import annotations

import pytest

from specdeploy.api.status import PerformanceStatus
from specdeploy.monitor.payoff import SpeedObservation, measure, pool
from specdeploy.monitor.performance import NO_CONTROL, latest_with_tokens, meaningful, performance_status
from specdeploy.monitor.speed import Speed
from specdeploy.monitor.window import Window

T0 = 1_767_268_800.0


def speed(tpot: float | None = 0.02, tokens: float = 3000, running: float | None = 3.0, itl: bool = False) -> Speed:
    return Speed(
        output_tokens=tokens,
        tokens_per_second=tokens / 60,
        request_tpot_seconds=None if itl else tpot,
        requests=0 if itl else 12,
        inter_token_seconds=tpot if itl else None,
        steps=tokens if itl else 0,
        running_requests=running,
        pods=2,
    )


def window(i: int, s: Speed | None) -> Window:
    return Window(start=T0 + 60 * i, end=T0 + 60 * (i + 1), counters=None, acceptance=None, speed=s)


def test_the_status_says_the_numbers_and_that_the_speedup_needs_a_control_group() -> None:
    out = performance_status("rev1", window(0, speed()))
    model = PerformanceStatus.model_validate(out)
    assert model.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        k: v for k, v in out.items() if v is not None
    }, "no key the CRD would prune"
    assert out["timePerOutputTokenSeconds"] == 0.02 and out["generationTokensPerSecond"] == 50.0
    assert out["runningRequests"] == 3.0 and out["speedup"] is None and out["speedupByLoad"] == []
    assert out["windowEnd"] == "2026-01-01T12:01:00Z"
    assert "time per output token 20.0 ms (vllm:request_time_per_output_token_seconds, 12 finished" in out["message"]
    assert "3,000 output tokens on 2 pod(s)" in out["message"] and NO_CONTROL in out["message"]


def test_the_inter_token_latency_is_named_when_it_stood_in() -> None:
    out = performance_status("rev1", window(0, speed(itl=True)))
    assert "vllm:inter_token_latency_seconds: no request finished" in out["message"]


def test_nothing_measured_says_so() -> None:
    out = performance_status("rev1", None)
    assert out["timePerOutputTokenSeconds"] is None and "speed not measured" in out["message"]


def test_the_latest_window_with_tokens_is_the_one_published() -> None:
    ws = [window(0, speed(0.03)), window(1, speed(0.02)), window(2, speed(tokens=0)), window(3, None)]
    latest = latest_with_tokens(ws)
    assert latest is not None and latest.start == T0 + 60


def test_noise_is_not_rewritten_a_real_change_is() -> None:
    base = performance_status("rev1", window(0, speed(0.020)))
    assert meaningful(None, base)
    assert not meaningful(base, performance_status("rev1", window(1, speed(0.0205)))), "2.5%: noise"
    assert not meaningful(base, performance_status("rev1", window(1, speed(0.020, running=3.6))))
    assert meaningful(base, performance_status("rev1", window(1, speed(0.025)))), "25% slower"
    assert meaningful(base, performance_status("rev1", window(1, speed(0.020, tokens=6000))))
    assert meaningful(base, performance_status("rev1", window(1, speed(0.020, running=5))))
    assert meaningful(base, performance_status("rev2", window(1, speed(0.020))))
    assert meaningful(base, performance_status("rev1", window(1, speed(0.020, running=None))))


# ----------------------------------------------------------------------------------------- the control group
def obs(tpot: float, running: float, tokens: float = 3000) -> SpeedObservation:
    return SpeedObservation(running=running, tpot=tpot, tokens=tokens)


def test_the_published_speedup_is_the_judged_windows_pooled_with_their_span() -> None:
    # Two windows at three loads: the speedup per load is over both windows' tokens, not a mean of two ratios.
    first = measure([obs(0.010, 1), obs(0.020, 3)], [obs(0.016, 1), obs(0.024, 3)], 100, start=T0, end=T0 + 60)
    second = measure([obs(0.030, 1), obs(0.030, 12)], [obs(0.016, 1), obs(0.024, 12)], 100, start=T0 + 60, end=T0 + 120)
    pooled = pool([first, second], 100)
    assert pooled.windows == 2 and pooled.start == T0 and pooled.end == T0 + 120
    out = performance_status("rev1", window(1, speed()), pooled)
    PerformanceStatus.model_validate(out)
    assert out["speedupByLoad"] == [
        {"runningMin": 1, "runningMax": 1, "speedup": round(0.016 / 0.020, 3), "tokens": 6000},
        {"runningMin": 2, "runningMax": 3, "speedup": 1.2, "tokens": 3000},
        {"runningMin": 8, "runningMax": 15, "speedup": 0.8, "tokens": 3000},
    ]
    assert out["speedup"] == pytest.approx((0.8 * 6000 + 1.2 * 3000 + 0.8 * 3000) / 12000, abs=0.001)
    assert out["speedupFrom"] == "2026-01-01T12:00:00.000Z" and out["speedupTo"] == "2026-01-01T12:02:00.000Z"
    assert "against the control group over 12,000 speculative and 12,000 control output tokens" in out["message"]
    assert "last 2 qualifying window(s)" in out["message"]


def test_the_span_is_published_to_the_millisecond() -> None:
    one = measure([obs(0.02, 2)], [obs(0.01, 2)], 100, start=T0 + 0.2504, end=T0 + 20.0126)
    out = performance_status("rev1", window(0, speed()), one)
    assert (out["speedupFrom"], out["speedupTo"]) == ("2026-01-01T12:00:00.250Z", "2026-01-01T12:00:20.012Z")
    assert out["speedup"] == 0.5


def test_no_comparison_gives_no_speedup_and_says_what_it_needs() -> None:
    out = performance_status("rev1", window(0, speed()), None)
    assert out["speedup"] is None and out["speedupByLoad"] == [] and out["speedupFrom"] is None
    assert NO_CONTROL in out["message"] and "minOutputTokens" in out["message"]
    short = measure([obs(0.02, 2, tokens=10)], [obs(0.01, 2)], 100)
    assert not short.qualifies and performance_status("rev1", window(0, speed()), short)["speedup"] is None


def test_a_speedup_is_rewritten_when_it_moves_five_percent_not_less() -> None:
    def at(ratio: float) -> dict[str, object]:
        return performance_status("rev1", window(0, speed()), measure([obs(0.1, 2)], [obs(0.1 * ratio, 2)], 100))

    assert not meaningful(at(0.10), at(0.104)), "4% of a small speedup: noise"
    assert meaningful(at(0.10), at(0.106)), "6% of a small speedup is a change (an absolute 0.05 would be half)"
    assert not meaningful(at(2.0), at(2.09))
    assert meaningful(at(2.0), at(2.11))

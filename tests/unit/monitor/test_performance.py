"""status.performance: what is published about the serving revision's speed, and when it is worth a write."""

from __future__ import annotations

import pytest

from specdeploy.api.status import PerformanceStatus
from specdeploy.monitor.performance import (
    NO_CONTROL,
    bucket_of,
    latest_with_tokens,
    meaningful,
    measured_speedup,
    performance_status,
)
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


# ----------------------------------------------------------------------------------------- the control slot
def test_the_speedup_is_control_time_over_speculative_time_overall_and_by_load() -> None:
    spec = [speed(0.010, running=1), speed(0.020, running=3), speed(0.030, running=12)]
    control = [speed(0.016, running=1), speed(0.024, running=3), speed(0.024, running=12)]
    got = measured_speedup(spec, control)
    assert got is not None
    assert got.overall == pytest.approx((0.016 + 0.024 + 0.024) / (0.010 + 0.020 + 0.030))
    assert [(lo, hi, round(v, 3)) for lo, hi, v, _ in got.by_load] == [(0, 1, 1.6), (2, 4, 1.2), (9, 16, 0.8)]
    out = performance_status("rev1", window(0, spec[-1]), got)
    assert out["speedup"] == pytest.approx(got.overall, abs=0.001)
    assert out["speedupByLoad"][2] == {"runningMin": 9, "runningMax": 16, "speedup": 0.8, "tokens": 3000}
    assert "against the control group" in out["message"]
    PerformanceStatus.model_validate(out)


def test_no_control_or_no_traffic_gives_no_speedup() -> None:
    assert measured_speedup([speed()], []) is None
    assert measured_speedup([speed(tokens=0)], [speed()]) is None
    assert measured_speedup([speed()], [speed(tokens=10)], min_tokens=100) is None


def test_load_ranges_round_to_a_batch_size() -> None:
    assert bucket_of(0.4) == (0, 1) and bucket_of(1.6) == (2, 4) and bucket_of(100) == (65, None)
    assert bucket_of(None) is None

"""Speed per revision: vLLM's latency, token and load series read from the real page, windowed with resets handled."""

from __future__ import annotations

import random

import pytest

from specdeploy.monitor import pagefilter
from specdeploy.monitor.pagefilter import MAX_SERIES, SpecDecodeFilter, filter_page
from specdeploy.monitor.parse import MetricsParseError, parse_lines
from specdeploy.monitor.pools import read_speed
from specdeploy.monitor.speed import (
    GENERATION_TOKENS,
    KEPT_NAMES,
    TPOT_COUNT,
    Speed,
    SpeedCounters,
    parse_speed_lines,
    speed_delta,
)
from specdeploy.monitor.window import PodSample, WindowAccumulator

from .pages import REAL_PAGE

T0 = 1_767_268_800.0
LABELS = 'engine="0",model_name="tiny-target"'


def speed_page(
    tokens: float,
    tpot_sum: float,
    tpot_count: float,
    itl_sum: float = 0.0,
    itl_count: float = 0.0,
    running: float = 1.0,
    created: float | None = 1.7e9,
) -> str:
    """The speed part of a vLLM 0.32 page (buckets included, as vLLM writes them), for one engine; ``created``
    None leaves out the start times (``PROMETHEUS_DISABLE_CREATED_SERIES``)."""
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{LABELS}}} {running}",
        f"vllm:num_requests_waiting{{{LABELS}}} 0.0",
        f'vllm:num_requests_waiting_by_reason{{{LABELS},reason="capacity"}} 7.0',
        f"vllm:generation_tokens_total{{{LABELS}}} {tokens}",
        f"vllm:generation_tokens_created{{{LABELS}}} {created}",
        f'vllm:request_time_per_output_token_seconds_bucket{{{LABELS},le="0.01"}} {tpot_count}',
        f"vllm:request_time_per_output_token_seconds_count{{{LABELS}}} {tpot_count}",
        f"vllm:request_time_per_output_token_seconds_sum{{{LABELS}}} {tpot_sum}",
        f"vllm:request_time_per_output_token_seconds_created{{{LABELS}}} {created}",
        f"vllm:inter_token_latency_seconds_count{{{LABELS}}} {itl_count}",
        f"vllm:inter_token_latency_seconds_sum{{{LABELS}}} {itl_sum}",
        f"vllm:inter_token_latency_seconds_created{{{LABELS}}} {created}",
        "",
    ]
    return "\n".join(line for line in lines if created is not None or "_created" not in line)


def counters(page: str) -> SpeedCounters:
    got = parse_speed_lines(filter_page(page.encode()).speed)
    assert got is not None
    return got


# ----------------------------------------------------------------------------------------- the page
def test_the_filter_keeps_exactly_the_names_the_speed_reader_reads() -> None:
    assert frozenset(KEPT_NAMES) == pagefilter.SPEED_NAMES


def test_the_real_page_gives_vllms_own_numbers() -> None:
    kept = filter_page(REAL_PAGE.read_bytes())
    assert len(kept.speed) == 13, "sums, counts and start times of 3 histograms and 1 counter, 2 gauges"
    assert not any("_bucket" in text or "by_reason" in text for _, text in kept.speed)
    speed = parse_speed_lines(kept.speed)
    assert speed is not None
    assert speed.total(GENERATION_TOKENS) == 192.0
    assert speed.total(TPOT_COUNT) == 3.0
    assert speed.total("vllm:inter_token_latency_seconds_sum") == pytest.approx(0.5666837720000331)
    assert speed.total("vllm:iteration_tokens_total_sum") == 201.0
    assert (speed.running, speed.waiting) == (0.0, 0.0)
    assert len(speed.created) == 7, "every counter series has its start time"
    assert parse_lines(kept) is not None, "the spec-decode reading is unchanged by the speed lines"


def test_8_engines_at_the_largest_depth_fit_the_caps_twice_over() -> None:
    kept = filter_page(REAL_PAGE.read_bytes())
    spec_per_engine_k16 = 3 * 2 + 16 * 2  # drafts, draft and accepted tokens, 16 positions, each with _created
    assert 2 * 8 * (spec_per_engine_k16 + len(kept.speed)) <= MAX_SERIES


@pytest.mark.parametrize("sizes", [[1], [1, 2, 3, 5, 17], [64], [4096]])
def test_any_chunking_keeps_the_same_speed_lines(sizes: list[int]) -> None:
    page = REAL_PAGE.read_bytes()
    whole = filter_page(page)
    f = SpecDecodeFilter()
    rng, i = random.Random(7), 0
    while i < len(page):
        n = rng.choice(sizes)
        f.feed(page[i : i + n])
        i += n
    assert f.finish() == whole


def test_a_page_cut_inside_a_speed_line_gives_no_speed() -> None:
    page = speed_page(100, 1.0, 50).encode()
    cut = page[: page.index(b"vllm:generation_tokens_total") + 40]
    kept = filter_page(cut)
    assert kept.speed_truncated and read_speed(kept) is None


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-3", "twelve"])
def test_an_unreadable_speed_value_costs_the_speed_not_the_acceptance(value: str) -> None:
    page = REAL_PAGE.read_text().replace(
        'vllm:generation_tokens_total{engine="0",model_name="tiny-target"} 192.0',
        f'vllm:generation_tokens_total{{engine="0",model_name="tiny-target"}} {value}',
    )
    kept = filter_page(page.encode())
    with pytest.raises(MetricsParseError, match="line 183"):
        parse_speed_lines(kept.speed)
    assert read_speed(kept) is None
    assert parse_lines(kept) is not None


def test_a_page_without_speed_series_has_no_speed() -> None:
    assert read_speed(filter_page(b'vllm:spec_decode_num_drafts_total{engine="0"} 5\n')) is None


# ----------------------------------------------------------------------------------------- resets
def test_the_increase_between_two_readings() -> None:
    d = speed_delta(counters(speed_page(100, 1.0, 50)), counters(speed_page(400, 4.0, 200, running=3)))
    assert d is not None and d.total(GENERATION_TOKENS) == 300 and d.total(TPOT_COUNT) == 150
    assert d.running == 3, "gauges are the latest reading's"


def test_a_restart_counts_from_zero() -> None:
    before = counters(speed_page(1000, 10.0, 500, created=1.7e9))
    after = counters(speed_page(30, 0.6, 15, created=1.7e9 + 600))  # went down, started later: a new process
    d = speed_delta(before, after)
    assert d is not None and d.total(GENERATION_TOKENS) == 30


def test_without_start_times_a_counter_that_went_down_is_a_restart() -> None:
    before = counters(speed_page(1000, 10.0, 500, created=None))
    after = counters(speed_page(30, 0.6, 15, created=None))
    d = speed_delta(before, after)
    assert d is not None and d.total(GENERATION_TOKENS) == 30


def test_a_restart_that_already_grew_past_the_old_values_is_caught_by_its_start_time() -> None:
    before = counters(speed_page(100, 1.0, 50, created=1.7e9))
    after = counters(speed_page(400, 4.0, 200, created=1.7e9 + 600))
    d = speed_delta(before, after)
    assert d is not None and d.total(GENERATION_TOKENS) == 400


def test_a_counter_that_went_down_without_a_restart_gives_no_speed() -> None:
    assert speed_delta(counters(speed_page(400, 4.0, 200)), counters(speed_page(100, 4.0, 200))) is None


# ----------------------------------------------------------------------------------------- windows
def sample(t: float, pod: str, page: str) -> PodSample:
    return PodSample(timestamp=t, pod=pod, speed=counters(page))


def test_a_window_sums_the_pods_increases_and_averages_the_load() -> None:
    acc = WindowAccumulator(60, start=T0)
    for t, a, b in [
        (T0 + 10, speed_page(0, 0.0, 0, running=2), speed_page(0, 0.0, 0, running=4)),
        (T0 + 40, speed_page(600, 6.0, 300, running=4), speed_page(300, 9.0, 300, running=6)),
    ]:
        acc.add(sample(t, "pod-a", a))
        acc.add(sample(t, "pod-b", b))
    (w,) = acc.advance(T0 + 60)
    assert w.speed is not None
    assert w.speed.output_tokens == 900
    assert w.speed.tokens_per_second == pytest.approx(900 / 30), "each pod's tokens over its own span"
    assert w.speed.request_tpot_seconds == pytest.approx(15.0 / 600), "Δsum / Δcount over both pods"
    assert w.speed.requests == 600
    assert w.speed.running_requests == pytest.approx(4.0), "mean per pod over the window's scrapes"
    assert w.speed.pods == 2
    assert w.counters is None and w.acceptance is None, "speed alone says nothing about acceptance"


def test_consecutive_windows_tile_time_and_a_restart_mid_run_is_counted_once() -> None:
    acc = WindowAccumulator(60, start=T0)
    acc.add(sample(T0 + 5, "pod", speed_page(0, 0.0, 0)))
    acc.add(sample(T0 + 55, "pod", speed_page(500, 10.0, 500)))
    (first,) = acc.add(sample(T0 + 65, "pod", speed_page(40, 1.2, 40, created=1.7e9 + 60)))  # restarted
    (second,) = acc.advance(T0 + 120)
    assert first.speed is not None and first.speed.output_tokens == 500
    assert second.speed is not None and second.speed.output_tokens == 40
    assert second.speed.request_tpot_seconds == pytest.approx(0.03)


def test_without_a_finished_request_the_inter_token_latency_stands_in() -> None:
    acc = WindowAccumulator(60, start=T0)
    acc.add(sample(T0 + 5, "pod", speed_page(0, 0.0, 0, itl_sum=0.0, itl_count=0)))
    acc.add(sample(T0 + 50, "pod", speed_page(100, 0.0, 0, itl_sum=2.5, itl_count=100)))
    (w,) = acc.advance(T0 + 60)
    assert w.speed is not None and w.speed.request_tpot_seconds is None
    assert w.speed.time_per_output_token == pytest.approx(0.025)


def test_a_pod_seen_once_gives_no_speed() -> None:
    acc = WindowAccumulator(60, start=T0)
    acc.add(sample(T0 + 5, "pod", speed_page(0, 0.0, 0)))
    (w,) = acc.advance(T0 + 60)
    assert w.speed is None


def test_an_errored_scrape_does_not_feed_the_speed() -> None:
    acc = WindowAccumulator(60, start=T0)
    acc.add(sample(T0 + 5, "pod", speed_page(0, 0.0, 0)))
    acc.add(PodSample(timestamp=T0 + 30, pod="pod", error="timeout: no answer"))
    acc.add(sample(T0 + 50, "pod", speed_page(100, 2.0, 100)))
    (w,) = acc.advance(T0 + 60)
    assert w.speed == Speed(
        output_tokens=100,
        tokens_per_second=100 / 45,
        request_tpot_seconds=0.02,
        requests=100,
        inter_token_seconds=None,
        steps=0,
        running_requests=1.0,
        waiting_requests=0.0,
        tokens_per_step=None,
        pods=1,
        since=T0 + 5,  # the data lies between the two good scrapes, not the window's nominal bounds
        until=T0 + 50,
    )

"""Acceptance arithmetic: deltas with counter resets, sums over pods, rates with zero denominators."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specdeploy.monitor.acceptance import combine, delta, restarted, summarize
from specdeploy.monitor.parse import SpecDecodeCounters, parse_spec_decode

from .pages import REAL_PAGE, EngineCounts, V1Server, render_v0_page, render_v1_page


def page(**engines: EngineCounts) -> SpecDecodeCounters:
    result = parse_spec_decode(render_v1_page(engines))
    assert result is not None
    return result


def read(server: V1Server, **engines: EngineCounts) -> SpecDecodeCounters:
    result = parse_spec_decode(server.advance_to(engines))
    assert result is not None
    return result


def test_fixture_numbers_from_the_reference_doc() -> None:
    # reference/vllm-speculative-decoding.md §2: drafts 120000, draft 480000, accepted 262800, per-pos 93600/...
    counters = page(e0=EngineCounts(120000, 480000, 262800, (93600, 72000, 55200, 42000)))
    result = summarize(counters)
    assert result.rate == pytest.approx(0.5475)
    assert result.mean_accepted_length == pytest.approx(3.19)
    assert result.per_position == pytest.approx((0.78, 0.6, 0.46, 0.35))


def test_real_capture_summary() -> None:
    counters = parse_spec_decode(REAL_PAGE.read_text())
    assert counters is not None
    result = summarize(counters)
    assert result.engine == "v1"
    assert result.rate == 0.0  # an unrelated draft: not one token accepted
    assert result.mean_accepted_length == 1.0
    assert result.per_position == (0.0, 0.0, 0.0, 0.0)


def test_zero_denominators_are_no_data_not_zero() -> None:
    result = summarize(page(e0=EngineCounts(0, 0, 0, (0, 0))))
    assert result.rate is None
    assert result.mean_accepted_length is None
    assert result.per_position == ()
    assert result.to_json()["acceptance_rate"] is None


def test_delta_between_two_pages_sums_engines() -> None:
    server = V1Server()
    before = read(
        server, **{"0": EngineCounts(100, 400, 200, (80, 60, 40, 20)), "1": EngineCounts(50, 200, 50, (30, 10, 5, 5))}
    )
    after = read(
        server,
        **{"0": EngineCounts(200, 800, 300, (150, 80, 50, 20)), "1": EngineCounts(150, 600, 350, (130, 100, 70, 50))},
    )
    window = summarize(delta(before, after))
    assert (window.drafts, window.draft_tokens, window.accepted_tokens) == (200, 800, 400)
    assert window.rate == 0.5
    assert window.mean_accepted_length == 3.0
    assert window.per_position == ((70 + 100) / 200, (20 + 90) / 200, (10 + 65) / 200, (0 + 45) / 200)


def test_separately_started_servers_are_a_restart_even_with_growing_counters() -> None:
    before = page(e0=EngineCounts(10, 40, 20))
    after = page(e0=EngineCounts(20, 80, 40))  # another registry: other _created start times
    assert restarted(before, after)
    assert delta(before, after).draft_tokens == 80


def test_restart_detected_when_any_series_goes_down_even_if_others_grew() -> None:
    before = page(e0=EngineCounts(drafts=189, draft_tokens=756, accepted=0, per_position=(0, 0, 0, 0)))
    # the server restarted and has already done more draft tokens than before, but fewer drafts
    after = page(e0=EngineCounts(drafts=150, draft_tokens=800, accepted=400, per_position=(150, 120, 80, 50)))
    assert restarted(before, after)
    window = summarize(delta(before, after))
    # everything since the restart; a per-series rule would have reported 44 draft tokens and a rate of 9
    assert (window.drafts, window.draft_tokens, window.accepted_tokens) == (150, 800, 400)
    assert window.rate == 0.5


def test_restart_detected_by_created_timestamp_when_all_counters_grew() -> None:
    before = parse_spec_decode(REAL_PAGE.read_text())
    later_text = (
        REAL_PAGE.read_text()
        .replace("} 189.0", "} 300.0")
        .replace("} 756.0", "} 1200.0")
        .replace("1.7959688288698728e+09", "1.7959699999e+09")
    )
    after = parse_spec_decode(later_text)
    assert before is not None and after is not None
    assert restarted(before, after)
    assert delta(before, after).draft_tokens == 1200


def test_no_restart_when_start_times_equal_and_counters_grew() -> None:
    before = parse_spec_decode(REAL_PAGE.read_text())
    after = parse_spec_decode(REAL_PAGE.read_text().replace("} 189.0", "} 300.0").replace("} 756.0", "} 1200.0"))
    assert before is not None and after is not None
    assert not restarted(before, after)
    assert (delta(before, after).drafts, delta(before, after).draft_tokens) == (111, 444)


def test_series_new_since_the_previous_page_counts_from_zero() -> None:
    server = V1Server()
    before = read(server, **{"0": EngineCounts(10, 40, 20, (10, 5, 3, 2))})
    after = read(server, **{"0": EngineCounts(20, 80, 40, (20, 10, 6, 4)), "1": EngineCounts(5, 20, 10, (5, 3, 1, 1))})
    result = delta(before, after)
    assert (result.drafts, result.draft_tokens, result.accepted_tokens) == (15, 60, 30)
    assert result.per_position == (15, 8, 4, 3)


@settings(max_examples=100, deadline=None)
@given(
    base=st.lists(st.integers(0, 10**9), min_size=3, max_size=3),
    growth=st.lists(st.integers(0, 10**6), min_size=3, max_size=3),
)
def test_delta_without_restart_is_the_plain_difference(base: list[int], growth: list[int]) -> None:
    server = V1Server()
    before = read(server, e0=EngineCounts(base[0], base[1], base[2]))
    after = read(server, e0=EngineCounts(base[0] + growth[0], base[1] + growth[1], base[2] + growth[2]))
    result = delta(before, after)
    assert (result.drafts, result.draft_tokens, result.accepted_tokens) == tuple(float(g) for g in growth)


def test_delta_from_nothing_is_the_page_itself() -> None:
    counters = page(e0=EngineCounts(10, 40, 20))
    assert delta(None, counters) is counters


def test_v0_uses_the_lifetime_gauge_and_reports_no_token_counts() -> None:
    counters = parse_spec_decode(render_v0_page(0.5625, 0.638, 270000, 480000, 382800))
    assert counters is not None
    result = summarize(counters)
    assert result.engine == "v0"
    assert result.rate == 0.5625
    assert (result.drafts, result.draft_tokens, result.accepted_tokens, result.mean_accepted_length) == (None,) * 4
    assert result.to_json()["engine"] == "v0"


def test_combine_sums_pods_and_refuses_to_mix_engines() -> None:
    a = page(e0=EngineCounts(10, 40, 20, (10, 6, 3, 1)))
    b = page(e0=EngineCounts(30, 120, 30, (20, 6, 3, 1)))
    total = combine([a, b])
    assert total is not None
    assert (total.drafts, total.draft_tokens, total.accepted_tokens) == (40, 160, 50)
    assert total.per_position == (30, 12, 6, 2)
    assert combine([]) is None
    v0 = parse_spec_decode(render_v0_page(0.5, 0.6, 1, 2, 3))
    assert v0 is not None
    with pytest.raises(ValueError, match="different engines"):
        combine([a, v0])


def test_combine_drops_per_position_when_depths_differ() -> None:
    a = page(e0=EngineCounts(10, 40, 20, (10, 6, 3, 1)))
    b = page(e0=EngineCounts(10, 30, 10, (5, 3, 2)))
    total = combine([a, b])
    assert total is not None and total.per_position == () and total.drafts == 20


def test_json_keys() -> None:
    data = summarize(page(e0=EngineCounts(10, 40, 20, (10, 6, 3, 1)))).to_json()
    assert data == {
        "acceptance_rate": 0.5,
        "mean_accepted_length": 3.0,
        "per_position": [1.0, 0.6, 0.3, 0.1],
        "drafts": 10,
        "draft_tokens": 40,
        "accepted_tokens": 20,
        "engine": "v1",
    }

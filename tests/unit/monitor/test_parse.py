"""The /metrics parser: same numbers as prometheus_client on real and synthetic pages, and no trust in bad pages."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdeploy.monitor.parse import (
    MAX_PAGE_BYTES,
    MetricsParseError,
    SpecDecodeCounters,
    parse_sample_line,
    parse_spec_decode,
)

from .pages import REAL_PAGE, EngineCounts, reference_numbers, render_v0_page, render_v1_page

V1_HEAD = (
    "# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.\n"
    "# TYPE vllm:spec_decode_num_drafts_total counter\n"
)


def _v1_lines(drafts: str = "10.0", draft_tokens: str = "40.0", accepted: str = "20.0") -> str:
    return (
        V1_HEAD
        + f'vllm:spec_decode_num_drafts_total{{engine="0",model_name="m"}} {drafts}\n'
        + f'vllm:spec_decode_num_draft_tokens_total{{engine="0",model_name="m"}} {draft_tokens}\n'
        + f'vllm:spec_decode_num_accepted_tokens_total{{engine="0",model_name="m"}} {accepted}\n'
    )


def _parsed(page: str | bytes) -> SpecDecodeCounters:
    result = parse_spec_decode(page)
    assert result is not None
    return result


# --- real capture -------------------------------------------------------------------------------------------------


def test_real_page_matches_prometheus_client() -> None:
    page = REAL_PAGE.read_text()
    ours = _parsed(page)
    ref = reference_numbers(page)
    assert ours.engine == "v1"
    assert (ours.drafts, ours.draft_tokens, ours.accepted_tokens) == (ref.drafts, ref.draft_tokens, ref.accepted)
    assert ours.per_position == ref.per_position
    assert len(ours.per_position) == 4  # the capture ran with num_speculative_tokens=4
    assert ours.drafts > 0 and ours.draft_tokens == 4 * ours.drafts  # every draft proposed 4 tokens
    assert ours.notes == ()


def test_real_page_keeps_series_and_start_times_for_reset_detection() -> None:
    counters = _parsed(REAL_PAGE.read_bytes())
    names = {name for (name, _), _ in counters.series}
    assert "vllm:spec_decode_num_drafts_total" in names
    assert all(not name.endswith("_created") for name in names)  # _created values never counted
    created = counters.created_map()
    assert created[("vllm:spec_decode_num_drafts_total", (("engine", "0"), ("model_name", "tiny-target")))] == (
        pytest.approx(1.7959688288698728e09)
    )


# --- differential against prometheus_client on pages it renders itself ----------------------------------------------

counts = st.floats(min_value=0, max_value=1e12, allow_nan=False).map(lambda x: float(round(x)))
engine_counts = st.builds(
    EngineCounts,
    drafts=counts,
    draft_tokens=counts,
    accepted=counts,
    per_position=st.lists(counts, min_size=3, max_size=3),
)
label_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    engines=st.dictionaries(st.sampled_from(["0", "1", "2", "3"]), engine_counts, min_size=1, max_size=4),
    model_name=label_text,
)
def test_synthetic_pages_match_prometheus_client(engines: dict[str, EngineCounts], model_name: str) -> None:
    page = render_v1_page(engines, model_name=model_name)
    ours = _parsed(page)
    ref = reference_numbers(page)
    assert (ours.drafts, ours.draft_tokens, ours.accepted_tokens) == (ref.drafts, ref.draft_tokens, ref.accepted)
    assert ours.per_position == ref.per_position
    # and both equal what was put in: summed over every engine
    assert ours.drafts == sum(c.drafts for c in engines.values())
    assert len(ours.series) == 6 * len(engines)
    assert {dict(labels)["model_name"] for _, labels in (k for k, _ in ours.series)} == {model_name}


def test_v0_page_reads_the_gauge() -> None:
    page = render_v0_page(rate=0.5625, efficiency=0.638, accepted=270000, draft=480000, emitted=382800)
    ours = _parsed(page)
    assert ours.engine == "v0"
    assert ours.v0_acceptance_rate == reference_numbers(page).v0_rate == 0.5625
    assert ours.v0_efficiency == 0.638
    assert ours.v0_emitted_tokens == 382800
    assert ours.drafts == 0 and ours.per_position == ()


def test_v0_gauge_nan_before_first_draft_means_no_rate() -> None:
    page = (
        '# TYPE vllm:spec_decode_draft_acceptance_rate gauge\nvllm:spec_decode_draft_acceptance_rate{model_name="m"} '
        "NaN\n"
    )
    assert _parsed(page).v0_acceptance_rate is None


# --- exposition details -------------------------------------------------------------------------------------------


def test_exponent_floats_timestamps_and_whitespace() -> None:
    page = (
        V1_HEAD
        + 'vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 1.319268e+06 1712345678000\n'
        + 'vllm:spec_decode_num_draft_tokens_total{ engine = "0" , model_name="m", }\t5.277072E+06\n'
        + 'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 2.5e6\r\n'
    )
    counters = _parsed(page)
    assert (counters.drafts, counters.draft_tokens, counters.accepted_tokens) == (1319268.0, 5277072.0, 2.5e6)


def test_escaped_label_values() -> None:
    name, labels, value = parse_sample_line(r'm{model_name="a \"quoted\" \\ path\nnext",engine="0"} 7')
    assert name == "m" and value == 7
    assert dict(labels) == {"model_name": 'a "quoted" \\ path\nnext', "engine": "0"}


def test_spec_decode_text_inside_other_lines_is_not_read() -> None:
    page = (
        "# HELP vllm:spec_decode_num_drafts_total 999\n"
        'other_metric{note="vllm:spec_decode_num_drafts_total 5"} 1\n'
        'other_metric{note="x\\nvllm:spec_decode_num_drafts_total 5"} 2\n'
    )
    assert parse_spec_decode(page) is None


def test_page_without_speculation_is_none() -> None:
    page = REAL_PAGE.read_text()
    without = "\n".join(line for line in page.splitlines() if "spec_decode" not in line) + "\n"
    assert parse_spec_decode(without) is None
    assert parse_spec_decode("") is None
    assert parse_spec_decode(b"\x00\xff\xfe garbage \x81\n" * 1000) is None


def test_created_series_and_unknown_names_are_skipped_with_a_note() -> None:
    page = _v1_lines() + (
        'vllm:spec_decode_num_drafts_created{engine="0",model_name="m"} 1.7e9\n'
        'vllm:spec_decode_future_thing_total{engine="0"} 3\n'
    )
    counters = _parsed(page)
    assert counters.drafts == 10
    assert any("vllm:spec_decode_future_thing_total" in note for note in counters.notes)


def test_exemplar_after_value_is_ignored() -> None:
    page = _v1_lines(drafts='10.0 # {trace_id="abc"} 1.0')
    assert _parsed(page).drafts == 10


# --- hostile input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "fragment"),
    [
        (_v1_lines(drafts="NaN"), "counters are finite and non-negative"),
        (_v1_lines(drafts="+Inf"), "counters are finite and non-negative"),
        (_v1_lines(accepted="-3"), "counters are finite and non-negative"),
        (_v1_lines(drafts="ten"), "is not a number"),
        (_v1_lines(drafts="1_000"), "is not a number"),
        (_v1_lines(drafts="10 12:30"), "timestamp"),
        (_v1_lines() + 'vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 3\n', "duplicate series"),
        (_v1_lines().replace('engine="0",model_name', 'engine="0",engine'), "given twice"),
        ('vllm:spec_decode_num_drafts_total{engine="0 5\n', "not closed"),
        ("vllm:spec_decode_num_drafts_total{0a=1} 5\n", "label name"),
        ("vllm:spec_decode_num_drafts_total\n", "no value"),
        ("vllm:spec_decode_num_drafts_total}5\n", "unexpected"),
        (V1_HEAD + 'vllm:spec_decode_num_drafts_total{engine="0"} 5\n', "missing"),
        ('vllm:spec_decode_num_draft_tokens_total{engine="0"} 5\n', "without vllm:spec_decode_num_drafts_total"),
        (_v1_lines() + 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0"} 1\n', "position label"),
        (
            _v1_lines()
            + 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="0"} 5\n'
            + 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="2"} 1\n',
            "not 0..k-1",
        ),
        (
            _v1_lines()
            + 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="0"} 5\n'
            + 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="1",position="0"} 5\n'
            + 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="1",position="1"} 1\n',
            "disagree",
        ),
        ('vllm:spec_decode_draft_acceptance_rate{model_name="m"} 1.5\n', "outside [0, 1]"),
        (
            'vllm:spec_decode_draft_acceptance_rate{model_name="a"} 0.5\n'
            'vllm:spec_decode_draft_acceptance_rate{model_name="b"} 0.5\n',
            "several V0 engines",
        ),
    ],
)
def test_bad_spec_decode_lines_raise_a_clear_error(page: str, fragment: str) -> None:
    with pytest.raises(MetricsParseError) as info:
        parse_spec_decode(page)
    assert fragment in str(info.value)


def test_error_names_the_line_number() -> None:
    page = "a 1\nb 2\n" + _v1_lines(drafts="oops")
    with pytest.raises(MetricsParseError, match=r"^line 5: value 'oops' is not a number"):
        parse_spec_decode(page)


def test_page_cut_inside_a_spec_decode_line_is_an_error() -> None:
    page = REAL_PAGE.read_text()
    cut = page.index("vllm:spec_decode_num_draft_tokens_total{") + 60
    with pytest.raises(MetricsParseError, match="ends inside a spec-decode line"):
        parse_spec_decode(page[:cut])


def test_every_truncation_of_the_real_page_gives_true_numbers_or_holds() -> None:
    """A page cut anywhere never yields wrong totals: either the true ones, None (hold) or an error."""
    page = REAL_PAGE.read_text()
    truth = _parsed(page)
    first = page.index("vllm:spec_decode")
    last = page.rindex("vllm:spec_decode") + 200
    for cut in range(first - 5, last):
        try:
            result = parse_spec_decode(page[:cut])
        except MetricsParseError:
            continue
        if result is None:
            continue
        assert (result.drafts, result.draft_tokens, result.accepted_tokens) == (
            truth.drafts,
            truth.draft_tokens,
            truth.accepted_tokens,
        )
        assert truth.per_position[: len(result.per_position)] == result.per_position


def test_size_cap() -> None:
    big = "x" * (MAX_PAGE_BYTES + 1)
    with pytest.raises(MetricsParseError, match="page too large"):
        parse_spec_decode(big)
    with pytest.raises(MetricsParseError, match="page too large"):
        parse_spec_decode(big.encode())
    assert parse_spec_decode(_v1_lines(), max_bytes=10_000) is not None
    with pytest.raises(MetricsParseError, match="page must be str or bytes"):
        parse_spec_decode(123)  # type: ignore[arg-type]


def test_large_page_of_other_series_is_cheap_and_ignored() -> None:
    filler = "".join(f'vllm:other_total{{i="{i}"}} {i}\n' for i in range(100_000))
    counters = _parsed(filler + _v1_lines() + filler)
    assert counters.drafts == 10


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_arbitrary_input_never_crashes(page: bytes | str) -> None:
    with contextlib.suppress(MetricsParseError):
        parse_spec_decode(page)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_real_page_never_crashes_and_never_returns_nan(data: st.DataObject) -> None:
    page = bytearray(REAL_PAGE.read_bytes())
    start = page.index(b"vllm:spec_decode") - 10
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(start, start + 3000))
        page[at] = data.draw(st.integers(0, 255))
    try:
        result = parse_spec_decode(bytes(page))
    except MetricsParseError:
        return
    if result is not None:
        for value in (result.drafts, result.draft_tokens, result.accepted_tokens, *result.per_position):
            assert math.isfinite(value) and value >= 0

"""Measured speed in ``compare-drafts``: the math of the speedup columns, the words of the analysis, the sequence.

The synthetic measurements reproduce the shape measured on real vLLM (CPU, tiny models; issue 14): n-gram pays at
one request and fades at eight, the target's own copy as draft is slower than speculation off although it is
accepted every time, and a draft from another family is slower still.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tests.unit.compare.synthetic import acceptance, arch, candidate, tiny_comparison
from tests.unit.compare.test_run import PROMPTS, ScriptedEndpoint, ScriptedLauncher

from specdeploy.compare.analysis import analysis
from specdeploy.compare.plot import speedup_series, write_chart
from specdeploy.compare.report import render_table, to_json
from specdeploy.compare.results import Candidate, Comparison, RequestTiming, SpeedPoint, headline
from specdeploy.compare.run import (
    DraftSpec,
    Settings,
    measure_baseline,
    measure_candidate,
    model_free_architecture,
    model_free_verdict,
    parse_model_free,
    speed_requests,
)
from specdeploy.compare.speed import (
    disagreement_lines,
    disagrees,
    measured_speedup,
    modelled_speedup,
    speed_rows,
    summary_lines,
)
from specdeploy.monitor.speedup import speedup


def point(concurrency: int, tokens_per_second: float, tpot_s: float = 0.05, requests: int = 4) -> SpeedPoint:
    """A level whose aggregate rate is exactly ``tokens_per_second`` (64 tokens per request)."""
    tokens = 64 * requests
    return SpeedPoint(concurrency, requests, tokens, tokens / tokens_per_second, tpot_s)


def ngram(rate: float = 0.52) -> Candidate:
    return Candidate(
        label="ngram",
        model="ngram",
        architecture=model_free_architecture("ngram"),
        verdict=model_free_verdict("ngram"),
        overall=acceptance(rate),
        cost_ratio=0.0,
        method="ngram",
    )


def measured_comparison() -> Comparison:
    """Speculation off at 20 tokens/s (1 request) and 60 (8); speedups as in the issue's CPU measurement."""
    base = tiny_comparison()
    copy = next(c for c in base.candidates if c.label == "copy")
    other = next(c for c in base.candidates if c.label == "other-family")
    return replace(
        base,
        candidates=(
            replace(copy, speed=(point(1, 20 * 0.94), point(8, 60 * 0.58))),
            replace(other, speed=(point(1, 20 * 0.31), point(8, 60 * 0.24))),
            replace(ngram(), speed=(point(1, 20 * 1.60), point(8, 60 * 1.06))),
        ),
        concurrency_levels=(1, 8),
        baseline=(point(1, 20.0), point(8, 60.0)),
    )


def test_request_timing_and_level_math() -> None:
    timing = RequestTiming(output_tokens=65, first_token_s=0.5, last_token_s=3.7)
    assert timing.time_per_output_token_s == pytest.approx(0.05)
    assert RequestTiming(1, 0.5, 0.5).time_per_output_token_s is None
    level = SpeedPoint.of(4, [timing, RequestTiming(33, 0.2, 1.8), RequestTiming(1, 0.1, 0.1)], wall_seconds=4.9)
    assert level.requests == 3 and level.output_tokens == 99
    assert level.tokens_per_second == pytest.approx(99 / 4.9)
    assert level.time_per_output_token_s == pytest.approx(0.05)  # the one-token request has no decode time
    assert SpeedPoint(1, 0, 0, 0.0, None).tokens_per_second is None


def test_measured_speedup_is_the_ratio_of_tokens_per_second_at_the_same_concurrency() -> None:
    assert measured_speedup(point(8, 34.8), point(8, 60.0)) == pytest.approx(0.58)
    assert measured_speedup(point(8, 34.8), None) is None
    assert measured_speedup(None, point(8, 60.0)) is None


def test_modelled_speedup_is_the_model_at_the_measured_depth() -> None:
    comparison = measured_comparison()
    copy, other, free = comparison.candidates
    assert copy.overall is not None and copy.cost_ratio is not None
    # The copy costs a full target step per draft token: 5 tokens for 1 + 4 steps of equal cost.
    assert modelled_speedup(copy, 4) == pytest.approx(speedup(copy.overall.per_position, 4, copy.cost_ratio))
    assert modelled_speedup(copy, 4) == pytest.approx(1.0, abs=0.01)
    # A model-free method costs nothing in the model: its speedup is the expected tokens per target step.
    assert free.overall is not None
    assert modelled_speedup(free, 4) == pytest.approx(1 + sum(free.overall.per_position))
    assert modelled_speedup(replace(other, overall=None), 4) is None


def test_speed_rows_put_speculation_off_first_with_measured_and_modelled_side_by_side() -> None:
    rows = speed_rows(measured_comparison())
    assert [(r.label, r.concurrency) for r in rows] == [
        ("speculation off", 1),
        ("speculation off", 8),
        ("copy", 1),
        ("copy", 8),
        ("other-family", 1),
        ("other-family", 8),
        ("ngram", 1),
        ("ngram", 8),
    ]
    by_key = {(r.label, r.concurrency): r for r in rows}
    assert by_key["speculation off", 8].measured == 1.0 and by_key["speculation off", 8].tokens_per_second == 60.0
    assert by_key["copy", 8].measured == pytest.approx(0.58)
    assert by_key["ngram", 1].measured == pytest.approx(1.60)
    assert by_key["ngram", 1].modelled == by_key["ngram", 8].modelled


def test_disagreement_rule() -> None:
    assert not disagrees(1.0, 1.1)
    assert disagrees(0.58, 1.9)  # far apart
    assert disagrees(0.93, 1.07)  # close, but one is slower and the other faster than no speculation
    assert not disagrees(0.97, 1.03)


def test_analysis_names_where_measurement_and_model_disagree_and_why() -> None:
    comparison = measured_comparison()
    lines = disagreement_lines(comparison)
    by_label = {line.split(":")[0]: line for line in lines}
    # n-gram: the model predicts E(4) ~ 3x for free proposals; measured 1.60x at 1 and 1.06x at 8.
    free = by_label["ngram"]
    assert "measured 1.60x at 1 and 1.06x at 8 concurrent while the model predicts" in free
    assert "not free under load" in free and "at 8 concurrent" in free
    assert "model-free proposal as free" in free
    # other-family: model ~0.5x (it accepts little and costs a third of the target), measured 0.31x and 0.24x.
    other = by_label["other-family"]
    assert "the draft costs more than its parameter share (0.34 of a target step" in other
    # The copy: the model says break-even, measured 0.94x alone (agrees) and 0.58x at 8 (disagrees): load.
    copy = by_label["copy"]
    assert "measured 0.58x at 8 concurrent" in copy and "0.94x" not in copy
    assert "verification of 4 draft tokens is not free under load" in copy
    summary = summary_lines(comparison)
    assert summary[0].startswith("Measured speedup against speculation off")
    assert "ngram 1.60x at 1, 1.06x at 8" in summary[0]
    assert "Where the measurement and the speedup model disagree:" in summary


def test_the_reason_is_taken_from_the_levels_that_disagree() -> None:
    # Measured on real vLLM (CPU, busy machine): the copy 0.86x at 1 (agrees with 1.00x) and 1.32x at 8 (above the
    # model's bound): the words must be about the level above the model, not about a draft that costs too much.
    comparison = measured_comparison()
    copy = replace(comparison.candidates[0], speed=(point(1, 20 * 0.86), point(8, 60 * 1.32)))
    (line,) = disagreement_lines(replace(comparison, candidates=(copy,)))
    assert line.startswith("copy: measured 1.32x at 8 concurrent while the model predicts 1.00x: ")
    assert "speculation off was measured while the machine was busier" in line
    assert "costs more than its parameter share" not in line and "not free under load" not in line


def test_agreement_and_a_missing_baseline_are_said_too() -> None:
    comparison = measured_comparison()
    copy = comparison.candidates[0]
    agreeing = replace(comparison, candidates=(replace(copy, speed=(point(1, 20.0), point(8, 60.0))),))
    assert disagreement_lines(agreeing) == []
    assert summary_lines(agreeing)[-1].startswith("The measured speedups agree with the model")
    broken = replace(comparison, baseline=(), baseline_error="ServerError: vLLM exited with status 1\nTraceback")
    assert summary_lines(broken) == [
        "Speed: speculation off could not be measured, so there is no measured speedup: "
        "ServerError: vLLM exited with status 1"
    ]
    assert summary_lines(replace(comparison, concurrency_levels=())) == []


def test_table_json_and_chart_carry_the_speed(tmp_path: Path) -> None:
    comparison = measured_comparison()
    table = render_table(comparison)
    assert "speedup (measured)  speedup (modelled)" in table
    copy_at_8 = next(line for line in table.splitlines() if line.startswith("copy") and "  8  " in line)
    assert "34.8" in copy_at_8 and "0.58x" in copy_at_8 and "1.00x" in copy_at_8
    assert "not free under load" in table
    data = to_json(comparison)
    assert data["concurrency_levels"] == [1, 8]
    assert [p["output_tokens_per_second"] for p in data["speculation_off"]["speed"]] == [20.0, 60.0]
    by_label = {c["label"]: c for c in data["candidates"]}
    assert by_label["ngram"]["method"] == "ngram"
    assert by_label["copy"]["speed"][1]["time_per_output_token_seconds"] == 0.05
    rows = {(r["label"], r["concurrency"]): r for r in data["speed"]}
    assert rows["copy", 8]["measured_speedup"] == pytest.approx(0.58)
    assert rows["copy", 8]["modelled_speedup"] == pytest.approx(by_label["copy"]["modelled_speedup"])
    assert [label for label, *_ in speedup_series(comparison)] == ["copy", "other-family", "ngram"]
    path = tmp_path / "chart.png"
    write_chart(comparison, path)
    chart = path.read_bytes()
    assert chart[:8] == b"\x89PNG\r\n\x1a\n"
    without = tmp_path / "acceptance-only.png"
    write_chart(tiny_comparison(), without)
    assert len(chart) > len(without.read_bytes())  # the second panel is drawn


def test_every_server_gets_the_same_contexts_at_every_level() -> None:
    k = 4
    settings = Settings(
        context_lengths=(64, 256), num_speculative_tokens=k, max_tokens=32, num_prompts=3, concurrency_levels=(1, 4)
    )
    draft = ScriptedEndpoint(k, {64: 0.9, 256: 0.5}, tokens_per_second={1: 20.0, 4: 40.0})
    off = ScriptedEndpoint(k, {}, tokens_per_second={1: 25.0, 4: 80.0})
    launcher = ScriptedLauncher({"large": draft, "speculation-off": off})
    candidate_, notes = measure_candidate(
        DraftSpec("large", "/m/large"),
        target="/m/target",
        target_arch=arch("/m/target"),
        draft_arch=arch("/m/large", params=2_625_000),
        check=model_free_verdict("x"),
        prompts=PROMPTS,
        settings=settings,
        launcher=launcher,
        log=lambda _: None,
    )
    baseline, error = measure_baseline(
        target="/m/target",
        target_arch=arch("/m/target"),
        prompts=PROMPTS,
        settings=settings,
        launcher=launcher,
        log=lambda _: None,
    )
    assert notes == [] and error is None
    assert launcher.calls[-1]["config"] == {} and launcher.calls[-1]["label"] == "speculation-off"
    # A warm-up request first (not counted), then max(prompts, level) requests per level, `level` in flight.
    assert [(len(p), c) for p, _, c in draft.timed] == [(1, 1), (3, 1), (4, 4)]
    assert draft.timed == off.timed
    assert all(len(ctx) == 64 and n == 32 for prompts, n, _ in draft.timed for ctx in prompts)
    assert speed_requests(16, settings) == 16 and speed_requests(1, settings) == 3
    fewer = replace(settings, speed_prompts=2)
    assert speed_requests(1, fewer) == 2 and speed_requests(4, fewer) == 4
    off.timed.clear()
    measure_baseline(
        target="/m/target", target_arch=arch("/m/target"), prompts=PROMPTS, settings=fewer, launcher=launcher, log=print
    )
    assert [(len(p), c) for p, _, c in off.timed] == [(1, 1), (2, 1), (4, 4)]
    assert len({tuple(ctx) for p, _, _ in off.timed for ctx in p}) == 2  # two distinct prompts, cycled
    assert [p.tokens_per_second for p in candidate_.speed] == pytest.approx([20.0, 40.0])
    assert [p.tokens_per_second for p in baseline] == pytest.approx([25.0, 80.0])
    assert candidate_.speed[1].time_per_output_token_s == pytest.approx(4 / 40.0)


def test_model_free_candidates_run_without_a_model_and_cost_nothing_in_the_model() -> None:
    spec = parse_model_free("ngram")
    assert spec == DraftSpec("ngram", "ngram", method="ngram")
    assert parse_model_free("lookup=suffix") == DraftSpec("lookup", "suffix", method="suffix")
    with pytest.raises(ValueError, match=r"--model-free .eagle.: expected .*ngram, ngram_gpu, suffix"):
        parse_model_free("eagle")
    endpoint = ScriptedEndpoint(4, {64: 0.5})
    launcher = ScriptedLauncher({"ngram": endpoint})
    got, _ = measure_candidate(
        spec,
        target="/m/target",
        target_arch=arch("/m/target"),
        draft_arch=model_free_architecture("ngram"),
        check=model_free_verdict("ngram"),
        prompts=PROMPTS,
        settings=Settings(context_lengths=(64,), max_tokens=16, num_prompts=2, concurrency_levels=(1,)),
        launcher=launcher,
        log=lambda _: None,
    )
    assert launcher.calls[0]["config"] == {"method": "ngram", "num_speculative_tokens": 4}
    assert got.cost_ratio == 0.0 and got.method == "ngram" and got.recommendation is None
    assert got.rate is not None and len(got.speed) == 1


def test_speed_needs_the_shortest_context_to_fit() -> None:
    endpoint = ScriptedEndpoint(4, {64: 0.8})
    launcher = ScriptedLauncher({"short": endpoint})
    settings = Settings(context_lengths=(64,), max_tokens=200, num_prompts=1, concurrency_levels=(1,))
    got, notes = measure_candidate(
        DraftSpec("short", "/m/short"),
        target="/m/target",
        target_arch=arch("/m/target"),
        draft_arch=arch("/m/short"),
        check=model_free_verdict("x"),
        prompts=PROMPTS,
        settings=replace(settings, context_lengths=(64, 2000)),
        launcher=launcher,
        log=lambda _: None,
    )
    # 64 + 200 + 10 fits the 1024 limit: measured; the 2000 bucket is skipped.
    assert len(got.speed) == 1 and not any("speed not measured" in n for n in notes)
    small = replace(arch("/m/target"), max_len=128)
    baseline, error = measure_baseline(
        target="/m/target", target_arch=small, prompts=PROMPTS, settings=settings, launcher=launcher, log=print
    )
    assert baseline == () and error == "context 64 + 200 generated tokens exceeds the maximum context 128"
    assert candidate("x", {64: 0.5}).speed == ()


def test_a_server_that_dies_at_start_up_is_reported_by_the_exception_in_its_log() -> None:
    # The tail of the real log of vLLM 0.32 (CPU) started with {"method": "suffix"} without arctic-inference.
    error = (
        "ServerError: vLLM exited with status 1 during start-up:\n"
        "(APIServer pid=1419) WARNING 12-07 02:33:06 [system_utils.py:255] Found ulimit of 20000\n"
        '  File ".../vllm/config/speculative.py", line 1598, in _validate_suffix_decoding\n'
        "    raise ImportError(\n"
        "ImportError: Arctic Inference is required for suffix decoding. Install via "
        "`pip install arctic-inference==0.1.1`.\n"
    )
    assert headline(error) == (
        "ServerError: vLLM exited with status 1 during start-up: ... ImportError: Arctic Inference is required for "
        "suffix decoding. Install via `pip install arctic-inference==0.1.1`."
    )
    assert headline("RuntimeError: boom") == "RuntimeError: boom"
    suffix = replace(ngram(), label="suffix", method="suffix", overall=None, error=error)
    lines = analysis(replace(measured_comparison(), candidates=(suffix,)))
    assert any(line.startswith("suffix: not measured: ") and "arctic-inference" in line for line in lines)

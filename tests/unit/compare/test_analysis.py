"""Ranking and the generated analysis, on synthetic measurements shaped like the tiny candidates."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.compare.synthetic import PASS_ALL, candidate, tiny_comparison

from specdeploy.compare.analysis import analysis, architecture_rows, factors, ranked
from specdeploy.compare.results import Verdict


def test_ranking_is_by_overall_acceptance_whatever_the_input_order() -> None:
    order = [c.label for c in ranked(tiny_comparison().candidates)]
    assert order == ["copy", "same-family-large", "same-family-small", "other-family"]


def test_unmeasured_candidates_rank_last_and_keep_their_order() -> None:
    comparison = tiny_comparison()
    broken = replace(comparison.candidates[2], overall=None, buckets=(), error="ServerError: vLLM exited with 1")
    order = ranked((broken, *comparison.candidates[:2]))
    assert [c.label for c in order] == ["same-family-small", "other-family", "copy"]


def test_equal_rates_are_broken_by_mean_accepted_length() -> None:
    a = candidate("a", {64: 0.5})
    b = candidate("b", {64: 0.5})
    longer = replace(b, overall=replace(b.overall, mean_accepted_length=3.5)) if b.overall else b
    assert [c.label for c in ranked((a, longer))] == ["b", "a"]


def test_family_explains_most_of_the_spread_when_the_other_family_is_far_behind() -> None:
    scored = factors(tiny_comparison())
    names = [f.name for f in scored]
    family = next(f for f in scored if f.name.startswith("same family"))
    assert family.share > 0.5
    # Every llama candidate beats the GPT-NeoX one, so the groups are reported as not overlapping.
    assert "do not overlap" in family.sentence
    assert "layers (within llama)" in names
    layers = next(f for f in scored if f.name.startswith("layers"))
    assert "rises" in layers.sentence
    assert "1 -> 0.40" in layers.sentence and "4 -> 1.00" in layers.sentence


def test_identical_shapes_give_no_factor() -> None:
    comparison = tiny_comparison()
    same = tuple(replace(c, architecture=comparison.target, cost_ratio=1.0) for c in comparison.candidates)
    assert factors(replace(comparison, candidates=same)) == []


def test_analysis_names_the_ranking_the_copy_without_speedup_and_a_flat_context() -> None:
    text = "\n".join(analysis(tiny_comparison()))
    assert "copy (1.00) > same-family-large (0.72) > same-family-small (0.40) > other-family (0.07)" in text
    assert "other-family, copy: no depth beats decoding without a draft" in text
    assert "(cost ratios other-family 0.34, copy 1.00)" in text
    assert "Best modelled speedup: same-family-" in text
    assert "every candidate stays within 0.05 from 64 to 256 tokens" in text
    assert "associations, not proofs" in text


def test_analysis_reports_a_context_length_effect() -> None:
    comparison = tiny_comparison()
    falling = candidate("long-context-weak", {64: 0.8, 256: 0.3})
    text = "\n".join(analysis(replace(comparison, candidates=(*comparison.candidates, falling))))
    assert "long-context-weak 0.80 -> 0.30 (64 -> 256 tokens)" in text


def test_analysis_repeats_the_validator_refusal_and_unmeasured_candidates() -> None:
    comparison = tiny_comparison()
    refused = Verdict(False, "failed: vocabulary", (("vocabulary", "fail"), *PASS_ALL[1:]))
    bad = replace(comparison.candidates[0], verdict=refused, overall=None, error="ServerError: vocab mismatch\nmore")
    text = "\n".join(analysis(replace(comparison, candidates=(bad, *comparison.candidates[1:]))))
    assert "The validator refuses other-family: failed: vocabulary." in text
    assert "other-family: not measured: ServerError: vocab mismatch" in text
    assert "more" not in text.split("not measured:")[1].split("\n")[0]


def test_architecture_rows_show_the_differences_side_by_side() -> None:
    rows = dict(architecture_rows(tiny_comparison()))
    # Target first, then the candidates best first: copy, large, small, other.
    assert rows["family (model_type)"] == ["llama", "llama", "llama", "llama", "gpt_neox"]
    assert rows["layers"] == ["4", "4", "3", "1", "2"]
    assert rows["hidden size"] == ["256", "256", "256", "256", "192"]
    assert rows["parameter ratio"] == ["1.00", "1.00", "0.77", "0.34", "0.34"]
    assert rows["vocabulary"] == ["(target)", "match", "match", "match", "match"]
    assert rows["parameters"][0] == "3.5M"


def test_vocabulary_mismatch_is_visible_in_the_table() -> None:
    comparison = tiny_comparison()
    refused = Verdict(False, "failed: vocabulary", (("vocabulary", "fail"),))
    odd = replace(comparison.candidates[0], verdict=refused)
    rows = dict(architecture_rows(replace(comparison, candidates=(odd,))))
    assert rows["vocabulary"] == ["(target)", "MISMATCH"]


def test_when_no_candidate_pays_off_the_analysis_says_so_once() -> None:
    comparison = tiny_comparison()
    slow = tuple(c for c in comparison.candidates if c.label in ("copy", "other-family"))
    lines = analysis(replace(comparison, candidates=slow))
    speed = [line for line in lines if "speedup model" in line]
    assert len(speed) == 1
    assert speed[0].startswith("No candidate beats decoding without a draft")

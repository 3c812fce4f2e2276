"""The terminal table, the JSON report and the chart, from one synthetic comparison."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tests.unit.compare.synthetic import tiny_comparison

from specdeploy.compare.plot import PlotError, series, write_chart
from specdeploy.compare.report import render_table, to_json
from specdeploy.compare.results import Bucket


def _rows(table: str) -> list[str]:
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def test_table_lists_candidates_best_first_with_their_numbers() -> None:
    text = render_table(tiny_comparison())
    rows = _rows(text)
    assert [row.split()[1] for row in rows] == ["copy", "same-family-large", "same-family-small", "other-family"]
    copy = rows[0].split()
    assert copy[:6] == ["1", "copy", "compatible", "1.000", "5.00", "1.000"]
    assert "ctx 64" in text and "ctx 256" in text
    assert "Architecture" in text and "family (model_type)" in text and "gpt_neox" in text
    assert "Analysis" in text and "Ranking by overall acceptance" in text


def test_table_shows_skipped_buckets_and_errors() -> None:
    comparison = tiny_comparison()
    other = comparison.candidates[0]
    failed = replace(
        other,
        overall=None,
        recommendation=None,
        error="ServerError: boom",
        buckets=(Bucket(64, 0, None, skipped="not measured"), Bucket(256, 0, None, skipped="too long")),
    )
    text = render_table(replace(comparison, candidates=(failed,), notes=("other-family: skipped because",)))
    row = _rows(text)[0].split()
    assert row[:4] == ["-", "other-family", "compatible", "error"]
    assert row.count("skipped") == 2
    assert "Notes" in text and "- other-family: skipped because" in text


def test_json_carries_the_same_numbers_and_the_ranking() -> None:
    comparison = tiny_comparison()
    data = json.loads(json.dumps(to_json(comparison)))
    assert data["ranking"] == ["copy", "same-family-large", "same-family-small", "other-family"]
    assert data["context_lengths"] == [64, 256]
    by_label = {c["label"]: c for c in data["candidates"]}
    large = next(c for c in comparison.candidates if c.label == "same-family-large")
    assert by_label["same-family-large"]["overall"]["acceptance_rate"] == pytest.approx(large.rate)
    assert [b["context_length"] for b in by_label["same-family-large"]["buckets"]] == [64, 256]
    assert by_label["copy"]["recommended_depth"]["worthwhile"] is False
    assert by_label["other-family"]["architecture"]["model_type"] == "gpt_neox"
    assert by_label["copy"]["verdict"]["checks"]["vocabulary"] == "pass"
    assert data["analysis"][0].startswith("Ranking by overall acceptance")


def test_chart_is_a_png_with_one_line_per_measured_candidate(tmp_path: Path) -> None:
    comparison = tiny_comparison()
    assert [label for label, _, _ in series(comparison)] == [
        "copy",
        "same-family-large",
        "same-family-small",
        "other-family",
    ]
    path = tmp_path / "chart.png"
    write_chart(comparison, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_chart_refuses_an_empty_comparison_and_names_an_unwritable_file(tmp_path: Path) -> None:
    comparison = tiny_comparison()
    empty = replace(comparison, candidates=tuple(replace(c, buckets=()) for c in comparison.candidates))
    with pytest.raises(PlotError, match="no candidate has a measured acceptance rate"):
        write_chart(empty, tmp_path / "x.png")
    with pytest.raises(PlotError, match=r"--plot .*missing-dir/x.png: cannot write"):
        write_chart(comparison, tmp_path / "missing-dir" / "x.png")

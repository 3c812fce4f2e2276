"""``specdeploy compare-drafts`` on real vLLM (CPU) with the generated candidates: the ranking must be right, and the
measured speed must be there beside the modelled one.

The candidates differ in known ways (the target's own weights; its first 3 layers; its first layer; another
architecture trained elsewhere), so the expected order is known: copy > same-family-large > same-family-small >
other-family. The command runs as a user runs it (the console entry point in a subprocess); the table, the JSON
report, the chart and the vLLM logs are kept under ``$SPECDEPLOY_E2E_OUT/compare-drafts`` (default /tmp).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from specdeploy.compare.speed import disagrees
from tests.harness.tinymodels import EXPECTED_ORDER, PROMPTS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def test_compare_drafts_ranks_the_generated_candidates(models: Path, vllm_python: Path, e2e_out: Path) -> None:
    out = e2e_out / "compare-drafts"
    out.mkdir(parents=True, exist_ok=True)
    for old in ("table.txt", "report.json", "chart.png"):
        (out / old).unlink(missing_ok=True)
    # Candidates in a scrambled order: the ranking must come from the measurements.
    order = ["same-family-small", "other-family", "copy", "same-family-large"]
    command = [
        sys.executable,
        "-m",
        "specdeploy.cli",
        "compare-drafts",
        "--target",
        str(models / "target"),
        *(arg for name in order for arg in ("--draft", f"{name}={models / name}")),
        "--prompts",
        str(models / PROMPTS),
        "--context-lengths",
        "64,256",
        "--num-prompts",
        "6",
        "--max-tokens",
        "48",
        "--num-speculative-tokens",
        "4",
        # Speed: speculation off plus every candidate at 1 and 4 in flight, on 2 distinct prompts (one more server).
        "--concurrency-levels",
        "1,4",
        "--speed-prompts",
        "2",
        "--vllm-python",
        str(vllm_python),
        "--plot",
        str(out / "chart.png"),
        "--report-file",
        str(out / "report.json"),
        "--log-dir",
        str(out / "logs"),
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=2300, check=False)
    elapsed = time.monotonic() - started
    (out / "table.txt").write_text(done.stdout)
    (out / "stderr.txt").write_text(done.stderr + f"\n[e2e] compare-drafts took {elapsed:.0f} s\n")
    assert done.returncode == 0, f"compare-drafts exited {done.returncode}:\n{done.stderr[-6000:]}"

    report = json.loads((out / "report.json").read_text())
    by_label = {c["label"]: c for c in report["candidates"]}
    rates = {label: c["overall"]["acceptance_rate"] for label, c in by_label.items()}
    assert report["ranking"] == list(EXPECTED_ORDER), f"acceptance rates: {rates}"
    # The copy drafts exactly what the target would generate, at every context length (a lower rate in the longest
    # bucket would mean drafts ran into the max-model-len limit: see compare.run's headroom).
    assert rates["copy"] > 0.98
    assert all(b["acceptance"]["acceptance_rate"] > 0.98 for b in by_label["copy"]["buckets"]), by_label["copy"]
    # Real differences, not noise: each step down the order loses acceptance clearly.
    for better, worse in itertools.pairwise(EXPECTED_ORDER):
        assert rates[better] - rates[worse] > 0.03, f"{better} vs {worse}: {rates}"
    for label, candidate in by_label.items():
        assert candidate["verdict"]["compatible"] is True, (label, candidate["verdict"])
        buckets = {b["context_length"]: b for b in candidate["buckets"]}
        assert sorted(buckets) == [64, 256]
        for length, bucket in buckets.items():
            assert bucket["skipped"] is None and bucket["prompts"] == 6, (label, length)
            assert bucket["acceptance"]["draft_tokens"] > 0, (label, length)
        positions = candidate["overall"]["per_position"]
        assert len(positions) == 4 and positions == sorted(positions, reverse=True), (label, positions)
        assert candidate["recommended_depth"] is not None
    # The copy costs as much as the target: the speedup model must not recommend it.
    assert by_label["copy"]["recommended_depth"]["worthwhile"] is False
    assert by_label["other-family"]["architecture"]["model_type"] == "gpt_neox"

    _assert_speed(report, done.stdout)

    table = done.stdout
    assert "family (model_type)" in table and "Analysis" in table
    assert "Ranking by overall acceptance: copy (" in table
    chart = (out / "chart.png").read_bytes()
    assert chart[:8] == b"\x89PNG\r\n\x1a\n"


def _assert_speed(report: dict[str, Any], table: str) -> None:
    """Measured speed for speculation off and every candidate at each level; the analysis names each disagreement."""
    assert report["concurrency_levels"] == [1, 4]
    off = report["speculation_off"]
    assert off["error"] is None
    points = [*off["speed"], *(p for c in report["candidates"] for p in c["speed"])]
    assert len(points) == 2 * (1 + len(report["candidates"]))
    for p in points:
        assert p["output_tokens_per_second"] > 0 and p["time_per_output_token_seconds"] > 0, p
        assert p["requests"] == max(2, p["concurrency"]) and p["output_tokens"] == p["requests"] * 48, p
    rows = {(r["label"], r["concurrency"]): r for r in report["speed"]}
    for c in report["candidates"]:
        for level in (1, 4):
            row = rows[c["label"], level]
            assert row["measured_speedup"] > 0 and row["modelled_speedup"] > 0, row
    # Every disagreement by the analysis' own rule is named in words with its numbers. (Which rows disagree is not
    # asserted: on a shared 2-core machine the load of other processes moves sub-second speed windows both ways;
    # one run on a busy machine measured the copy at 1.38x at 4 in flight, a quieter one 0.75x at 8.)
    analysis = "\n".join(report["analysis"])
    apart = [
        r
        for r in report["speed"]
        if r["label"] != "speculation off" and disagrees(r["measured_speedup"], r["modelled_speedup"])
    ]
    for r in apart:
        line = next((x for x in report["analysis"] if x.strip().startswith(f"- {r['label']}: measured")), "")
        assert f"{r['measured_speedup']:.2f}x at {r['concurrency']}" in line, (r, analysis)
        assert f"the model predicts {r['modelled_speedup']:.2f}x" in line, (r, analysis)
    if not apart:
        assert "agree with the model within a factor" in analysis, analysis
    assert "speedup (measured)" in table and "speedup (modelled)" in table

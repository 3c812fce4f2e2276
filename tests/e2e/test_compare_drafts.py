"""``specdeploy compare-drafts`` on real vLLM (CPU) with the generated candidates: the ranking must be right.

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

import pytest

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

    table = done.stdout
    assert "family (model_type)" in table and "Analysis" in table
    assert "Ranking by overall acceptance: copy (" in table
    chart = (out / "chart.png").read_bytes()
    assert chart[:8] == b"\x89PNG\r\n\x1a\n"

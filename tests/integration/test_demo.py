"""`make demo` tells its story end to end: a good draft becomes Ready and stable, a bad one is aborted as a canary
while the serving pod goes on (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "hack" / "demo.py"),
            "--no-wait",
            "--vllm",
            "scripted",
            "--dir",
            str(tmp_path / "cluster"),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["demo"] == "ok"
    assert result["canary"] == "Aborted" and result["serving_pods_unchanged"] is True, result
    assert "is stable" in out
    assert "aborted" in out and "never restarted: same UID" in out
    aborts = [line for line in out.splitlines() if line.strip().startswith("Warning") and "CanaryAborted" in line]
    assert len(aborts) == 1
    assert not [line for line in out.splitlines() if "RolledBack " in line and line.strip().startswith("Warning")]
    validated = [line for line in out.splitlines() if "ValidationSucceeded" in line]
    assert len(validated) == 2  # one per revision, no duplicates
    assert not (tmp_path / "cluster" / "state.json").exists()  # everything it started is stopped

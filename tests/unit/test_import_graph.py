"""The package layering holds: no import cycle among specdeploy's packages or modules (hack/import_graph.py).

Why: the pure core (api, render, validate, monitor, rollout) must be importable and testable without the shell, and
a cycle is where that starts to fail (a planner that imports what imports it cannot be split or reused).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "import_graph.py"


def test_specdeploy_has_no_import_cycle_and_the_core_does_not_import_the_shell() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout
    edges = {
        line.split("->")[0].strip(): {d.strip() for d in line.split("->")[1].split(",")}
        for line in out.stdout.splitlines()
        if "->" in line
    }
    shell = {"handlers", "kube", "tracker", "cli", "commands"}
    for core in ("api", "render", "validate", "monitor", "rollout", "conditions"):
        assert not edges[core] & shell, f"{core} imports the shell: {edges[core] & shell}"
    assert edges["validate"] == {"-"}, "the validator image carries nothing else of the operator"

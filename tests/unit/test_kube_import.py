"""Importing ``specdeploy.kube`` changes nothing about the process: the operator's process settings (malloc arenas)
and the client's thread pool come from ``specdeploy run`` and the first API call, not from an import that tests,
``specdeploy render`` and benchmarks also do."""

from __future__ import annotations

import subprocess
import sys


def test_importing_kube_starts_no_thread_pool_and_sets_nothing() -> None:
    probe = "import specdeploy.kube as k; print(k._executor is None, k._api is None)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "True"]

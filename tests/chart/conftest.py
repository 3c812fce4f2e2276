"""Fixtures for the Helm chart checks: find the real helm binary and render the chart with it.

The chart tests exist to prove what a user gets from `helm install`, so they run the real Helm that
hack/build-controlplane.sh builds. A missing helm is a failure with instructions, never a silent skip.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "specdeploy"
KUBE_VERSION = "1.36.3"
RELEASE = "sd"
RELEASE_NAMESPACE = "specdeploy-system"

Manifest = dict[str, Any]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chart: runs the real helm binary against charts/specdeploy")


def find_helm() -> str | None:
    """SPECDEPLOY_HELM, else the control-plane cache that hack/build-controlplane.sh fills."""
    explicit = os.environ.get("SPECDEPLOY_HELM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    cache = os.environ.get("SPECDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specdeploy"
    )
    found = sorted(glob.glob(os.path.join(cache, "controlplane", "*", "bin", "helm")))
    return found[-1] if found else None


@pytest.fixture(scope="session")
def helm_bin() -> str:
    path = find_helm()
    if path is None:
        pytest.fail(
            "helm binary not found: set SPECDEPLOY_HELM to a helm v4 binary, or run hack/build-controlplane.sh "
            "which builds one into ~/.cache/specdeploy/controlplane/<versions>/bin/helm",
            pytrace=False,
        )
    return path


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)


Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def render(helm_bin: str) -> Render:
    """helm template with the given values files (relative to the chart) and --set pairs; cached per input."""
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Manifest]] = {}

    def _render(*values_files: str, sets: tuple[str, ...] = ()) -> list[Manifest]:
        key = (values_files, sets)
        if key not in cache:
            args = ["template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--kube-version", KUBE_VERSION]
            for f in values_files:
                args += ["-f", str(CHART / f)]
            for s in sets:
                args += ["--set", s]
            done = run_helm(helm_bin, *args)
            assert done.returncode == 0, f"helm template {values_files} {sets} failed:\n{done.stderr}"
            cache[key] = [d for d in yaml.safe_load_all(done.stdout) if d]
        return cache[key]

    return _render

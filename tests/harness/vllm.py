"""Real vLLM (the CPU build) for the e2e tier: the cached install, the tiny models, and servers started from an argv.

Why: the e2e tier runs vLLM itself, with exactly the command line the operator renders into a pod, on the pod's
loopback IP. This module turns that argv into one that runs here (model ids mapped to generated folders, the
CPU-only options the reference notes found necessary, no GPU tensor parallelism) and starts it with
``specdeploy.compare.server.VllmServer`` (the same process handling ``compare-drafts`` uses: process group,
``/health`` wait, SIGTERM then SIGKILL). Installing is ``hack/vllm/install.sh``'s job: when it fails, callers must
fail the test with :class:`VllmUnavailableError`'s message, never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import weakref
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import ClassVar

from specdeploy.compare.launch import CPU_ENV, CPU_FLAGS, CPU_OPTIONS, OFFLINE_ENV
from specdeploy.compare.server import VLLM_MODULE, ServerError, VllmServer, running

__all__ = [
    "CPU_ENV",
    "ServerError",
    "VllmServer",
    "VllmUnavailableError",
    "cpu_argv",
    "install",
    "running",
    "server_from_argv",
    "tiny_models",
]

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "hack" / "vllm" / "install.sh"
#: vLLM 0.32's `serve` options, captured from the real parser: which options take a value.
OPTIONS_FILE = REPO / "tests" / "fixtures" / "vllm" / "vllm-0.32-serve-options.json"
#: Longest sequence a CPU server gets (the notes' working value; the tiny models support 1024).
CPU_MAX_MODEL_LEN = 1024
#: Options replaced whatever the pod says: the CPU build's (float32, a small RAM share), and a single process.
CPU_OVERRIDES: Mapping[str, str] = {**CPU_OPTIONS, "--tensor-parallel-size": "1"}


class VllmUnavailableError(RuntimeError):
    """vLLM could not be installed or the tiny models could not be generated; the message says why."""


def install(timeout_s: float = 3600.0) -> Path:
    """Run ``hack/vllm/install.sh`` (a no-op when cached) and return the vLLM venv's Python."""
    try:
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise VllmUnavailableError(f"{INSTALL_SCRIPT} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        raise VllmUnavailableError(
            f"vLLM (CPU build) could not be installed: {INSTALL_SCRIPT} exited with {done.returncode}:\n"
            f"{done.stderr[-4000:]}"
        )
    venv = Path(done.stdout.strip().splitlines()[-1])
    python = venv / "bin" / "python"
    if not python.exists():
        raise VllmUnavailableError(f"{INSTALL_SCRIPT} printed {venv}, which has no bin/python")
    return python


def tiny_models(python: Path, timeout_s: float = 1800.0) -> Path:
    """Generate (or find cached) the tiny target and draft candidates with the vLLM venv's Python; their folder."""
    try:
        done = subprocess.run(
            [str(python), "-m", "tests.harness.tinymodels"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    except subprocess.TimeoutExpired:
        raise VllmUnavailableError(f"generating the tiny models took longer than {timeout_s:g} s") from None
    if done.returncode != 0:
        raise VllmUnavailableError(f"generating the tiny models failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def _module_args(argv: Sequence[str]) -> list[str]:
    """The options after ``-m vllm.entrypoints.openai.api_server`` (or after ``vllm serve MODEL``)."""
    items = list(argv)
    if VLLM_MODULE in items:
        return items[items.index(VLLM_MODULE) + 1 :]
    if len(items) >= 3 and items[1] == "serve":  # `vllm serve MODEL ...`
        return ["--model", items[2], *items[3:]]
    raise ValueError(f"not a vLLM server command line: {' '.join(items)[:200]}")


def cpu_argv(argv: Sequence[str], model_map: Mapping[str, str], *, max_model_len: int = CPU_MAX_MODEL_LEN) -> list[str]:
    """The pod's vLLM argv as it must run on this machine's CPU.

    Model ids (``--model`` and the ``--speculative-config`` JSON's ``model``) are mapped through ``model_map`` (an
    unmapped id is an error: this machine downloads nothing); ``CPU_OVERRIDES`` replace the pod's values;
    ``--max-model-len`` is capped at ``max_model_len``; ``--enforce-eager`` is added (start-up time; acceptance does
    not depend on it). Everything else is kept as the operator rendered it.
    Host and port are the server's business (``VllmServer`` sets them).
    """
    args = _module_args(argv)
    takes_value = _takes_value()
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name not in takes_value:
            raise ValueError(f"{name}: not an option of vLLM 0.32's server (see {OPTIONS_FILE.name})")
        needs = takes_value[name] and not eq
        if needs and i + 1 >= len(args):
            raise ValueError(f"{name} needs a value")
        value = inline if eq else (args[i + 1] if needs else None)
        i += 2 if needs else 1
        if name == "--model" and value is not None:
            value = _mapped(value, model_map, "--model")
        elif name == "--speculative-config" and value is not None:
            config = json.loads(value)
            if isinstance(config, dict) and isinstance(config.get("model"), str):
                config["model"] = _mapped(config["model"], model_map, "--speculative-config model")
            value = json.dumps(config, separators=(",", ":"))
        elif name in CPU_OVERRIDES:
            value = CPU_OVERRIDES[name]
        elif name == "--max-model-len" and value is not None:
            value = str(min(int(value), max_model_len))
        seen.add(name)
        out += [name, value] if value is not None else [name]
    for name, value in CPU_OVERRIDES.items():
        if name not in seen:
            out += [name, value]
    out += [flag for flag in CPU_FLAGS if flag not in seen]
    if "--max-model-len" not in seen:
        out += ["--max-model-len", str(max_model_len)]
    return out


@cache
def _takes_value() -> dict[str, bool]:
    options = json.loads(OPTIONS_FILE.read_text(encoding="utf-8"))["options"]
    return {name: bool(info["takes_value"]) for name, info in options.items()}


def _mapped(model: str, model_map: Mapping[str, str], where: str) -> str:
    if model in model_map:
        return model_map[model]
    if os.path.isdir(model):
        return model
    raise KeyError(f"{where} {model!r} has no generated folder (known: {', '.join(sorted(model_map))})")


class PodVllmServer(VllmServer):
    """A vLLM server standing in for a pod, run at a lower CPU priority (``nice``).

    On a real cluster a pod has its own GPU node; here it shares two cores with the control plane, the operator
    and the test. vLLM already binds its compute thread to one core; the lower priority keeps the API server and
    kubectl answering promptly while it serves traffic.
    """

    NICENESS = 10
    #: The servers of this process started and not yet stopped: which core each one's OpenMP threads are bound to.
    _live: ClassVar[weakref.WeakSet[PodVllmServer]] = weakref.WeakSet()
    _choosing: ClassVar[threading.Lock] = threading.Lock()  # the fleet starts servers from its watch threads

    @property
    def argv(self) -> list[str]:
        return ["nice", "-n", str(self.NICENESS), *super().argv]

    def start(self) -> VllmServer:
        """Bind this server's OpenMP threads to the core the fewest live servers use, then start it.

        vLLM's automatic binding puts every server's worker on the same core (it reserves the other for its front
        end), and a fixed rotation lands a canary on the serving server's core as soon as an odd number of servers
        came before it: a canary's vLLM loading beside a serving one that a client keeps busy starved on that core
        for more than 10 minutes (seen in CI, then with the rotation). Counting the live servers keeps them apart.
        """
        with self._choosing:
            self.env["VLLM_CPU_OMP_THREADS_BIND"] = str(least_used_core([s.core for s in self._live if s.running()]))
            super().start()
            self._live.add(self)
        return self

    @property
    def core(self) -> int | None:
        bind = self.env.get("VLLM_CPU_OMP_THREADS_BIND", "")
        return int(bind) if bind.isdigit() else None


def least_used_core(in_use: Sequence[int | None], cores: Sequence[int] | None = None) -> int:
    """Of ``cores`` (default: the CPUs this process may run on), the one the fewest of ``in_use`` are bound to (the
    lowest on a tie)."""
    choices = sorted(cores if cores is not None else os.sched_getaffinity(0)) or [0]
    return min(choices, key=lambda core: (sum(1 for c in in_use if c == core), core))


def server_from_argv(
    python: Path,
    argv: Sequence[str],
    model_map: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: Path | None = None,
) -> VllmServer:
    """A (not yet started) CPU vLLM server for a pod's argv, listening on ``host:port``; its OpenMP threads go to the
    core the fewest live servers use (``PodVllmServer.start``)."""
    env = {**CPU_ENV, **OFFLINE_ENV}
    return PodVllmServer(str(python), cpu_argv(argv, model_map), host=host, port=port, env=env, log_path=log_path)

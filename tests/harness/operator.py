"""Run the operator as a local process (``specdeploy run``), the way a user or the chart's Deployment would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.localcluster import free_port


@dataclass
class OperatorProcess:
    kubeconfig: Path
    namespaces: list[str]
    log_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    liveness_port: int = 0
    metrics_port: int = 0
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self, wait: bool = True) -> None:
        self.starts += 1
        self.liveness_port, self.metrics_port = free_port(), free_port()
        scope = [a for ns in self.namespaces for a in ("-n", ns)] if self.namespaces else ["-A"]
        argv = [
            sys.executable,
            "-m",
            "specdeploy.cli",
            "run",
            *scope,
            f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
            f"--metrics-port={self.metrics_port}",
            "--metrics-address=127.0.0.1",
            "--verbose",
            *self.extra_args,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if wait:
            self.wait_live()

    def wait_live(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"operator not live after {timeout} s:\n{self.logs()[-4000:]}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the operator was never started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self, downtime: float = 0.0, wait: bool = True) -> None:
        """SIGKILL, stay down ``downtime`` seconds, start again (a crash and the kubelet's restart)."""
        self.kill()
        if downtime > 0:
            time.sleep(downtime)
        self.start(wait=wait)

    def log_mark(self) -> tuple[int, int]:
        """A point in the logs (which run, how many bytes), for :meth:`logs_since`."""
        return self.starts, self.log_path.stat().st_size if self.log_path.exists() else 0

    def logs_since(self, mark: tuple[int, int]) -> str:
        """What every run wrote after ``mark``."""
        start, offset = mark
        out = []
        for run in range(max(start, 1), self.starts + 1):
            path = self.log_dir / f"operator-{run}.log"
            if path.exists():
                data = path.read_bytes()
                out.append(data[offset if run == start else 0 :].decode(errors="replace"))
        return "".join(out)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash or an OOM kill."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait: kopf's clean shutdown."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

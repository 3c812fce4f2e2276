"""A kubelet stand-in for the validation Job's pods: runs the pod's own command and args as a local process and
writes the exit code and termination message back into the pod status, as a kubelet would.

kwok runs no containers. For the pods whose behaviour matters to the test (the validator), this runner executes
exactly the command the operator rendered — ``command`` + ``args`` from the pod spec, with ``$(VAR)``
references expanded from the container's env like the kubelet does, secretKeyRef values resolved from the real
Secret — and reports what happened. The one translation: the container's termination-message path
(``/dev/termination-log``) is mapped to a temporary file, whose content becomes ``state.terminated.message``
(truncated to 4096 bytes, the kubelet's limit).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, config

SELECTOR = "app.kubernetes.io/component=validator"
TERMINATION_LIMIT = 4096


def expand(value: str, env: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion of command and args, rule for rule.

    ``$$`` is one ``$``; ``$(NAME)`` is NAME's value when the container defines it and stays as written when not;
    an unterminated ``$(`` and a ``$`` before anything else stay as written.
    """
    out = []
    i = 0
    while i < len(value):
        if value[i] != "$" or i + 1 == len(value):
            out.append(value[i])
            i += 1
        elif value[i + 1] == "$":
            out.append("$")
            i += 2
        elif value[i + 1] == "(" and (close := value.find(")", i + 2)) != -1:
            name = value[i + 2 : close]
            out.append(env.get(name, value[i : close + 1]))
            i = close + 1
        else:
            out.append(value[i : i + 2])
            i += 2
    return "".join(out)


class PodRunner:
    """Poll for Running validator pods on the local cluster and run each one once."""

    def __init__(self, kubeconfig: Path, extra_env: Mapping[str, str] | None = None, interval: float = 0.3) -> None:
        self.api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        self.extra_env = dict(extra_env or {})
        self.interval = interval
        self.done: set[str] = set()
        self.runs: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="podrunner", daemon=True)

    def start(self) -> PodRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.api.list_pod_for_all_namespaces(label_selector=SELECTOR).items
            except Exception:
                self._stop.wait(1)
                continue
            for pod in pods:
                uid = pod.metadata.uid
                if uid in self.done or pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
                    continue
                self.done.add(uid)
                try:
                    self.run_pod(pod)
                except Exception as e:
                    self._finish(pod, 128, f"podrunner could not run the container: {e}")
            self._stop.wait(self.interval)

    def _env(self, namespace: str, container: Any) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in container.env or []:
            if item.value is not None:
                env[item.name] = expand(item.value, env)
            elif item.value_from is not None and item.value_from.secret_key_ref is not None:
                ref = item.value_from.secret_key_ref
                secret = self.api.read_namespaced_secret(ref.name, namespace)
                env[item.name] = base64.b64decode(secret.data[ref.key]).decode()
        return env

    def run_pod(self, pod: Any) -> None:
        container = pod.spec.containers[0]
        env = self._env(pod.metadata.namespace, container)
        argv = [expand(a, env) for a in (container.command or []) + (container.args or [])]
        term_path = container.termination_message_path or "/dev/termination-log"
        workdir = Path(tempfile.mkdtemp(prefix="podrunner-"))
        term_file = workdir / "termination-log"
        argv = [str(term_file) if a == term_path else a for a in argv]
        # The container image's PATH holds `specdeploy`; here it is the venv that runs the tests.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        exe = shutil.which(argv[0], path=path) if argv else None
        if exe is None:
            self._finish(pod, 127, f"executable {argv[:1]} not found on PATH")
            return
        proc_env = {"PATH": path, "HOME": str(workdir), **env, **self.extra_env}
        deadline = pod.spec.active_deadline_seconds or 600
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                env=proc_env,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=deadline,
                check=False,
            )
            code, logs = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            code, logs = 137, "deadline exceeded"
        message = term_file.read_text(errors="replace") if term_file.exists() else ""
        if not message and code != 0 and container.termination_message_policy == "FallbackToLogsOnError":
            message = logs[-2048:]
        self.runs.append({"pod": pod.metadata.name, "argv": argv, "exit": code, "message": message, "logs": logs})
        shutil.rmtree(workdir, ignore_errors=True)
        self._finish(pod, code, message)

    def _finish(self, pod: Any, code: int, message: str) -> None:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        container = pod.spec.containers[0]
        status = {
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"},
                ],
                "containerStatuses": [
                    {
                        "name": container.name,
                        "image": container.image,
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if code == 0 else "Error",
                                "message": message.encode()[:TERMINATION_LIMIT].decode(errors="ignore"),
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                ],
            }
        }
        self.api.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, status)

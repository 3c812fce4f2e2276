"""Small helpers to drive the real kubectl and wait for conditions, shared by integration tests and the demo."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def apply(
        self, obj: dict[str, Any] | list[dict[str, Any]] | str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        text = obj if isinstance(obj, str) else yaml.safe_dump_all(obj if isinstance(obj, list) else [obj])
        return self.run("apply", "-f", "-", *extra, stdin=text, check=check)

    def get(self, kind: str, name: str | None = None, namespace: str | None = None, selector: str | None = None) -> Any:
        args = ["get", kind]
        if name:
            args.append(name)
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        proc = self._read(args)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        return json.loads(proc.stdout)

    def _read(self, args: list[str], tries: int = 3, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A read, tried again when kubectl hangs (seen once in CI under a real vLLM load; reads are idempotent).

        Retries run with ``-v=6`` so that, should every try hang, the failure shows which request stalled.
        """
        hung: list[str] = []
        for attempt in range(tries):
            extra = ["-v=6"] if attempt else []
            try:
                return self.run(*args, "-o", "json", *extra, check=False, timeout=timeout)
            except subprocess.TimeoutExpired as err:
                stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
                hung.append(f"try {attempt + 1}: no answer in {timeout:.0f} s; stderr tail:\n{stderr[-2000:]}")
        raise AssertionError(f"kubectl {' '.join(args)} hung {tries} times:\n" + "\n".join(hung))

    def wait_established(self, crd: str, timeout: float = 60) -> None:
        """Until the CustomResourceDefinition ``crd`` says Established.

        Not ``kubectl wait --for=condition=Established``: right after the create, before the API server has written
        the CRD's first status, that fails at once (".status.conditions accessor error: <nil>") instead of waiting;
        seen on a large CRD under load.
        """

        def established() -> bool:
            got = self.get("crd", crd) or {}
            conditions = (got.get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

        wait_for(f"CRD {crd} to be Established", established, timeout=timeout, interval=0.2)

    def items(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict[str, Any]]:
        got = self.get(kind, namespace=namespace, selector=selector)
        return list(got["items"]) if got else []

    def deployments(self, name: str, namespace: str) -> list[dict[str, Any]]:
        """The vLLM Deployments of SpeculativeDeployment ``name``: one per revision (issue 13)."""
        return self.items("deployments", namespace, f"specdeploy.io/name={name},app.kubernetes.io/component=server")

    def deployment(self, name: str, namespace: str, revision: str | None = None) -> Any:
        """The Deployment of ``name`` that runs ``revision`` (any: the one with the most ready pods), or None."""
        found = [
            d
            for d in self.deployments(name, namespace)
            if revision is None or d["spec"]["template"]["metadata"]["labels"].get("specdeploy.io/revision") == revision
        ]
        if not found:
            return None
        return max(found, key=lambda d: (int((d.get("status") or {}).get("readyReplicas") or 0), d["metadata"]["name"]))


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60, interval: float = 0.25) -> T:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")

"""SpeculativeDeployments as the cluster tests write and read them: the object around a spec, its status, a condition.

Each test keeps its own spec (what it is about); only the envelope and the reading are shared, so that a change to
the API version or to how status is read is made once.
"""

from __future__ import annotations

from typing import Any

from specdeploy.api.constants import GROUP, KIND, VERSION
from tests.harness.kubectl import Kubectl


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A SpeculativeDeployment named ``name`` with ``spec``, ready for ``kubectl apply``."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def sd_status(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any]:
    """The object's status as the API server has it now; empty when the object or its status is not there."""
    return dict((kubectl.get("sd", name, namespace) or {}).get("status") or {})


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of that type in ``status``; empty when there is none yet."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})

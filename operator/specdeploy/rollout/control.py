"""The control group's Deployment in the plan (issue 14 item 2): wanted beside what serves, or deleted.

Kept apart from the revisions' Deployments: ``rollout.canary.lives`` skips it (it runs no revision of the spec, and
must never be taken for the incumbent nor deleted as an old revision), and the Ready condition counts only the
speculative pods; the READY column (``status.ready``) counts the control pods too, as the issue pins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.control import is_control, render_control_deployment
from specdeploy.render.meta import OwnerRef
from specdeploy.rollout import progress


def is_control_deployment(deployment: Mapping[str, Any]) -> bool:
    return is_control((deployment.get("metadata") or {}).get("labels"))


@dataclass(frozen=True)
class ControlChild:
    """The control Deployment to hold (None: none wanted), the one to delete, and its pods for READY."""

    deployment: dict[str, Any] | None = None
    delete: str | None = None
    ready: int = 0
    replicas: int = 0


def control_child(
    name: str,
    namespace: str,
    serving_spec: SpeculativeDeploymentSpec | None,
    serving_id: str | None,
    observed: Sequence[Mapping[str, Any]],
    *,
    owner: OwnerRef | None,
) -> ControlChild:
    """The control Deployment for what serves (``serving_spec``, rendered for ``serving_id``), from the observed
    Deployments: none while nothing serves or what serves runs without speculation."""
    existing = next((d for d in observed if is_control_deployment(d)), None)
    wanted = None
    if serving_spec is not None and serving_id is not None:
        wanted = render_control_deployment(name, namespace, serving_spec, serving_id, owner=owner)
    if wanted is None:
        gone = str(existing["metadata"]["name"]) if existing is not None else None
        return ControlChild(delete=gone)
    ready = progress.ready_replicas(existing) if existing is not None else 0
    return ControlChild(deployment=wanted, ready=ready, replicas=int(wanted["spec"]["replicas"]))

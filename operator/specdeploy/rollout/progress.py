"""How far the workload has rolled out a serving revision: the one definition of "fully ready" and "rolled out".

The planner's Ready condition needs *rolled out* (every pod runs the revision, is ready, and the old ones are
gone, as the Deployment controller has observed the latest template); the tracker starts the warm-up clock at
*fully ready* (every wanted pod runs the revision and is ready), which rolled out builds on.

The workload is a Deployment or a LeaderWorkerSet (``render.workload``). Both keep ``replicas``,
``readyReplicas``, ``updatedReplicas`` and ``observedGeneration`` in their status under the same names; for a
LeaderWorkerSet they count groups (a group is ready only when all its pods are), so every count here is of
replicas as the user asked for them, pods or groups. Only where the pod template lives differs: the leader's
template carries the revision label of a LeaderWorkerSet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from specdeploy.render import labels as lbl
from specdeploy.render.leaderworkerset import KIND as LWS_KIND


def _status(deployment: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (deployment or {}).get("status") or {}


def template_revision(deployment: Mapping[str, Any] | None) -> str | None:
    """The serving id the workload's pod template runs (its revision label; a LeaderWorkerSet's leader's), if any."""
    if not deployment:
        return None
    spec = deployment.get("spec") or {}
    if deployment.get("kind") == LWS_KIND:
        template = ((spec.get("leaderWorkerTemplate") or {}).get("leaderTemplate")) or {}
    else:
        template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    value = labels.get(lbl.SD_REVISION)
    return str(value) if value else None


def for_revision(deployments: Sequence[Mapping[str, Any]], serving_id: str | None) -> Mapping[str, Any] | None:
    """The Deployment whose template runs ``serving_id`` (one per revision, issue 13), the most ready if several."""
    mine = [d for d in deployments if serving_id and template_revision(d) == serving_id]
    return max(mine, key=ready_replicas) if mine else None


def ready_replicas(deployment: Mapping[str, Any] | None) -> int:
    return int(_status(deployment).get("readyReplicas") or 0)


def fully_ready(deployment: Mapping[str, Any] | None, serving_id: str, replicas: int) -> bool:
    """The template runs ``serving_id`` and ``replicas`` pods of it are updated and ready."""
    status = _status(deployment)
    return (
        template_revision(deployment) == serving_id
        and int(status.get("updatedReplicas") or 0) >= replicas
        and ready_replicas(deployment) >= replicas
    )


def rolled_out(deployment: Mapping[str, Any] | None, serving_id: str, replicas: int) -> bool:
    """Fully ready, the controller has seen the latest template, and exactly ``replicas`` pods exist (none old)."""
    if not deployment:
        return False
    status = _status(deployment)
    observed = int(status.get("observedGeneration") or 0) >= int(deployment.get("metadata", {}).get("generation") or 0)
    return observed and fully_ready(deployment, serving_id, replicas) and int(status.get("replicas") or 0) == replicas

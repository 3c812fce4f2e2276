"""The live workloads of one object, whatever their kind: which one serves now, which to hold, which to retire.

A revision is served by a Deployment or by a LeaderWorkerSet (``render.workload.workload_kind``), and an object's
revisions may differ in kind (a rollback from a 2-node revision to a 1-node one). The planner renders the
workload of the serving revision's kind; this module pairs it with the live object of the same kind and names
the live workloads of the other kind, which are retired by scaling them to zero replicas: their pods hold the
GPUs the new workload needs (as a Deployment's maxSurge 0 rollout does, the old pods stop before the new ones
start), and the object itself stays until the SpeculativeDeployment is deleted (garbage collector), so the
operator needs no delete permission on either kind.

A multi-node spec is refused, with reason ``LeaderWorkerSetDisabled``, when the operator runs without
LeaderWorkerSet support (``specdeploy run --leaderworkerset``): without it the replica would be a Deployment
pod asking for more GPUs than any node has, Pending forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.workload import workload_kind

LWS_DISABLED: Final = "LeaderWorkerSetDisabled"


@dataclass(frozen=True)
class Workloads:
    """The object's live Deployment and LeaderWorkerSet as the indexes show them (either may be absent)."""

    deployment: Mapping[str, Any] | None
    leaderworkerset: Mapping[str, Any] | None

    def of_kind(self, kind: str | None) -> Mapping[str, Any] | None:
        """The live workload of ``kind`` (None for another kind or when there is none)."""
        if kind == "Deployment":
            return self.deployment
        if kind == "LeaderWorkerSet":
            return self.leaderworkerset
        return None

    def live(self) -> Mapping[str, Any] | None:
        """The workload that serves now: of those not retired (replicas above 0), the one with most ready replicas
        (both exist only between a change of kind and the retirement of the old one); else any."""
        present = [w for w in (self.deployment, self.leaderworkerset) if w is not None]
        running = [w for w in present if _replicas(w) > 0]
        if not running:
            return present[0] if present else None
        return max(running, key=lambda w: int(((w.get("status") or {}).get("readyReplicas")) or 0))

    def to_retire(self, serving_kind: str | None) -> list[tuple[str, str]]:
        """``(kind, name)`` of each live workload not of ``serving_kind`` that still asks for replicas.

        None (nothing serves, e.g. a held first revision) retires nothing: whatever runs keeps running."""
        if serving_kind is None:
            return []
        out = []
        for kind, live in (("Deployment", self.deployment), ("LeaderWorkerSet", self.leaderworkerset)):
            if kind != serving_kind and live is not None and _replicas(live) > 0:
                out.append((kind, str((live.get("metadata") or {}).get("name"))))
        return out


def _replicas(workload: Mapping[str, Any]) -> int:
    value = (workload.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) else 1


def retire_patch() -> dict[str, Any]:
    """The merge patch that retires a workload: no replicas (its pods stop, the object stays)."""
    return {"spec": {"replicas": 0}}


def disabled_message(spec: SpeculativeDeploymentSpec) -> str | None:
    """Why ``spec`` cannot be served by an operator without LeaderWorkerSet support; None when it can."""
    if workload_kind(spec) != "LeaderWorkerSet":
        return None
    return (
        f"spec.target.tensorParallelSize x pipelineParallelSize ({spec.target.gpus_per_replica} GPUs per replica) "
        f"exceeds spec.serving.gpusPerNode ({spec.serving.gpus_per_node_or_default}), so a replica must be a "
        "LeaderWorkerSet group, and this operator runs without LeaderWorkerSet support: install the LWS "
        "controller and enable it (chart value leaderWorkerSet.enabled=true; specdeploy run --leaderworkerset)"
    )

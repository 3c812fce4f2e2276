"""Whether the operator can serve a spec's workload kind: a multi-node spec needs LeaderWorkerSet support.

A revision is served by a Deployment or by a LeaderWorkerSet (``render.workload.workload_kind``); the rest of the
plan treats both alike (one workload per revision, issue 13: ``rollout.canary`` reads them by name, template
revision and ready replicas, which ``rollout.progress`` reads from either kind).

A multi-node spec is refused, with reason ``LeaderWorkerSetDisabled``, when the operator runs without
LeaderWorkerSet support (``specdeploy run --leaderworkerset``): without it the replica would be a Deployment
pod asking for more GPUs than any node has, Pending forever.
"""

from __future__ import annotations

from typing import Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.workload import workload_kind

LWS_DISABLED: Final = "LeaderWorkerSetDisabled"


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

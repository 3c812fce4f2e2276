"""The workload of a revision: a Deployment, or a LeaderWorkerSet when one replica does not fit one node.

Everything else the operator does with a revision's pods (its progress, its stalls, its Service, budget and pool,
the acceptance monitor) is written against what both kinds share, so the choice between them is made here, once,
by one pure function of the spec: ``workload_kind``. A revision keeps its kind for life (the kind follows from
``tensorParallelSize x pipelineParallelSize`` and ``gpusPerNode``, which are part of the revision), so two
revisions of one object may be of different kinds, and the planner retires the workload of the kind no longer
served (``rollout.workloads``).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.deployment import render_deployment
from specdeploy.render.leaderworkerset import KIND as LWS_KIND
from specdeploy.render.leaderworkerset import is_multi_node, render_leaderworkerset

DEPLOYMENT: Final = "Deployment"
LEADER_WORKER_SET: Final = LWS_KIND
WorkloadKind = Literal["Deployment", "LeaderWorkerSet"]
KINDS: Final[tuple[WorkloadKind, ...]] = ("Deployment", "LeaderWorkerSet")


def workload_kind(spec: SpeculativeDeploymentSpec) -> WorkloadKind:
    """``LeaderWorkerSet`` when a replica needs more GPUs than ``spec.serving.gpusPerNode``, else ``Deployment``."""
    return "LeaderWorkerSet" if is_multi_node(spec) else "Deployment"


def render_workload(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, revision: str, **options: Any
) -> dict[str, Any]:
    """The Deployment or LeaderWorkerSet manifest that serves ``revision`` of ``spec``. ``options`` are those both
    renderers take (``render_deployment``): ``owner`` (required), ``speculation_enabled``, ``replicas`` (default
    ``spec.replicas``: pods, or groups of pods) and ``existing`` (the live workload of this revision, whose name is
    kept)."""
    render = render_leaderworkerset if workload_kind(spec) == "LeaderWorkerSet" else render_deployment
    return render(name, namespace, spec, revision, **options)

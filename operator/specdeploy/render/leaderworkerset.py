"""The LeaderWorkerSet of a multi-node revision: one replica is a group of pods that serve one vLLM engine.

A replica needs ``tensorParallelSize x pipelineParallelSize`` GPUs; when that exceeds ``spec.serving.gpusPerNode``
it cannot be one pod, and becomes a LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) group of
``TP x PP / gpusPerNode`` pods, each asking for ``gpusPerNode`` GPUs. The LWS controller creates, schedules,
restarts and updates a group together.

Choices a reader may question, and why:
- vLLM's own multi-node launcher, not Ray: vLLM 0.32's ``vllm serve`` runs one engine across nodes with
  ``--nnodes N --node-rank R --master-addr LEADER`` (torch.distributed at ``tcp://LEADER:29501``), the workers
  with ``--headless``. ``--headless`` is acted on only by the ``vllm serve`` subcommand
  (``vllm/entrypoints/cli/serve.py``; the ``python3 -m vllm.entrypoints.openai.api_server`` module ignores it),
  which is the command the Deployment runs too.
- ``$(LWS_LEADER_ADDRESS)`` and ``$(LWS_WORKER_INDEX)`` are left for the kubelet to expand: LWS's pod webhook puts
  them in every container's environment. Only these references, written here, are expandable: every argument
  that comes from the spec still has its ``$`` doubled (``literal_args``), so a user's ``$(HF_TOKEN)`` is never
  expanded into the command line.
- The leader is the only pod with the API port and probes, and the only one labelled as the server component:
  the Service and the acceptance monitor select ``specdeploy.io/name`` + component ``server`` and so reach leaders
  only (workers run no HTTP server). Workers get component ``server-worker``.
- ``restartPolicy: RecreateGroupOnPodRestart``: one engine spans the group, so a failed pod makes the whole
  group useless; LWS deletes and recreates the group.
- ``startupPolicy: LeaderCreated`` (LWS's default): workers start with the leader so both load weights at once;
  vLLM's workers wait for the master's TCP store.
- The name is the revision's workload name, ``<name>-<serving id>`` (one per revision, issue 13), never the
  object's own: the LWS controller makes a headless Service named after the LeaderWorkerSet for the leader's
  address (``<leader pod>.<that Service>``), and finding the name taken by the object's Service it would make
  none, so the workers could not resolve the leader in a real cluster.
- The rolling update keeps maxSurge 0 and maxUnavailable 1, as the Deployment does: a surge group needs a spare
  set of GPU nodes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render import labels as lbl
from specdeploy.render.deployment import render_deployment
from specdeploy.render.meta import OwnerRef
from specdeploy.render.names import VLLM_CONTAINER
from specdeploy.render.pod import literal_args, quantity
from specdeploy.render.vllm_args import vllm_args

API_VERSION: Final = "leaderworkerset.x-k8s.io/v1"
KIND: Final = "LeaderWorkerSet"
LEADER_ADDRESS_REF: Final = "$(LWS_LEADER_ADDRESS)"  # expanded by the kubelet from LWS's injected env
WORKER_INDEX_REF: Final = "$(LWS_WORKER_INDEX)"
WORKER_COMPONENT: Final = "server-worker"
_PROBES: Final = ("startupProbe", "readinessProbe", "livenessProbe")


def is_multi_node(spec: SpeculativeDeploymentSpec) -> bool:
    """True when one replica needs more GPUs than one node has."""
    return spec.target.gpus_per_replica > spec.serving.gpus_per_node_or_default


def group_size(spec: SpeculativeDeploymentSpec) -> int:
    """Pods per group (leader included): TP x PP / gpusPerNode (the API refuses an uneven split)."""
    per_node = spec.serving.gpus_per_node_or_default
    gpus = spec.target.gpus_per_replica
    if gpus % per_node != 0:
        raise ValueError("spec.target.tensorParallelSize x pipelineParallelSize must be a multiple of gpusPerNode")
    return max(gpus // per_node, 1)


def node_args(spec: SpeculativeDeploymentSpec, *, leader: bool, speculation_enabled: bool = True) -> list[str]:
    """Container args after ``vllm serve``: the spec's arguments (``$`` doubled), then the multi-node flags.

    The multi-node flags are appended unescaped, so that the kubelet expands ``$(LWS_LEADER_ADDRESS)`` and
    ``$(LWS_WORKER_INDEX)``; nothing from the spec can reach that part.
    """
    own = literal_args(vllm_args(spec, speculation_enabled=speculation_enabled))
    multi = ["--nnodes", str(group_size(spec))]
    multi += ["--node-rank", "0" if leader else WORKER_INDEX_REF, "--master-addr", LEADER_ADDRESS_REF]
    if not leader:
        multi.append("--headless")
    return [*own, *multi]


def _template(
    base: dict[str, Any], spec: SpeculativeDeploymentSpec, *, leader: bool, speculation_enabled: bool
) -> dict[str, Any]:
    template = copy.deepcopy(base)
    container = next(c for c in template["spec"]["containers"] if c["name"] == VLLM_CONTAINER)
    container["args"] = node_args(spec, leader=leader, speculation_enabled=speculation_enabled)
    gpus = quantity(spec.serving.gpus_per_node_or_default)
    container["resources"]["requests"][spec.serving.gpu_resource] = gpus
    container["resources"]["limits"][spec.serving.gpu_resource] = gpus
    if not leader:
        for probe in _PROBES:
            container.pop(probe, None)
        container.pop("ports", None)
        template["metadata"]["labels"][lbl.COMPONENT] = WORKER_COMPONENT
    return template


def render_leaderworkerset(
    name: str,
    namespace: str,
    spec: SpeculativeDeploymentSpec,
    revision: str,
    *,
    owner: OwnerRef | None,
    speculation_enabled: bool = True,
    replicas: int | None = None,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The LeaderWorkerSet that serves ``revision`` of a multi-node ``spec``: ``spec.replicas`` groups.

    ``replicas`` and ``existing`` as for ``render_deployment``: groups when not ``spec.replicas`` (a canary, a step of
    a promotion), and the live workload of this revision whose name is kept."""
    if not is_multi_node(spec):
        raise ValueError(
            "a LeaderWorkerSet is only rendered when a replica needs more GPUs than spec.serving.gpusPerNode"
        )
    deployment = render_deployment(
        name, namespace, spec, revision, owner=owner, speculation_enabled=speculation_enabled, existing=existing
    )
    base = deployment["spec"]["template"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": deployment["metadata"],
        "spec": {
            "replicas": spec.replicas if replicas is None else replicas,
            "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "leaderWorkerTemplate": {
                "size": group_size(spec),
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": _template(base, spec, leader=True, speculation_enabled=speculation_enabled),
                "workerTemplate": _template(base, spec, leader=False, speculation_enabled=speculation_enabled),
            },
        },
    }

"""The optional children that fit the object into the cluster's other controllers (issue 15), in one list.

Each kind here is wanted or not as a function of the spec alone: the PodDisruptionBudget (replicas >= 2) and the
InferencePool (``spec.routing.inferencePool.enabled``). The operator applies those wanted and deletes any kind in
``OPTIONAL_KINDS`` that is no longer wanted; the garbage collector removes them with the object.
"""

from __future__ import annotations

from typing import Any, Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.inferencepool import inference_pool_name, render_inference_pool
from specdeploy.render.meta import OwnerRef
from specdeploy.render.pdb import pdb_name, render_pdb

# kind -> the child's name for an object called ``name``.
OPTIONAL_KINDS: Final = {"PodDisruptionBudget": pdb_name, "InferencePool": inference_pool_name}


def render_optional(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, revision: str, *, owner: OwnerRef | None
) -> list[dict[str, Any]]:
    """The optional children this spec wants, PodDisruptionBudget first."""
    wanted = (
        render_pdb(name, namespace, spec, revision, owner=owner),
        render_inference_pool(name, namespace, spec, revision, owner=owner),
    )
    return [obj for obj in wanted if obj is not None]

"""The PodDisruptionBudget of the vLLM pods: a drain or node upgrade takes at most ``maxUnavailable`` at once.

It exists only while ``spec.replicas`` is 2 or more: with one replica a budget of one unavailable pod protects
nothing, and a budget of zero would block every drain. It selects with the Service's selector (name and
component, never the revision), so it counts every revision's pods together: during a canary the old and the
new revision share one budget, as they share the traffic.
"""

from __future__ import annotations

from typing import Any, Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render import labels as lbl
from specdeploy.render.meta import OwnerRef, object_meta

MIN_REPLICAS: Final = 2


def pdb_name(name: str) -> str:
    """The budget has the SpeculativeDeployment's name (kinds differ, so names do not clash)."""
    return name


def render_pdb(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, revision: str, *, owner: OwnerRef | None
) -> dict[str, Any] | None:
    """The policy/v1 PodDisruptionBudget, or None when ``spec.replicas`` is below 2 (no budget wanted)."""
    if spec.replicas < MIN_REPLICAS:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(pdb_name(name), namespace, lbl.common_labels(name, revision, "server"), owner=owner),
        "spec": {
            "maxUnavailable": spec.disruption.max_unavailable,
            "selector": {"matchLabels": lbl.selector_labels(name)},
        },
    }

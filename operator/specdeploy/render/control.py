"""The control group's Deployment (issue 14 item 2): the serving revision's target, speculation off, beside it.

Why a separate Deployment: the operator measures what speculation gains on live traffic by comparing the speculative
pods with pods that serve the same target with the same serving settings (image, resources, scheduling, flags) but
without ``--speculative-config``, at the same time, behind the same Service (it selects every server pod of the
object, so the control pods get their share of the requests and count in READY).

How its pods are told apart: ``specdeploy.io/group: control`` (absent on every speculative pod) and a revision label
``<revision id>-control``, which no serving revision can have (serving ids are the id or ``<id>-nospec``), so the
tracker's per-revision filters never count a control pod as a speculative one. The Deployment is named
``<object>-control`` (object names are at most 43 characters, so the name fits); its selector adds the group label,
so it never selects a speculative pod. It follows the serving revision: when that changes, its pods roll to the new
target settings (a change of the control group itself never touches the speculative pods: api/revision.py).
"""

from __future__ import annotations

from typing import Any, Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render import labels as lbl
from specdeploy.render.deployment import render_deployment, template_hash
from specdeploy.render.meta import OwnerRef

GROUP_LABEL: Final = "specdeploy.io/group"
CONTROL: Final = "control"
CONTROL_SUFFIX: Final = "-control"


def control_deployment_name(name: str) -> str:
    return f"{name}{CONTROL_SUFFIX}"


def control_revision(serving_revision_id: str) -> str:
    """The revision label of the control pods that stand beside ``serving_revision_id`` (its ``-nospec`` dropped)."""
    return serving_revision_id.removesuffix("-nospec") + CONTROL_SUFFIX


def is_control(labels: dict[str, str] | None) -> bool:
    """Whether a pod (by its labels) belongs to the control group."""
    return (labels or {}).get(GROUP_LABEL) == CONTROL


def render_control_deployment(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, serving_revision_id: str, *, owner: OwnerRef | None
) -> dict[str, Any] | None:
    """The control Deployment for ``spec`` (the serving revision's spec), or None when there is no control group.

    None also when what serves runs without speculation: the comparison would be the target against itself.
    """
    control = spec.speculation.control
    if control is None or control.replicas == 0 or serving_revision_id.endswith("-nospec"):
        return None
    revision = control_revision(serving_revision_id)
    deployment = render_deployment(name, namespace, spec, revision, owner=owner, speculation_enabled=False)
    meta = deployment["metadata"]
    meta["name"] = control_deployment_name(name)
    meta["labels"] = {**meta["labels"], GROUP_LABEL: CONTROL}
    body = deployment["spec"]
    body["replicas"] = control.replicas
    body["selector"] = {"matchLabels": {**lbl.selector_labels(name), GROUP_LABEL: CONTROL}}
    template = body["template"]
    template["metadata"]["labels"] = {**template["metadata"]["labels"], GROUP_LABEL: CONTROL}
    meta["annotations"] = {**meta["annotations"], lbl.ANNOTATION_TEMPLATE_HASH: template_hash(template)}
    return deployment

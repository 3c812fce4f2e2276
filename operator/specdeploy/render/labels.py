"""Labels and annotations on every child object, and the selectors.

The ``app.kubernetes.io/*`` labels let generic tools (kubectl, Helm, dashboards) group the children; the
``specdeploy.io/*`` labels let the operator find them. The Service, PodDisruptionBudget, InferencePool and
status.selector select by name and component only, so they cover the pods of every revision (a canary takes its
share of requests); each revision's Deployment selects its own revision's pods (``revision_selector_labels``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

NAME: Final = "app.kubernetes.io/name"
INSTANCE: Final = "app.kubernetes.io/instance"
COMPONENT: Final = "app.kubernetes.io/component"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
PART_OF: Final = "app.kubernetes.io/part-of"
SD_NAME: Final = "specdeploy.io/name"
SD_REVISION: Final = "specdeploy.io/revision"
ANNOTATION_REVISION: Final = "specdeploy.io/revision"
# On a Deployment: a hash of the pod template as this version of the operator renders it (rollout.writes).
ANNOTATION_TEMPLATE_HASH: Final = "specdeploy.io/template-hash"
ANNOTATION_DEFAULT_CONTAINER: Final = "kubectl.kubernetes.io/default-container"

MANAGER: Final = "specdeploy"
Component = Literal["server", "validator"]
_APP_NAME: Final[dict[str, str]] = {"server": "vllm", "validator": "specdeploy-validator"}


def selector_labels(name: str) -> dict[str, str]:
    """Labels that select the vLLM pods of one SpeculativeDeployment (Deployment selector, Service selector)."""
    return {SD_NAME: name, COMPONENT: "server"}


def revision_selector_labels(name: str, revision: str) -> dict[str, str]:
    """The selector of one revision's Deployment: its pods only (issue 13: one Deployment per revision)."""
    return {**selector_labels(name), SD_REVISION: revision}


def selector_string(name: str) -> str:
    """``selector_labels`` as a label selector string (``status.selector``, read through the scale subresource)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(name).items()))


def common_labels(name: str, revision: str, component: Component) -> dict[str, str]:
    """Labels on a child object and on its pods."""
    return {
        NAME: _APP_NAME[component],
        INSTANCE: name,
        COMPONENT: component,
        MANAGED_BY: MANAGER,
        PART_OF: MANAGER,
        SD_NAME: name,
        SD_REVISION: revision,
    }


def merged(user: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """``user`` labels or annotations plus ``ours``; ours win, so a user cannot break selection."""
    return {**user, **ours}

"""The ClusterIP Service in front of the vLLM pods: one stable address for the OpenAI API and /metrics.

It selects with the Deployment's selector (name and component, not revision), so it keeps pointing at
whatever revision serves, through rollouts and rollbacks.
"""

from __future__ import annotations

from typing import Any

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render import labels as lbl
from specdeploy.render.meta import OwnerRef, object_meta
from specdeploy.render.names import HTTP_PORT_NAME, service_name


def render_service(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, revision: str, *, owner: OwnerRef | None
) -> dict[str, Any]:
    """The core/v1 Service; port ``http`` (spec.serving.port) to the pods' named port ``http``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            service_name(name), namespace, lbl.common_labels(name, revision, "server"), owner=owner
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": lbl.selector_labels(name),
            "ports": [
                {
                    "name": HTTP_PORT_NAME,
                    "port": spec.serving.port,
                    "targetPort": HTTP_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }

"""The Gateway API Inference Extension ``InferencePool`` over the vLLM pods (``spec.routing.inferencePool``).

An inference gateway routes a request to a pool, and the pool's endpoint picker chooses the pod (by queue
length, KV-cache use, prefix-cache hits it reads from the pods' ``/metrics``). The pool selects with the
Service's selector (name and component, never the revision), so every live revision's ready pods are members,
a canary's included; it targets the pods' serving port. Shape: inference.networking.k8s.io/v1 as in GAIE v1.6.2
(``config/crd/bases/inference.networking.k8s.io_inferencepools.yaml``).
"""

from __future__ import annotations

from typing import Any, Final

from specdeploy.api.ecosystem import EndpointPickerRef
from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render import labels as lbl
from specdeploy.render.meta import OwnerRef, object_meta

API_VERSION: Final = "inference.networking.k8s.io/v1"


def inference_pool_name(name: str) -> str:
    """The pool has the SpeculativeDeployment's name: an HTTPRoute's backendRef names it."""
    return name


def endpoint_picker_ref(name: str, spec: SpeculativeDeploymentSpec) -> EndpointPickerRef:
    """The picker the spec names, else the conventional ``<name>-epp`` Service on port 9002."""
    given = spec.routing.inference_pool.endpoint_picker_ref
    return given if given is not None else EndpointPickerRef(name=f"{name}-epp")


def render_inference_pool(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, revision: str, *, owner: OwnerRef | None
) -> dict[str, Any] | None:
    """The InferencePool, or None when ``spec.routing.inferencePool.enabled`` is false."""
    if not spec.routing.inference_pool.enabled:
        return None
    epp = endpoint_picker_ref(name, spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "InferencePool",
        "metadata": object_meta(
            inference_pool_name(name), namespace, lbl.common_labels(name, revision, "server"), owner=owner
        ),
        "spec": {
            "selector": {"matchLabels": lbl.selector_labels(name)},
            "targetPorts": [{"number": spec.serving.port}],
            "appProtocol": "http",
            "endpointPickerRef": {
                "group": "",
                "kind": "Service",
                "name": epp.name,
                "port": {"number": epp.port},
                "failureMode": str(epp.failure_mode),
            },
        },
    }

"""Build the CustomResourceDefinition of SpeculativeDeployment from the pydantic models.

The committed ``crds/specdeploy.io_speculativedeployments.yaml`` is this function's output
(``specdeploy crd > crds/specdeploy.io_speculativedeployments.yaml``); a unit test fails when they differ, so
the API server always validates with the same rules as the Python code.
"""

from __future__ import annotations

from typing import Any

from specdeploy.api.constants import CATEGORIES, GROUP, KIND, LIST_KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from specdeploy.api.resource import MULTI_NODE_NAME_MESSAGE, MULTI_NODE_NAME_RULE, NAME_MESSAGE, NAME_RULE
from specdeploy.api.schema import to_structural
from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.api.status import SpeculativeDeploymentStatus

_DESCRIPTION = (
    "SpeculativeDeployment serves a target LLM with vLLM speculative decoding: it checks that the draft fits the "
    "target, runs the pods, watches the live draft acceptance rate and rolls back on its own when it stays low."
)

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Target", "type": "string", "jsonPath": ".spec.target.model", "description": "Target model."},
    {"name": "Draft", "type": "string", "jsonPath": ".spec.draft.model", "description": "Draft model."},
    {
        "name": "K",
        "type": "integer",
        "jsonPath": ".status.numSpeculativeTokens",
        "description": "Speculative tokens per step of the revision that serves (0: speculation off).",
    },
    {
        "name": "TP",
        "type": "integer",
        "jsonPath": ".spec.target.tensorParallelSize",
        "description": "Tensor parallel size (GPUs per replica).",
    },
    {
        "name": "Accept",
        "type": "string",
        "jsonPath": ".status.acceptance.rateText",
        "description": "Draft acceptance rate over the last window (status.acceptance.rate, two decimals).",
    },
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready", "description": "Ready vLLM pods out of desired."},
    {"name": "Status", "type": "string", "jsonPath": ".status.phase", "description": "Phase."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Method",
        "type": "string",
        "priority": 1,
        "jsonPath": ".spec.speculation.method",
        "description": "Speculative decoding method.",
    },
    {
        "name": "Serving",
        "type": "string",
        "priority": 1,
        "jsonPath": ".status.revision.serving",
        "description": "Revision the pods run.",
    },
    {
        "name": "Canary",
        "type": "string",
        "priority": 1,
        "jsonPath": ".status.canary.phase",
        "description": "The canary's phase: Starting, Analyzing, Promoting, Promoted or Aborted (issue 13).",
    },
    {
        "name": "Canary-Accept",
        "type": "number",
        "priority": 1,
        "jsonPath": ".status.canary.acceptance.canary",
        "description": "The canary's acceptance rate over its windows (beside Accept, the serving revision's).",
    },
]


# kubectl scale, HorizontalPodAutoscaler and KEDA read and write spec.replicas through /scale; the selector is
# the vLLM pods' (status.selector, written by the operator), which autoscalers need to match pod metrics.
SCALE: dict[str, str] = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}


def openapi_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version: spec and status from the models, the rest standard."""
    spec = to_structural(SpeculativeDeploymentSpec.model_json_schema(by_alias=True))
    status = to_structural(SpeculativeDeploymentStatus.model_json_schema(by_alias=True))
    return {
        "type": "object",
        "description": _DESCRIPTION,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of an object.",
            },
            "kind": {"type": "string", "description": "Kind is the REST resource this object represents."},
            # The API server allows nothing but name/generateName restrictions under metadata.
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [
            {"rule": NAME_RULE, "message": NAME_MESSAGE},
            {"rule": MULTI_NODE_NAME_RULE, "message": MULTI_NODE_NAME_MESSAGE},
        ],
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict, ready for YAML or the API."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "specdeploy", "app.kubernetes.io/part-of": "specdeploy"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": LIST_KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": SCALE},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }

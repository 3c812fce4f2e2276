"""``spec.disruption`` and ``spec.routing``: how the vLLM pods meet the cluster's other controllers.

``disruption`` sizes the PodDisruptionBudget the operator keeps for the vLLM pods (drains and node upgrades may
take at most that many pods at once); ``routing.inferencePool`` asks for a Gateway API Inference Extension
``InferencePool`` so that an inference gateway (llm-d, GKE, Istio, kgateway) can route to the pods through an
endpoint picker. Neither is part of the revision (``api.revision.SERVING_FIELDS``): changing them never
restarts a pod or reruns the validation Job.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, PlainValidator, WithJsonSchema

from specdeploy.api.base import SpecModel
from specdeploy.api.types import DNS_LABEL_PATTERN

MAX_UNAVAILABLE_LIMIT: Final = 1000
PERCENT_PATTERN: Final = r"^([1-9][0-9]?|100)%$"
MAX_UNAVAILABLE_MESSAGE: Final = (
    "spec.disruption.maxUnavailable must be an integer from 1 to 1000 or a percentage from 1% to 100% "
    "(0 would block every node drain)"
)
# The same rule in CEL (the API server) and in Python (``_check_max_unavailable``).
MAX_UNAVAILABLE_RULE: Final = (
    f"type(self) == int ? (self >= 1 && self <= {MAX_UNAVAILABLE_LIMIT}) : self.matches('{PERCENT_PATTERN}')"
)
DEFAULT_EPP_PORT: Final = 9002  # the endpoint picker's ext-proc port in GAIE's and llm-d's charts


def _check_max_unavailable(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError(MAX_UNAVAILABLE_MESSAGE)
    if isinstance(value, int) and 1 <= value <= MAX_UNAVAILABLE_LIMIT:
        return value
    if isinstance(value, str) and re.fullmatch(PERCENT_PATTERN, value):
        return value
    raise ValueError(MAX_UNAVAILABLE_MESSAGE)


# A PodDisruptionBudget's int-or-string, bounded: a pod count or a percentage of the replicas.
MaxUnavailable = Annotated[
    int | str,
    PlainValidator(_check_max_unavailable),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": 4,
            "x-kubernetes-validations": [{"rule": MAX_UNAVAILABLE_RULE, "message": MAX_UNAVAILABLE_MESSAGE}],
        }
    ),
]


class Disruption(SpecModel):
    """The PodDisruptionBudget of the vLLM pods, kept while spec.replicas is 2 or more."""

    max_unavailable: MaxUnavailable = Field(
        1,
        description="Most vLLM pods a voluntary disruption (drain, eviction) may take at once: 1-1000 pods or "
        "1%-100% of the pods. Default: 1.",
    )


class FailureMode(StrEnum):
    """What the gateway does when the endpoint picker does not answer (GAIE's EndpointPickerFailureMode)."""

    FAIL_OPEN = "FailOpen"
    FAIL_CLOSE = "FailClose"


class EndpointPickerRef(SpecModel):
    """The endpoint picker (EPP) Service the gateway asks which pod gets each request."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Service name of the endpoint picker."
    )
    port: int = Field(
        DEFAULT_EPP_PORT, ge=1, le=65535, description=f"Service port of its ext-proc API. Default: {DEFAULT_EPP_PORT}."
    )
    failure_mode: FailureMode = Field(
        FailureMode.FAIL_CLOSE,
        description="FailClose (default): requests fail while the picker is down. FailOpen: the gateway picks.",
    )


class InferencePoolSettings(SpecModel):
    """An InferencePool (inference.networking.k8s.io/v1) named like the object, over its vLLM pods."""

    enabled: bool = Field(False, description="Create the InferencePool. Default: false.")
    endpoint_picker_ref: EndpointPickerRef | None = Field(
        None,
        description="The endpoint picker the pool names. Default: Service <name>-epp, port 9002, FailClose (the "
        "names the GAIE and llm-d charts give an endpoint picker installed for a pool called <name>).",
    )


class Routing(SpecModel):
    """How gateways route to the vLLM pods, besides the Service."""

    inference_pool: InferencePoolSettings = Field(
        default_factory=InferencePoolSettings,
        description="Gateway API Inference Extension pool over the vLLM pods.",
        json_schema_extra={"default": {}},
    )

"""Names of the objects the operator creates for a SpeculativeDeployment, in one place.

Names are deterministic (a function of the parent's name and the revision only), so a handler that is retried
after a crash finds the object it already created (a 409 on create) instead of making a second one.
"""

from __future__ import annotations

from specdeploy.api.constants import MAX_NAME_LENGTH

VLLM_CONTAINER = "vllm"
VALIDATOR_CONTAINER = "validator"
HTTP_PORT_NAME = "http"


def deployment_name(name: str) -> str:
    """The name earlier operator versions gave the one vLLM Deployment of every revision (kept on upgrade)."""
    return name


def revision_deployment_name(name: str, serving_id: str) -> str:
    """``<name>-<serving id>``: one Deployment per revision (issue 13), so a canary runs beside the serving one.

    The serving id is a short hash, perhaps with ``-nospec``; with metadata.name at most 43 characters the
    Deployment name, and its pods' ``<deployment>-<10>-<5>`` names, stay far inside the 253 of a DNS subdomain.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"metadata.name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return f"{name}-{serving_id}"


def service_name(name: str) -> str:
    """The Service has the SpeculativeDeployment's name, so clients use the name they chose."""
    return name


def job_name(name: str, revision: str) -> str:
    """``<name>-validate-<revision>``: one validation Job per revision, at most 63 characters."""
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"metadata.name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return f"{name}-validate-{revision}"


def endpoint(name: str, namespace: str, port: int) -> str:
    """In-cluster URL of the OpenAI-compatible API (for ``status.endpoint``)."""
    return f"http://{service_name(name)}.{namespace}.svc:{port}"

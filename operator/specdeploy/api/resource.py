"""The whole SpeculativeDeployment object as Python sees it: apiVersion, kind, metadata, spec, status.

``metadata`` stays a plain dict (it is the API server's, not ours); only the rule that the API server's CEL
also applies to it is checked here: a name short enough for the children's suffixes, valid as a Service
name.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from specdeploy.api.constants import KIND, MAX_MULTI_NODE_NAME_LENGTH, MAX_NAME_LENGTH
from specdeploy.api.spec import GPUS_PER_NODE_CEL, GPUS_PER_REPLICA_CEL, SpeculativeDeploymentSpec
from specdeploy.api.status import SpeculativeDeploymentStatus
from specdeploy.api.types import RFC1035_LABEL_PATTERN

_NAME_RE = re.compile(RFC1035_LABEL_PATTERN)
NAME_MESSAGE = (
    f"metadata.name must be at most {MAX_NAME_LENGTH} characters of lowercase letters, digits and '-', starting "
    "with a letter: it names the Service (an RFC 1035 label) and the Job <name>-validate-<revision>, whose "
    "name Kubernetes caps at 63 characters"
)
NAME_RULE = f"size(self.metadata.name) <= {MAX_NAME_LENGTH} && self.metadata.name.matches('{RFC1035_LABEL_PATTERN}')"
MULTI_NODE_NAME_MESSAGE = (
    f"metadata.name must be at most {MAX_MULTI_NODE_NAME_LENGTH} characters when one replica spans several nodes "
    "(spec.target.tensorParallelSize x pipelineParallelSize above spec.serving.gpusPerNode): its LeaderWorkerSet "
    "<name>-<revision>-nospec makes StatefulSets <LeaderWorkerSet>-<group>, whose pods Kubernetes never creates when "
    "that name is longer than 52 characters"
)
MULTI_NODE_NAME_RULE = (
    f"!has(self.spec) || {GPUS_PER_REPLICA_CEL.replace('self.', 'self.spec.')} <= "
    f"{GPUS_PER_NODE_CEL.replace('self.', 'self.spec.')} || size(self.metadata.name) <= {MAX_MULTI_NODE_NAME_LENGTH}"
)


def check_name(name: str) -> str:
    """Refuse a metadata.name that the API server's CEL rule refuses (see ``NAME_MESSAGE``)."""
    if len(name) > MAX_NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r}: {NAME_MESSAGE}")
    return name


class SpeculativeDeployment(BaseModel):
    """A SpeculativeDeployment as read from a manifest or from the API server."""

    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=True, serialize_by_alias=True)

    api_version: Literal["specdeploy.io/v1alpha1"] = Field("specdeploy.io/v1alpha1", alias="apiVersion")
    kind: Literal["SpeculativeDeployment"] = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SpeculativeDeploymentSpec
    status: SpeculativeDeploymentStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name(cls, value: dict[str, Any]) -> dict[str, Any]:
        name = value.get("name")
        if not isinstance(name, str):
            raise ValueError("metadata.name is required")
        check_name(name)
        return value

    @model_validator(mode="after")
    def _multi_node_name(self) -> SpeculativeDeployment:
        multi_node = self.spec.target.gpus_per_replica > self.spec.serving.gpus_per_node_or_default
        if multi_node and len(self.name) > MAX_MULTI_NODE_NAME_LENGTH:
            raise ValueError(f"{self.name!r}: {MULTI_NODE_NAME_MESSAGE}")
        return self

    @property
    def name(self) -> str:
        name: str = self.metadata["name"]
        return name

    @property
    def namespace(self) -> str:
        namespace: str = self.metadata.get("namespace") or "default"
        return namespace

    @property
    def uid(self) -> str | None:
        uid = self.metadata.get("uid")
        return uid if isinstance(uid, str) and uid else None

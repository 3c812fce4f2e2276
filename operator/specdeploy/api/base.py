"""Base classes that give every API model the Kubernetes JSON conventions in one place.

Python code uses snake_case attributes; the wire format (YAML manifests, the CRD, the API server) uses
camelCase. Aliases are generated, both spellings are accepted on input, and dumps use camelCase by default.
Spec models refuse unknown fields, so a typo in a manifest is an error naming the field instead of a setting
that silently does nothing. Status models ignore unknown fields, so an operator reading a status written by
an older or newer version of itself does not crash.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """A part of ``spec``: immutable once parsed, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
    )


class StatusModel(BaseModel):
    """A part of ``status``: built and updated by the operator, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )

"""Base classes that give every API model the Kubernetes JSON conventions in one place.

Python code uses snake_case attributes; the wire format (YAML manifests, the CRD, the API server) uses
camelCase. Aliases are generated, both spellings are accepted on input, and dumps use camelCase by default.
Spec models refuse unknown fields, so a typo in a manifest is an error naming the field instead of a setting
that silently does nothing. Status models ignore unknown fields, so an operator reading a status written by
an older or newer version of itself does not crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def unset_if_default(default: object) -> Callable[[object, Any], Any]:
    """A field validator that stores ``default`` as None, for optional fields added after revision ids were hashed.

    Revision ids hash the spec as dumped without None fields; a field added later with a default would change
    the id of every existing object (and restart its pods). Kept unset when equal to its default, such a field
    dumps to nothing, so writing the default explicitly or leaving it out gives the same id.
    """

    def check(cls: object, value: Any) -> Any:
        return None if value == default else value

    return classmethod(check)  # type: ignore[return-value]

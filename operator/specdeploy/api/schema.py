"""Turn pydantic's JSON Schema into a Kubernetes structural schema, so the models stay the single source.

pydantic emits JSON Schema 2020-12: ``$defs``/``$ref``, ``anyOf`` with a ``null`` branch for optional fields,
``title`` everywhere, numeric ``exclusiveMinimum``, ``additionalProperties: false``. A CRD needs OpenAPI v3 in
the structural subset: every node typed and inlined, no ``$ref``, no types inside ``anyOf`` (except the
int-or-string pair), ``exclusiveMinimum`` as a flag, no ``additionalProperties: false`` (unknown fields are
pruned instead). This module does only that translation, and refuses shapes it cannot translate faithfully
instead of guessing.
"""

from __future__ import annotations

import copy
from typing import Any

# Keys copied as they are; everything else is either translated below or refused.
_PASSTHROUGH = {
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
}
_DROPPED = {"title", "propertyNames"}
# Output order of a node's keys: what a reader of the YAML looks for first, then bounds, then children.
_ORDER = (
    "type",
    "format",
    "description",
    "x-kubernetes-int-or-string",
    "anyOf",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
)
_NULL = {"type": "null"}


class SchemaError(ValueError):
    """A pydantic schema shape with no faithful structural equivalent."""


def to_structural(schema: dict[str, Any], defs: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
    """Return ``schema`` (a node of ``model_json_schema(by_alias=True)``) as an inlined structural schema."""
    defs = schema.get("$defs", {}) if defs is None else defs
    node = _flatten(schema, defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key == "$defs":
            continue
        if key == "properties":
            out["properties"] = {name: to_structural(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out["items"] = to_structural(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            _additional(out, value, defs, path)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            _exclusive(out, key, value)
        elif key == "anyOf" and node.get("x-kubernetes-int-or-string"):
            out["anyOf"] = copy.deepcopy(value)
        elif key == "const":
            out["enum"] = [value]
        elif key in _PASSTHROUGH:
            out[key] = copy.deepcopy(value)
        else:
            raise SchemaError(f"{path or '<root>'}: unsupported JSON Schema keyword {key!r}")
    if out.get("default", 0) is None:
        del out["default"]
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"], path)
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"{path or '<root>'}: every node of a structural schema needs a type")
    return {key: out[key] for key in sorted(out, key=_ORDER.index)}


def _flatten(schema: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """Resolve ``$ref``/``allOf`` and optional ``anyOf``; keys at the use site win over the definition's."""
    node = dict(schema)
    if "$ref" in node:
        target = _resolve(node.pop("$ref"), defs, path)
        node = {**_flatten(target, defs, path), **node}
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise SchemaError(f"{path}: allOf with {len(parts)} parts cannot be inlined")
        node = {**_flatten(parts[0], defs, path), **node}
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node.pop("anyOf") if b != _NULL]
        if len(branches) != 1:
            raise SchemaError(f"{path}: a union of {len(branches)} types is not a structural schema")
        node = {**_flatten(branches[0], defs, path), **node}
    return node


def _resolve(ref: str, defs: dict[str, Any], path: str) -> dict[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise SchemaError(f"{path}: unresolvable $ref {ref!r}")
    target: dict[str, Any] = defs[ref[len(prefix) :]]
    return target


def _additional(out: dict[str, Any], value: Any, defs: dict[str, Any], path: str) -> None:
    if value is False:
        return  # structural schemas prune unknown fields; "false" is not allowed there
    if value is True or value == {}:
        out["x-kubernetes-preserve-unknown-fields"] = True
        return
    out["additionalProperties"] = to_structural(value, defs, f"{path}{{}}")


def _exclusive(out: dict[str, Any], key: str, value: Any) -> None:
    bound = "minimum" if key == "exclusiveMinimum" else "maximum"
    if isinstance(value, bool):
        out[key] = value
        return
    out[bound] = value
    out[key] = True


def _enum_type(values: list[Any], path: str) -> str:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string"
    if kinds == {int}:
        return "integer"
    raise SchemaError(f"{path}: enum mixes types {sorted(k.__name__ for k in kinds)}")

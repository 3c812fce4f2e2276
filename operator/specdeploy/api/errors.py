"""Validation errors as lines a user can act on: the field path as it appears in YAML, then what is wrong.

pydantic reports locations as tuples (``('spec', 'serving', 'env', 0, 'name')``) and prefixes messages from
validators with "Value error, ". Users think in manifest paths (``spec.serving.env[0].name``), so that is the
form ``specdeploy render`` prints and the operator can put in Events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from specdeploy.api import types

# Plain words for the patterns a user is most likely to trip over.
_PATTERN_HINTS = {
    types.MODEL_PATTERN: (
        "must be a Hugging Face repo id (org/name) or an absolute path (/models/name): letters, digits, '.', "
        "'_', '-' and '/' only, no '..' segments, no leading '-', no spaces"
    ),
    types.REVISION_PATTERN: "must be a branch, tag or commit: letters, digits, '.', '_', '-' and '/'",
    types.DNS_SUBDOMAIN_PATTERN: "must be a Kubernetes object name: lowercase letters, digits, '-' and '.'",
    types.QUANTIZATION_PATTERN: "must be a vLLM quantization method name such as awq, gptq or fp8",
    types.QUANTITY_PATTERN: "must be a Kubernetes quantity such as 8Gi, 500m or 2",
    types.LABEL_VALUE_PATTERN: "must be a label value: at most 63 letters, digits, '-', '_' and '.'",
}
# Inputs at these keys are never echoed back (an env value may be sensitive even when it should not be).
_NO_ECHO = {"value"}


def field_path(loc: Iterable[int | str]) -> str:
    """``('spec', 'serving', 'env', 0, 'name')`` -> ``spec.serving.env[0].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = _PATTERN_HINTS.get(error.get("ctx", {}).get("pattern", ""), message)
    loc = error.get("loc", ())
    if error["type"] in ("missing", "extra_forbidden") or (loc and loc[-1] in _NO_ECHO):
        return message
    given = error.get("input")
    if isinstance(given, str | int | float | bool) and not isinstance(given, dict):
        shown = repr(given) if len(repr(given)) <= 80 else repr(given)[:77] + "..."
        return f"{message} (got {shown})"
    return message


def error_lines(error: ValidationError, prefix: Iterable[str] = ()) -> list[str]:
    """One line per problem: ``<path>: <message>``; ``prefix`` is prepended to the path (e.g. ``['spec']``)."""
    lines = []
    for item in error.errors(include_url=False):
        path = field_path([*prefix, *item["loc"]])
        message = _describe(item)
        # Cross-field rules already name their fields ("spec.draft is required unless ..."): no "spec: " before.
        lines.append(f"{path}: {message}" if path and not message.startswith(path) else message)
    return lines

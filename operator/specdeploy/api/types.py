r"""Bounded field types shared by the spec and status models.

Every string the API accepts has a maximum length and, where Kubernetes or vLLM gives it a grammar, a pattern.
The same pattern is enforced twice: by pydantic when the operator or ``specdeploy render`` parses an object,
and by the API server (the pattern lands in the CRD). The two must accept exactly the same strings, or the API
server stores an object the operator cannot parse. The patterns are therefore written in the common subset of
Go's RE2, Rust's ``regex`` (what pydantic runs) and Python's ``re`` (the few checks written by hand), anchored at
both ends, and they spell out every character class in ASCII: ``\s``, ``\d``, ``\w`` and their negations mean
ASCII in RE2 but Unicode in Rust and Python (and Go's ``\s`` even leaves out ``\v``), so a no-break space or an
Arabic digit would pass one side and fail the other. ``$`` is only ever the end of the pattern; Python's hand
written checks use ``fullmatch``, because there ``$`` also matches before a final newline.
tests/unit/api/test_pattern_parity.py and tests/integration/test_api_parity.py hold both sides to that.

Map keys have no schema of their own in OpenAPI, so for them (and for the one limit a pattern cannot count, the
253-character prefix of a qualified name) the same check is written as a CEL rule: :func:`qualified_keys_rule`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema
from pydantic.config import JsonDict

# A path segment that is neither "." nor "..", and does not start with "-" (so a model id can never be read
# as a command-line flag). Only letters, digits, ".", "_" and "-": no whitespace, quotes or shell syntax.
_SEGMENT = r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)"
# A Hugging Face repo id ("org/name", "name") or an absolute local path ("/models/llama").
MODEL_PATTERN = rf"^/?{_SEGMENT}(?:/{_SEGMENT})*$"
# A git revision on the Hub: a branch, a tag or a commit hash ("main", "v1.0", "refs/pr/1", "a1b2c3...").
REVISION_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$"
# vLLM quantization method names ("awq", "gptq_marlin", "fp8", "compressed-tensors", ...). Not an enum: the
# list grows with every vLLM release, and vLLM itself refuses an unknown name at start-up.
QUANTIZATION_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
# The name clients send in the OpenAI API "model" field.
SERVED_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
# A container image reference: printable ASCII without spaces (the registry checks the rest). References are ASCII
# by grammar; a no-break space or a right-to-left mark in one only ever fails later, at the image pull.
IMAGE_PATTERN = r"^[!-~]+$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# What a Service name must be (RFC 1035 label): it starts with a letter.
RFC1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - the grammar of a key name, not a secret
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A qualified name: label and annotation keys, extended resource names ("nvidia.com/gpu"). The name part's limit of
# 63 characters is in the pattern; "." is written [.] so that the pattern can sit in a CEL string literal unescaped.
_DNS_PREFIX = r"([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
QUALIFIED_NAME_PATTERN = rf"^{_DNS_PREFIX}[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# resource.Quantity as Kubernetes serialises it ("8Gi", "500m", "1", "1e3").
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# An http(s) URL in ASCII: an authority made of RFC 3986's characters, then an optional path, query or fragment of
# printable ASCII without spaces.
URL_PATTERN = r"^https?://[-A-Za-z0-9._~%!$&'()*+,;=:@\[\]]+([/?#][!-~]*)?$"
# metav1.Condition reason: one CamelCase word.
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
# A revision id as api.revision makes it, optionally with a suffix such as "-nospec".
REVISION_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_QUALIFIED_RE = re.compile(QUALIFIED_NAME_PATTERN)
MAX_QUANTITY_LENGTH = 64
# Kubernetes' qualified name: an optional DNS subdomain prefix (at most 253) and "/", then a name of at most 63.
MAX_QUALIFIED_PREFIX_LENGTH = 253
MAX_QUALIFIED_NAME_PART_LENGTH = 63
MAX_QUALIFIED_NAME_LENGTH = MAX_QUALIFIED_PREFIX_LENGTH + 1 + MAX_QUALIFIED_NAME_PART_LENGTH  # 317
QUALIFIED_NAMES_WORDS = (
    "qualified names: an optional DNS subdomain prefix of at most 253 characters and '/', then a name of at most "
    "63 letters, digits, '-', '_' or '.' that starts and ends with a letter or digit (example.com/my-key)"
)


def _check_quantity(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a Kubernetes quantity: use an integer or a string such as 8Gi or 500m")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a quantity must not be negative")
        return value
    if len(value) > MAX_QUANTITY_LENGTH or not _QUANTITY_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 8Gi, 500m, 2)")
    if value.startswith("-"):
        raise ValueError("a quantity must not be negative")
    return value


def check_qualified_name(value: str) -> str:
    """Refuse what the API server would refuse as a label, annotation or resource key."""
    if len(value) > MAX_QUALIFIED_NAME_LENGTH or not _QUALIFIED_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid key (a qualified name such as example.com/my-key)")
    prefix, _, name = value.rpartition("/")
    if len(name) > MAX_QUALIFIED_NAME_PART_LENGTH or len(prefix) > MAX_QUALIFIED_PREFIX_LENGTH:
        raise ValueError(f"{value!r}: the name part is limited to 63 characters and the prefix to 253")
    return value


def check_qualified_keys(value: Mapping[str, Any] | None) -> Any:
    """Refuse a map (labels, annotations, node selector, resources) with a key ``check_qualified_name`` refuses."""
    for key in value or {}:
        check_qualified_name(key)
    return value


def _cel_qualified_name(var: str) -> str:
    # size() first: CEL's && stops at the first false, so an oversized key never reaches the O(n) indexOf or the
    # O(n*m) regex, and the rule's runtime cost stays bounded whatever a client sends.
    return (
        f"{var}.size() <= {MAX_QUALIFIED_NAME_LENGTH} && {var}.indexOf('/') <= {MAX_QUALIFIED_PREFIX_LENGTH} && "
        f"{var}.matches('{QUALIFIED_NAME_PATTERN}')"
    )


def qualified_keys_rule(field: str) -> JsonDict:
    """The CEL rule that makes the API server check a map's keys as :func:`check_qualified_name` does.

    ``field`` is the manifest path the message names (``spec.serving.podAnnotations``).
    """
    return {
        "rule": f"self.all(k, {_cel_qualified_name('k')})",
        "message": f"{field} keys must be {QUALIFIED_NAMES_WORDS}",
    }


def qualified_keys(field: str) -> JsonDict:
    """``json_schema_extra`` for a map keyed by qualified names (labels, annotations, resources)."""
    return {"x-kubernetes-validations": [qualified_keys_rule(field)]}


# The prefix limit, for string fields whose pattern already checks the rest (CEL indexOf is -1 without "/").
QUALIFIED_PREFIX_RULE: Final[JsonDict] = {
    "rule": f"self.indexOf('/') <= {MAX_QUALIFIED_PREFIX_LENGTH}",
    "message": "spec.serving: the prefix of a qualified name (before '/') is limited to 253 characters",
}


# The shape Kubernetes uses for resource.Quantity: an integer or a string, never a float (floats round-trip
# badly through Go). The CRD marks it x-kubernetes-int-or-string, which is the one place a structural schema
# may use anyOf with types.
Quantity = Annotated[
    int | str,
    PlainValidator(_check_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": MAX_QUANTITY_LENGTH,
        }
    ),
]

ModelId = Annotated[str, Field(min_length=1, max_length=256, pattern=MODEL_PATTERN)]
ModelRevision = Annotated[str, Field(min_length=1, max_length=128, pattern=REVISION_PATTERN)]
QuantizationName = Annotated[str, Field(min_length=1, max_length=64, pattern=QUANTIZATION_PATTERN)]
Image = Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]
AnnotationValue = Annotated[str, Field(max_length=4096)]
# RFC 3339, as metav1.Time serialises ("2026-01-02T03:04:05Z").
Timestamp = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
RevisionId = Annotated[str, Field(min_length=1, max_length=63, pattern=REVISION_ID_PATTERN)]
QualifiedKey = Annotated[str, AfterValidator(check_qualified_name)]
# A label key as a string field (topologyKey, a selector requirement's key, a toleration's key).
LabelKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_QUALIFIED_NAME_LENGTH,
        pattern=QUALIFIED_NAME_PATTERN,
        json_schema_extra={"x-kubernetes-validations": [QUALIFIED_PREFIX_RULE]},
    ),
    AfterValidator(check_qualified_name),
]

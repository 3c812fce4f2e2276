"""Bounded field types shared by the spec and status models.

Every string the API accepts has a maximum length and, where Kubernetes or vLLM gives it a grammar, a pattern.
The same pattern is enforced twice: by pydantic when the operator or ``specdeploy render`` parses an object,
and by the API server (the pattern lands in the CRD). The patterns are therefore written in the common subset
of Python's ``re`` and Go's RE2 (no look-around, no backreferences), anchored at both ends.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

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
# A container image reference: anything without whitespace (the registry checks the rest).
IMAGE_PATTERN = r"^\S+$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# What a Service name must be (RFC 1035 label): it starts with a letter.
RFC1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - the grammar of a key name, not a secret
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A qualified name: label and annotation keys, extended resource names ("nvidia.com/gpu").
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# resource.Quantity as Kubernetes serialises it ("8Gi", "500m", "1", "1e3").
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
# metav1.Condition reason: one CamelCase word.
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
# A revision id as rollout.revision makes it, optionally with a suffix such as "-nospec".
REVISION_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_QUALIFIED_RE = re.compile(QUALIFIED_NAME_PATTERN)
MAX_QUANTITY_LENGTH = 64
MAX_QUALIFIED_NAME_LENGTH = 316


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
    if len(name) > 63 or len(prefix) > 253:
        raise ValueError(f"{value!r}: the name part is limited to 63 characters and the prefix to 253")
    return value


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
Revision = Annotated[str, Field(min_length=1, max_length=128, pattern=REVISION_PATTERN)]
QuantizationName = Annotated[str, Field(min_length=1, max_length=64, pattern=QUANTIZATION_PATTERN)]
Image = Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]
AnnotationValue = Annotated[str, Field(max_length=4096)]
# RFC 3339, as metav1.Time serialises ("2026-01-02T03:04:05Z").
Timestamp = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
RevisionId = Annotated[str, Field(min_length=1, max_length=63, pattern=REVISION_ID_PATTERN)]
QualifiedKey = Annotated[str, AfterValidator(check_qualified_name)]

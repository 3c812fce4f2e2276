"""``spec.serving.affinity``: the core/v1 Affinity types, typed and bounded, so the API server checks them too.

A free-form pass-through would let any size and any shape into etcd, and a typo (``nodeSelectorTerm``) or a wrong
operator would only surface when the operator's Deployment was refused. Here every field has the core/v1 name
(camelCase aliases), so ``model_dump(by_alias=True, exclude_none=True)`` is exactly the JSON the pod spec takes;
every string, list and map is bounded (the bounds below leave room for real scheduling rules of GPU pods and keep
the worst case of the whole block under 256 KiB); and the checks Kubernetes applies to a pod template
(operator and values agree, weights 1-100, label keys and values, matchFields on ``metadata.name``) are written
both as pydantic validators and as CEL rules, so ``kubectl apply`` refuses what the operator would refuse.

Optional lists default to None rather than ``[]``, so a rendered pod carries exactly the fields the user wrote.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from specdeploy.api.base import SpecModel
from specdeploy.api.types import (
    DNS_LABEL_PATTERN,
    DnsSubdomain,
    LabelKey,
    LabelValue,
    check_qualified_keys,
    qualified_keys,
)

# Bounds. Kubernetes has none of its own here; these leave room for any real scheduling rule of GPU pods, and keep
# the whole block under 256 KiB in the worst case (label keys of 317 characters are most of it).
MAX_NODE_TERMS: Final = 4  # nodeSelectorTerms; preferred node terms
MAX_NODE_EXPRESSIONS: Final = 6  # matchExpressions of one node selector term
MAX_NODE_FIELDS: Final = 2  # matchFields of one node selector term
MAX_NODE_VALUES: Final = 16  # values of one node requirement (e.g. a list of GPU products)
MAX_POD_TERMS: Final = 3  # required pod (anti-)affinity terms; preferred ones
MAX_MATCH_LABELS: Final = 4  # matchLabels of one label selector
MAX_SELECTOR_EXPRESSIONS: Final = 4  # matchExpressions of one label selector
MAX_SELECTOR_VALUES: Final = 8  # values of one label selector requirement
MAX_NAMESPACES: Final = 8
MAX_LABEL_KEYS: Final = 4  # matchLabelKeys, mismatchLabelKeys

_WHERE: Final = "spec.serving.affinity"
IN_NEEDS_VALUES: Final = f"{_WHERE}: operator In or NotIn needs at least one value"
EXISTS_TAKES_NO_VALUES: Final = f"{_WHERE}: operator Exists or DoesNotExist takes no values"
GT_TAKES_ONE_INTEGER: Final = f"{_WHERE}: operator Gt or Lt takes exactly one value, an integer"
LABEL_KEYS_NEED_SELECTOR: Final = f"{_WHERE}: matchLabelKeys and mismatchLabelKeys need a labelSelector"
LABEL_KEYS_DISJOINT: Final = f"{_WHERE}: a key must not be in both matchLabelKeys and mismatchLabelKeys"

_IN_RULE: Final[JsonDict] = {
    "rule": "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
    "message": IN_NEEDS_VALUES,
}
_EXISTS_RULE: Final[JsonDict] = {
    "rule": "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
    "message": EXISTS_TAKES_NO_VALUES,
}
_GT_RULE: Final[JsonDict] = {
    "rule": (
        "!(self.operator in ['Gt', 'Lt']) || "
        "(has(self.values) && size(self.values) == 1 && self.values[0].matches('^[0-9]+$'))"
    ),
    "message": GT_TAKES_ONE_INTEGER,
}


_INTEGER: Final = re.compile(r"[0-9]+")


def _check_operator_values(operator: str, values: list[str] | None) -> None:
    """What Kubernetes checks for a selector requirement (values as the scheduler parses them for Gt/Lt)."""
    if operator in ("In", "NotIn") and not values:
        raise ValueError(IN_NEEDS_VALUES)
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(EXISTS_TAKES_NO_VALUES)
    if operator in ("Gt", "Lt") and (values is None or len(values) != 1 or not _INTEGER.fullmatch(values[0])):
        raise ValueError(GT_TAKES_ONE_INTEGER)


class NodeSelectorRequirement(SpecModel):
    """A node label, an operator and values (core/v1 NodeSelectorRequirement in ``matchExpressions``)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_IN_RULE, _EXISTS_RULE, _GT_RULE]})

    key: LabelKey = Field(description="Node label key, e.g. nvidia.com/gpu.product.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="In, NotIn, Exists, DoesNotExist, Gt or Lt (Gt and Lt compare one integer value)."
    )
    values: list[LabelValue] | None = Field(
        None,
        max_length=MAX_NODE_VALUES,
        description="Label values: one or more for In and NotIn, none for Exists and DoesNotExist, one for Gt and Lt.",
    )

    @model_validator(mode="after")
    def _operator_values(self) -> NodeSelectorRequirement:
        _check_operator_values(self.operator, self.values)
        return self


class NodeFieldSelectorRequirement(SpecModel):
    """A node field requirement (core/v1 NodeSelectorRequirement in ``matchFields``): the node's name only."""

    key: Literal["metadata.name"] = Field(description="The node field; Kubernetes supports metadata.name only.")
    operator: Literal["In", "NotIn"] = Field(description="In or NotIn.")
    values: list[DnsSubdomain] = Field(
        min_length=1, max_length=1, description="Exactly one node name, as Kubernetes requires for matchFields."
    )


class NodeSelectorTerm(SpecModel):
    """Requirements a node must all meet (core/v1 NodeSelectorTerm); an empty term matches no node."""

    match_expressions: list[NodeSelectorRequirement] | None = Field(
        None, max_length=MAX_NODE_EXPRESSIONS, description="Requirements on node labels."
    )
    match_fields: list[NodeFieldSelectorRequirement] | None = Field(
        None, max_length=MAX_NODE_FIELDS, description="Requirements on node fields (metadata.name)."
    )


class NodeSelector(SpecModel):
    """Terms of which a node must meet at least one (core/v1 NodeSelector)."""

    node_selector_terms: list[NodeSelectorTerm] = Field(
        min_length=1, max_length=MAX_NODE_TERMS, description="The terms, ORed."
    )


class PreferredSchedulingTerm(SpecModel):
    """A weighted node preference (core/v1 PreferredSchedulingTerm)."""

    weight: int = Field(ge=1, le=100, description="Weight, 1-100, added to a node's score when it matches.")
    preference: NodeSelectorTerm = Field(description="The node selector term.")


class NodeAffinity(SpecModel):
    """Which nodes the pods may or should run on (core/v1 NodeAffinity), e.g. by GPU product label."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        None, description="Nodes the pods must run on."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = Field(
        None, max_length=MAX_NODE_TERMS, description="Nodes the pods should run on, by weight."
    )


class LabelSelectorRequirement(SpecModel):
    """A label, an operator and values (metav1 LabelSelectorRequirement)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_IN_RULE, _EXISTS_RULE]})

    key: LabelKey = Field(description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[LabelValue] | None = Field(
        None,
        max_length=MAX_SELECTOR_VALUES,
        description="Label values: one or more for In and NotIn, none for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _operator_values(self) -> LabelSelectorRequirement:
        _check_operator_values(self.operator, self.values)
        return self


class LabelSelector(SpecModel):
    """Selects objects by label (metav1 LabelSelector); both parts are ANDed, an empty selector matches all."""

    match_labels: dict[str, LabelValue] | None = Field(
        None,
        max_length=MAX_MATCH_LABELS,
        description="Labels the object must carry with exactly these values.",
        json_schema_extra=qualified_keys(f"{_WHERE} matchLabels"),
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        None, max_length=MAX_SELECTOR_EXPRESSIONS, description="Requirements on labels."
    )

    _keys = field_validator("match_labels")(check_qualified_keys)


Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]


class PodAffinityTerm(SpecModel):
    """Pods to run near (or away from), within a topology domain (core/v1 PodAffinityTerm)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.labelSelector) || (!has(self.matchLabelKeys) && !has(self.mismatchLabelKeys))",
                    "message": LABEL_KEYS_NEED_SELECTOR,
                },
                {
                    "rule": (
                        "!has(self.matchLabelKeys) || !has(self.mismatchLabelKeys) || "
                        "!self.matchLabelKeys.exists(k, k in self.mismatchLabelKeys)"
                    ),
                    "message": LABEL_KEYS_DISJOINT,
                },
            ]
        }
    )

    label_selector: LabelSelector | None = Field(None, description="The pods this term is about.")
    namespace_selector: LabelSelector | None = Field(
        None, description="Namespaces to look in, by label; with namespaces, the union of both."
    )
    namespaces: list[Namespace] | None = Field(
        None, max_length=MAX_NAMESPACES, description="Namespaces to look in; default: the pod's own namespace."
    )
    topology_key: LabelKey = Field(
        description="Node label that defines the domain: kubernetes.io/hostname, topology.kubernetes.io/zone, ..."
    )
    match_label_keys: list[LabelKey] | None = Field(
        None,
        max_length=MAX_LABEL_KEYS,
        description="Label keys whose values are taken from the incoming pod and added to labelSelector with In.",
    )
    mismatch_label_keys: list[LabelKey] | None = Field(
        None,
        max_length=MAX_LABEL_KEYS,
        description="Label keys whose values are taken from the incoming pod and added to labelSelector with NotIn.",
    )

    @model_validator(mode="after")
    def _label_keys(self) -> PodAffinityTerm:
        if (self.match_label_keys or self.mismatch_label_keys) and self.label_selector is None:
            raise ValueError(LABEL_KEYS_NEED_SELECTOR)
        if set(self.match_label_keys or ()) & set(self.mismatch_label_keys or ()):
            raise ValueError(LABEL_KEYS_DISJOINT)
        return self


class WeightedPodAffinityTerm(SpecModel):
    """A weighted pod affinity term (core/v1 WeightedPodAffinityTerm)."""

    weight: int = Field(ge=1, le=100, description="Weight, 1-100, added to a node's score when the term matches.")
    pod_affinity_term: PodAffinityTerm = Field(description="The pod affinity term.")


class PodAffinity(SpecModel):
    """Run near pods that match (core/v1 PodAffinity)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        None, max_length=MAX_POD_TERMS, description="Terms every node chosen must meet."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        None, max_length=MAX_POD_TERMS, description="Terms a node should meet, by weight."
    )


class PodAntiAffinity(SpecModel):
    """Run away from pods that match (core/v1 PodAntiAffinity), e.g. one replica per node or per zone."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        None, max_length=MAX_POD_TERMS, description="Terms no node chosen may meet."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        None, max_length=MAX_POD_TERMS, description="Terms a node should not meet, by weight."
    )


class Affinity(SpecModel):
    """Node and pod affinity of the vLLM pods (core/v1 Affinity), passed to the pod template as written."""

    node_affinity: NodeAffinity | None = Field(None, description="core/v1 NodeAffinity, e.g. to pick a GPU model.")
    pod_affinity: PodAffinity | None = Field(None, description="core/v1 PodAffinity.")
    pod_anti_affinity: PodAntiAffinity | None = Field(
        None, description="core/v1 PodAntiAffinity, e.g. to spread replicas over nodes."
    )


__all__ = [
    "Affinity",
    "LabelSelector",
    "LabelSelectorRequirement",
    "NodeAffinity",
    "NodeFieldSelectorRequirement",
    "NodeSelector",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "PodAffinity",
    "PodAffinityTerm",
    "PodAntiAffinity",
    "PreferredSchedulingTerm",
    "WeightedPodAffinityTerm",
]

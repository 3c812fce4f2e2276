"""``spec.serving.affinity`` is typed like core/v1: what a user writes reaches the pod unchanged, and what Kubernetes
would refuse in a pod template (or what could never schedule) is refused when the spec is parsed, naming the field.

The field names are checked against the Kubernetes Python client's generated models (built from the API server's
own OpenAPI), and the rendered affinity goes through that client's deserializer and back without losing a field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes.client as k8s
import pytest
from pydantic import BaseModel, ValidationError

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api import affinity as api
from specdeploy.api.errors import error_lines
from specdeploy.render import owner_for, render_deployment

BASE: dict[str, Any] = {"target": {"model": "org/target", "tensorParallelSize": 8}, "draft": {"model": "org/draft"}}

# Labels that NVIDIA GPU feature discovery puts on GPU nodes (nvidia.com/gpu.memory is in MiB); pick H100 or H200
# nodes with at least 80 GB, never a node that is cordoned for maintenance, and prefer one zone.
GPU_NODE_AFFINITY: dict[str, Any] = {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {
                        "key": "nvidia.com/gpu.product",
                        "operator": "In",
                        "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-NVL", "NVIDIA-H200"],
                    },
                    {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["79000"]},
                    {"key": "example.com/maintenance", "operator": "DoesNotExist"},
                ]
            }
        ]
    },
    "preferredDuringSchedulingIgnoredDuringExecution": [
        {
            "weight": 50,
            "preference": {
                "matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}]
            },
        }
    ],
}
# One replica per node (required), spread over zones when possible (preferred), matched on the operator's labels.
SPREAD: dict[str, Any] = {
    "requiredDuringSchedulingIgnoredDuringExecution": [
        {
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "coder"}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ],
    "preferredDuringSchedulingIgnoredDuringExecution": [
        {
            "weight": 100,
            "podAffinityTerm": {
                "labelSelector": {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["server"]},
                    ]
                },
                "matchLabelKeys": ["pod-template-hash"],
                "topologyKey": "topology.kubernetes.io/zone",
            },
        }
    ],
}
# Co-locate with a cache in another namespace chosen by label.
COLOCATE: dict[str, Any] = {
    "requiredDuringSchedulingIgnoredDuringExecution": [
        {
            "labelSelector": {"matchLabels": {"app": "kv-cache"}},
            "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["inference"]}]},
            "namespaces": ["cache"],
            "topologyKey": "kubernetes.io/hostname",
        }
    ]
}


def spec_with_affinity(affinity: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["serving"] = {"affinity": copy.deepcopy(affinity)}
    return raw


def rendered_affinity(affinity: dict[str, Any]) -> Any:
    spec = SpeculativeDeploymentSpec.model_validate(spec_with_affinity(affinity))
    owner = owner_for("coder", "9b0e2a4c-1111-2222-3333-444455556666")
    dep = render_deployment("coder", "llm", spec, "0123456789", owner=owner)
    return dep["spec"]["template"]["spec"]["affinity"]


def errors_of(affinity: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        SpeculativeDeploymentSpec.model_validate(spec_with_affinity(affinity))
    return error_lines(info.value, prefix=["spec"])


def through_the_kubernetes_client(affinity: Any) -> Any:
    """Deserialize into the client's V1Affinity and serialize back: fields it does not know are dropped."""
    client = k8s.ApiClient()
    return client.sanitize_for_serialization(client.deserialize(json.dumps(affinity), "V1Affinity", "application/json"))


@pytest.mark.parametrize(
    "affinity",
    [
        {"nodeAffinity": GPU_NODE_AFFINITY},
        {"podAntiAffinity": SPREAD},
        {"podAffinity": COLOCATE, "podAntiAffinity": SPREAD, "nodeAffinity": GPU_NODE_AFFINITY},
    ],
    ids=["gpu-node-affinity", "anti-affinity-spread", "all-three"],
)
def test_affinity_reaches_the_pod_as_core_v1_json(affinity: dict[str, Any]) -> None:
    rendered = rendered_affinity(affinity)
    assert rendered == affinity
    assert through_the_kubernetes_client(rendered) == affinity


def test_empty_lists_the_user_wrote_are_kept() -> None:
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert rendered_affinity(affinity) == affinity


# Every model here against the client model it stands for: the same JSON field names, none missing, none invented.
MODELS: list[tuple[type[BaseModel], type[Any]]] = [
    (api.Affinity, k8s.V1Affinity),
    (api.NodeAffinity, k8s.V1NodeAffinity),
    (api.NodeSelector, k8s.V1NodeSelector),
    (api.NodeSelectorTerm, k8s.V1NodeSelectorTerm),
    (api.NodeSelectorRequirement, k8s.V1NodeSelectorRequirement),
    (api.NodeFieldSelectorRequirement, k8s.V1NodeSelectorRequirement),
    (api.PreferredSchedulingTerm, k8s.V1PreferredSchedulingTerm),
    (api.PodAffinity, k8s.V1PodAffinity),
    (api.PodAntiAffinity, k8s.V1PodAntiAffinity),
    (api.PodAffinityTerm, k8s.V1PodAffinityTerm),
    (api.WeightedPodAffinityTerm, k8s.V1WeightedPodAffinityTerm),
    (api.LabelSelector, k8s.V1LabelSelector),
    (api.LabelSelectorRequirement, k8s.V1LabelSelectorRequirement),
]


@pytest.mark.parametrize(("model", "client_model"), MODELS, ids=[m.__name__ for m, _ in MODELS])
def test_field_names_are_exactly_core_v1(model: type[BaseModel], client_model: type[Any]) -> None:
    ours = {field.alias for field in model.model_fields.values()}
    assert ours == set(client_model.attribute_map.values())


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown operator",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "gpu", "operator": "Contains", "values": ["h100"]}]}
                    ]
                }
            }
        },
        "spec.serving.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].operator",
    ),
    (
        "In without values",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "In"}]}]
                }
            }
        },
        api.IN_NEEDS_VALUES,
    ),
    (
        "Exists with values",
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        api.EXISTS_TAKES_NO_VALUES,
    ),
    (
        "Gt with a word",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["lots"]}]}
                    ]
                }
            }
        },
        api.GT_TAKES_ONE_INTEGER,
    ),
    (
        "no node selector terms",
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
        "spec.serving.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
    ),
    (
        "matchFields on a label",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["x"]}]}
                    ]
                }
            }
        },
        "nodeSelectorTerms[0].matchFields[0].key",
    ),
    (
        "weight 0",
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 0, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
                ]
            }
        },
        "spec.serving.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
    ),
    (
        "topologyKey missing",
        {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}},
        "spec.serving.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
    ),
    (
        "typo in a field name",
        {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecutions": []}},
        "spec.serving.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecutions",
    ),
    (
        "matchLabelKeys without a selector",
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"matchLabelKeys": ["pod-template-hash"], "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
        api.LABEL_KEYS_NEED_SELECTOR,
    ),
    (
        "a key in matchLabelKeys and mismatchLabelKeys",
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {},
                        "matchLabelKeys": ["a"],
                        "mismatchLabelKeys": ["a"],
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        api.LABEL_KEYS_DISJOINT,
    ),
    (
        "matchLabels key that is not a label key",
        {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"bad key": "x"}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
        "spec.serving.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels",
    ),
    (
        "a 1 MiB value",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["x" * 1024 * 1024]}]}
                    ]
                }
            }
        },
        "nodeSelectorTerms[0].matchExpressions[0].values[0]",
    ),
    (
        "too many values",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "gpu",
                                    "operator": "In",
                                    "values": [f"v{i}" for i in range(api.MAX_NODE_VALUES + 1)],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "nodeSelectorTerms[0].matchExpressions[0].values",
    ),
    (
        "topologyKey prefix over 253",
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {}, "topologyKey": ("a" * 60 + ".") * 4 + "abcdefghij/zone"}
                ]
            }
        },
        "requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
    ),
]


@pytest.mark.parametrize(("label", "affinity", "expect"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_kubernetes_would_refuse_is_refused_naming_the_field(
    label: str, affinity: dict[str, Any], expect: str
) -> None:
    lines = errors_of(affinity)
    assert any(expect in line for line in lines), f"{label}: {lines}"
    assert all(len(line) < 600 for line in lines), "an oversized input must not be echoed whole"


def test_operator_rules_are_the_same_in_pydantic_and_in_the_crd() -> None:
    # The messages pydantic raises are the messages of the CEL rules the API server runs (one text, two enforcers).
    schema = api.NodeSelectorRequirement.model_json_schema()
    messages = [rule["message"] for rule in schema["x-kubernetes-validations"]]
    assert messages == [api.IN_NEEDS_VALUES, api.EXISTS_TAKES_NO_VALUES, api.GT_TAKES_ONE_INTEGER]
    schema = api.LabelSelectorRequirement.model_json_schema()
    assert [rule["message"] for rule in schema["x-kubernetes-validations"]] == messages[:2]

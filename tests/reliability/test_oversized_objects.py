"""Oversized SpeculativeDeployments are refused by the API server itself, so no object can bloat etcd.

The schema bounds (checked statically by ``tests/unit/api/test_schema_bounds.py``) only matter if the API server
enforces them: each case here sends a real object, one bound over, at ``kubectl apply`` and expects a refusal that
names the field. The other side: the largest object the bounds allow in the maps and in affinity (every key 317
characters, every list full) is stored, within the API server's CEL runtime budget, and parses and renders as sent.
Shell metacharacters, ``../`` and option-like model ids are refused by ``tests/integration/test_invalid_specs.py``
(not repeated here).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api import affinity as limits
from specdeploy.render import owner_for, render_deployment
from tests.harness.kubectl import Kubectl
from tests.harness.specs import manifest

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BASE: dict[str, Any] = manifest(
    "big",
    {
        "target": {"model": "meta-llama/Llama-3.1-8B-Instruct"},
        "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
        "validation": {"policy": "Skip"},
    },
)


def serving(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"].setdefault("serving", {}).update(fields)

    return mutate


REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("10,000 extraArgs", serving(extraArgs=[f"--x{i}" for i in range(10_000)]), "spec.serving.extraArgs"),
    ("one 1 MiB extraArg", serving(extraArgs=["--chat-template", "x" * MIB]), "spec.serving.extraArgs"),
    ("1 MiB podAnnotations value", serving(podAnnotations={"example.com/a": "v" * MIB}), "spec.serving.podAnnotations"),
    (
        "10,000 podAnnotations",
        serving(podAnnotations={f"example.com/a{i}": "v" for i in range(10_000)}),
        "spec.serving.podAnnotations",
    ),
    ("10,000 env", serving(env=[{"name": f"V{i}", "value": "1"} for i in range(10_000)]), "spec.serving.env"),
    ("1 MiB env value", serving(env=[{"name": "BIG", "value": "x" * MIB}]), "spec.serving.env"),
    ("10,000 tolerations", serving(tolerations=[{"key": f"k{i}"} for i in range(10_000)]), "spec.serving.tolerations"),
    # Map keys: each map's CEL rule bounds them (qualified names, at most 317 characters), as pydantic does.
    ("100 KB podAnnotations key", serving(podAnnotations={"k" * 100_000: "v"}), "spec.serving.podAnnotations"),
    # affinity is typed like core/v1, every string, list and map inside it bounded.
    (
        "1 MiB inside nodeAffinity",
        serving(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["x" * MIB]}]}
                        ]
                    }
                }
            }
        ),
        "spec.serving.affinity.nodeAffinity",
    ),
    (
        "100 KB matchLabels key in podAntiAffinity",
        serving(
            affinity={
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"k" * 100_000: "v"}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            }
        ),
        "spec.serving.affinity.podAntiAffinity",
    ),
    (
        "10,000 node selector terms",
        serving(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": f"k{i}", "operator": "Exists"}]} for i in range(10_000)
                        ]
                    }
                }
            }
        ),
        "spec.serving.affinity.nodeAffinity",
    ),
]


def attempt(kubectl: Kubectl, namespace: str, label: str, mutate: Callable[[dict[str, Any]], None]) -> str | None:
    """Create the oversized object; return the refusal message, or None when the API server stored it."""
    obj = copy.deepcopy(BASE)
    mutate(obj)
    text = yaml.safe_dump(obj)
    started = time.monotonic()
    proc = kubectl.run("create", "-n", namespace, "-f", "-", stdin=text, check=False, timeout=120)
    took = time.monotonic() - started
    stored = kubectl.get("sd", "big", namespace) is not None
    print(f"  {label:<42} {len(text) / 1024:>6.0f} KiB sent  {'STORED' if stored else 'refused'} in {took:.2f} s")
    if stored:
        kubectl.run("delete", "sd", "big", "-n", namespace, "--wait=false", check=False)
        return None
    assert proc.returncode != 0
    return proc.stderr


def test_oversized_objects_are_refused_naming_the_field(kubectl: Kubectl, crd: str, namespace: str) -> None:
    print()
    problems = []
    for label, mutate, field in REFUSED:
        refusal = attempt(kubectl, namespace, label, mutate)
        if refusal is None:
            problems.append(f"{label}: stored")
        elif field not in refusal:
            problems.append(f"{label}: the refusal does not name {field}: {refusal[:500]}")
    assert not problems, "\n".join(problems)


def _key(tag: str, i: int) -> str:
    """A distinct qualified name of the greatest length: a 253-character prefix, "/", a 63-character name."""
    prefix = ".".join([f"{tag}{i:03d}".ljust(63, "a"), "b" * 63, "c" * 63, "d" * 61])
    return f"{prefix}/{f'n{i:03d}'.ljust(63, 'x')}"


def _value(i: int) -> str:
    return f"v{i:03d}".ljust(63, "z")


def _requirement(tag: str, i: int, values: int) -> dict[str, Any]:
    return {"key": _key(tag, i), "operator": "In", "values": [_value(j) for j in range(values)]}


def _selector(tag: str) -> dict[str, Any]:
    return {
        "matchLabels": {_key(f"{tag}l", i): _value(i) for i in range(limits.MAX_MATCH_LABELS)},
        "matchExpressions": [
            _requirement(f"{tag}e", i, limits.MAX_SELECTOR_VALUES) for i in range(limits.MAX_SELECTOR_EXPRESSIONS)
        ],
    }


def _pod_term(tag: str) -> dict[str, Any]:
    return {
        "labelSelector": _selector(f"{tag}s"),
        "namespaceSelector": _selector(f"{tag}n"),
        "namespaces": [f"ns{i:03d}".ljust(63, "q") for i in range(limits.MAX_NAMESPACES)],
        "topologyKey": _key(f"{tag}t", 0),
        "matchLabelKeys": [_key(f"{tag}m", i) for i in range(limits.MAX_LABEL_KEYS)],
        "mismatchLabelKeys": [_key(f"{tag}x", i) for i in range(limits.MAX_LABEL_KEYS)],
    }


def _pod_terms(tag: str) -> dict[str, Any]:
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            _pod_term(f"{tag}r{i}") for i in range(limits.MAX_POD_TERMS)
        ],
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": _pod_term(f"{tag}p{i}")} for i in range(limits.MAX_POD_TERMS)
        ],
    }


def _node_term(tag: str) -> dict[str, Any]:
    return {
        "matchExpressions": [
            _requirement(f"{tag}e", i, limits.MAX_NODE_VALUES) for i in range(limits.MAX_NODE_EXPRESSIONS)
        ],
        "matchFields": [
            {"key": "metadata.name", "operator": "NotIn", "values": [f"node{i}".ljust(253, "n")]}
            for i in range(limits.MAX_NODE_FIELDS)
        ],
    }


def largest_serving() -> dict[str, Any]:
    """spec.serving with every map and the whole affinity at their bounds."""
    return {
        "podAnnotations": {_key("an", i): "a" * 4096 for i in range(64)},
        "podLabels": {_key("lb", i): _value(i) for i in range(32)},
        "nodeSelector": {_key("ns", i): _value(i) for i in range(32)},
        "resources": {
            "requests": {_key("rq", i): "1" for i in range(16)},
            "limits": {_key("lm", i): "1" for i in range(16)},
        },
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [_node_term(f"r{i}") for i in range(limits.MAX_NODE_TERMS)]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": _node_term(f"p{i}")} for i in range(limits.MAX_NODE_TERMS)
                ],
            },
            "podAffinity": _pod_terms("a"),
            "podAntiAffinity": _pod_terms("z"),
        },
    }


def test_the_largest_maps_and_affinity_are_stored_and_render_as_sent(
    kubectl: Kubectl, crd: str, namespace: str
) -> None:
    obj = copy.deepcopy(BASE)
    obj["spec"]["serving"] = largest_serving()
    text = yaml.safe_dump(obj)
    started = time.monotonic()
    proc = kubectl.run("create", "-n", namespace, "-f", "-", stdin=text, check=False, timeout=120)
    took = time.monotonic() - started
    print(f"\n  largest maps and affinity: {len(text) / 1024:.0f} KiB sent, created in {took:.2f} s")
    assert proc.returncode == 0, proc.stderr[:2000]
    stored = kubectl.get("sd", "big", namespace)
    assert stored["spec"]["serving"]["affinity"] == obj["spec"]["serving"]["affinity"]
    spec = SpeculativeDeploymentSpec.model_validate(stored["spec"])
    deployment = render_deployment("big", namespace, spec, "0123456789", owner=owner_for("big", "uid"))
    assert deployment["spec"]["template"]["spec"]["affinity"] == obj["spec"]["serving"]["affinity"]

"""Oversized SpeculativeDeployments are refused by the API server itself, so no object can bloat etcd.

The schema bounds (checked statically by ``test_schema_bounds.py``) only matter if the API server enforces them:
each case here sends a real object, one bound over, at ``kubectl apply`` and expects a refusal that names the
field. Shell metacharacters, ``../`` and option-like model ids are refused by ``tests/integration/
test_invalid_specs.py`` (not repeated here).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.harness.kubectl import Kubectl

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BASE: dict[str, Any] = {
    "apiVersion": "specdeploy.io/v1alpha1",
    "kind": "SpeculativeDeployment",
    "metadata": {"name": "big"},
    "spec": {
        "target": {"model": "meta-llama/Llama-3.1-8B-Instruct"},
        "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
        "validation": {"policy": "Skip"},
    },
}


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
]

# Found by this suite, not fixed yet (spec schema, owned by the API module): strict xfails, so that the fix
# turns them into failures to be promoted into REFUSED.
GAPS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    # Map keys carry no bound in the CRD: pydantic checks them (qualified names, <= 316 characters), the API
    # server does not, so a 100 KB key is stored and the operator then cannot parse the object.
    ("100 KB podAnnotations key", serving(podAnnotations={"k" * 100_000: "v"}), "spec.serving.podAnnotations"),
    # affinity.* is x-kubernetes-preserve-unknown-fields with only maxProperties: its inside is unbounded.
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
        "spec.serving.affinity",
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
    print(f"  {label:<28} {len(text) / 1024:>6.0f} KiB sent  {'STORED' if stored else 'refused'} in {took:.2f} s")
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


@pytest.mark.xfail(strict=True, reason="known gap: unbounded map keys and free-form affinity in the CRD")
@pytest.mark.parametrize(("label", "mutate", "field"), GAPS, ids=[g[0] for g in GAPS])
def test_known_gap_is_refused(
    kubectl: Kubectl, crd: str, namespace: str, label: str, mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    print()
    refusal = attempt(kubectl, namespace, label, mutate)
    assert refusal is not None and field in refusal, f"{label}: stored by the API server"

"""Invalid SpeculativeDeployments are refused by the API server itself (OpenAPI schema and CEL rules) at
``kubectl apply`` time, with a message that names the field. No operator needs to be running."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError
from tests.harness.kubectl import Kubectl
from tests.harness.specs import manifest

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.affinity import IN_NEEDS_VALUES, LABEL_KEYS_NEED_SELECTOR

pytestmark = pytest.mark.integration

BASE: dict[str, Any] = manifest(
    "bad",
    {
        "target": {"model": "meta-llama/Llama-3.1-8B-Instruct"},
        "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
    },
)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        keys = path.split(".")
        node = obj
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is _DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value

    return apply


_DELETE = object()


def _gpu_term(operator: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": operator, "values": ["NVIDIA-H100"]}]}


CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("TP above 64", _set("spec.target.tensorParallelSize", 65), ["spec.target.tensorParallelSize"]),
    ("TP zero", _set("spec.target.tensorParallelSize", 0), ["spec.target.tensorParallelSize"]),
    ("K above 16", _set("spec.speculation.numSpeculativeTokens", 17), ["spec.speculation.numSpeculativeTokens"]),
    ("K zero", _set("spec.speculation.numSpeculativeTokens", 0), ["spec.speculation.numSpeculativeTokens"]),
    ("unknown method", _set("spec.speculation.method", "lookahead"), ["spec.speculation.method"]),
    ("unknown dtype", _set("spec.target.dtype", "int3"), ["spec.target.dtype"]),
    ("missing target", _set("spec.target", _DELETE), ["spec.target"]),
    ("empty model", _set("spec.target.model", ""), ["spec.target.model"]),
    ("rate above 1", _set("spec.rollback.minAcceptanceRate", 1.5), ["spec.rollback.minAcceptanceRate"]),
    ("negative replicas", _set("spec.replicas", -1), ["spec.replicas"]),
    ("unknown policy", _set("spec.validation.policy", "Maybe"), ["spec.validation.policy"]),
    ("unknown action", _set("spec.rollback.action", "Panic"), ["spec.rollback.action"]),
    ("zero windows", _set("spec.rollback.consecutiveWindows", 0), ["spec.rollback.consecutiveWindows"]),
    ("draft missing for draft_model", _set("spec.draft", _DELETE), ["spec.draft"]),
    (
        "draft given for ngram",
        _set("spec.speculation", {"method": "ngram", "promptLookupMax": 4}),
        ["spec.draft"],
    ),
    (
        "heterogeneous vocabulary for eagle3",
        _set("spec.speculation", {"method": "eagle3", "heterogeneousVocab": True}),
        ["spec.speculation.heterogeneousVocab is only for method draft_model"],
    ),
    ("draft given for suffix", _set("spec.speculation", {"method": "suffix"}), ["spec.draft"]),
    (
        "suffix knob for ngram",
        _set("spec.speculation", {"method": "ngram", "suffixDecodingMaxTreeDepth": 8}),
        ["spec.speculation.suffixDecoding* fields are only for method suffix"],
    ),
    (
        "suffix probability above 1",
        _set("spec.speculation", {"method": "suffix", "suffixDecodingMinTokenProb": 1.5}),
        ["spec.speculation.suffixDecodingMinTokenProb"],
    ),
    ("model with shell metacharacters", _set("spec.target.model", "org/model;rm -rf /"), ["spec.target.model"]),
    ("model as an option", _set("spec.target.model", "--trust-remote-code"), ["spec.target.model"]),
    ("path traversal", _set("spec.draft.model", "/models/../etc/passwd"), ["spec.draft.model"]),
    ("oversized model id", _set("spec.target.model", "a/" + "b" * 400), ["spec.target.model"]),
    ("port out of range", _set("spec.serving.port", 70000), ["spec.serving.port"]),
    ("prometheus without url", _set("spec.metrics", {"source": "Prometheus"}), ["spec.metrics"]),
    (
        "over-long annotation key",
        _set("spec.serving.podAnnotations", {"example.com/" + "k" * 400: "v"}),
        ["spec.serving.podAnnotations", "keys must be qualified names"],
    ),
    (
        "unknown affinity operator",
        _set(
            "spec.serving.affinity",
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [_gpu_term("Has")]}
                }
            },
        ),
        [
            "spec.serving.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].operator",
            "Unsupported value",
        ],
    ),
    (
        "affinity In without values",
        _set(
            "spec.serving.affinity",
            {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 10,
                            "preference": {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In"}]},
                        }
                    ]
                }
            },
        ),
        ["spec.serving.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]", IN_NEEDS_VALUES],
    ),
    (
        "matchLabelKeys without labelSelector",
        _set(
            "spec.serving.affinity",
            {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"matchLabelKeys": ["pod-template-hash"], "topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            },
        ),
        [
            "spec.serving.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]",
            LABEL_KEYS_NEED_SELECTOR,
        ],
    ),
]


@pytest.mark.parametrize(("label", "mutate", "fields"), CASES, ids=[c[0] for c in CASES])
def test_refused_at_apply_naming_the_field(
    kubectl: Kubectl, crd: str, namespace: str, label: str, mutate: Callable[[dict[str, Any]], None], fields: list[str]
) -> None:
    obj = copy.deepcopy(BASE)
    mutate(obj)
    proc = kubectl.apply(obj, "-n", namespace, "--validate=strict", check=False)
    assert proc.returncode != 0, f"{label}: the API server accepted it"
    assert kubectl.get("sd", "bad", namespace) is None
    for f in fields:
        assert f in proc.stderr, f"{label}: error does not name {f}:\n{proc.stderr}"


def test_model_free_methods_are_accepted_without_a_draft(kubectl: Kubectl, crd: str, namespace: str) -> None:
    obj = copy.deepcopy(BASE)
    del obj["spec"]["draft"]
    obj["spec"]["speculation"] = {
        "method": "suffix",
        "suffixDecodingMaxTreeDepth": 24,
        "suffixDecodingMinTokenProb": 0.1,
    }
    kubectl.apply(obj, "-n", namespace, "--validate=strict")
    stored = kubectl.get("sd", "bad", namespace)
    assert stored is not None and stored["spec"]["speculation"]["suffixDecodingMaxTreeDepth"] == 24
    obj["spec"]["speculation"] = {"method": "ngram_gpu", "promptLookupMax": 4}
    kubectl.apply(obj, "-n", namespace, "--validate=strict")
    kubectl.run("delete", "sd", "bad", "-n", namespace)


def test_unknown_field_is_refused_under_strict_validation(kubectl: Kubectl, crd: str, namespace: str) -> None:
    obj = copy.deepcopy(BASE)
    obj["spec"]["target"]["tensorParallelism"] = 4  # a typo of tensorParallelSize
    proc = kubectl.apply(obj, "-n", namespace, "--validate=strict", check=False)
    assert proc.returncode != 0
    assert "tensorParallelism" in proc.stderr


def test_the_valid_base_is_accepted_with_defaults(kubectl: Kubectl, crd: str, namespace: str) -> None:
    kubectl.apply(copy.deepcopy(BASE), "-n", namespace, "--validate=strict")
    obj = kubectl.get("sd", "bad", namespace)
    spec = obj["spec"]
    assert spec["speculation"]["method"] == "draft_model"
    # k has no schema default (it depends on the method: 4, or 1 for mtp); the operator's models fill it in.
    assert "numSpeculativeTokens" not in spec["speculation"]
    assert SpeculativeDeploymentSpec.model_validate(spec).speculation.num_speculative_tokens == 4
    # heterogeneousVocab has no schema default either: objects that do not use it are stored as before it existed.
    assert "heterogeneousVocab" not in spec["speculation"]
    assert spec["target"]["tensorParallelSize"] == 1
    assert spec["rollback"]["minAcceptanceRate"] == 0.5
    assert spec["validation"]["policy"] == "Enforce"
    explain = kubectl.run("explain", "sd.spec.rollback").stdout
    assert "minAcceptanceRate" in explain and "consecutiveWindows" in explain


# Keys at the edges of Kubernetes' qualified-name grammar: the API server (CEL rule on the map) and pydantic (what
# the operator parses) must give the same verdict on each, or a stored object could be one the operator cannot read.
_PREFIX_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
EDGE_KEYS: list[tuple[str, bool]] = [
    ("app", True),
    ("nvidia.com/gpu.product", True),
    ("a" * 63, True),
    ("a" * 64, False),  # the name part is limited to 63
    (f"{_PREFIX_253}/{'n' * 63}", True),  # 253 + "/" + 63 = 317, the longest key there is
    (f"{_PREFIX_253}e/n", False),  # a 254-character prefix
    ("Example.com/a", False),  # the prefix is a lowercase DNS subdomain
    ("a/b/c", False),
    ("/a", False),
    ("-a", False),
    ("a_", False),
    ("bad key", False),
    ("", False),
    ("k" * 100_000, False),
]


def _pydantic_accepts(key: str) -> bool:
    try:
        SpeculativeDeploymentSpec.model_validate({**BASE["spec"], "serving": {"podLabels": {key: "v"}}})
    except ValidationError:
        return False
    return True


def test_the_api_server_and_pydantic_agree_on_map_keys(kubectl: Kubectl, crd: str, namespace: str) -> None:
    disagreements = []
    for key, valid in EDGE_KEYS:
        obj = copy.deepcopy(BASE)
        obj["spec"]["serving"] = {"podLabels": {key: "v"}}
        proc = kubectl.apply(obj, "-n", namespace, "--dry-run=server", check=False)
        server = proc.returncode == 0
        shown = key if len(key) < 40 else f"{key[:20]}...({len(key)} characters)"
        if server != valid or _pydantic_accepts(key) != valid:
            disagreements.append(f"{shown!r}: expected {valid}, API server {server}, pydantic {_pydantic_accepts(key)}")
        if not server and "spec.serving.podLabels" not in proc.stderr:
            disagreements.append(f"{shown!r}: the refusal does not name spec.serving.podLabels: {proc.stderr[:300]}")
    assert disagreements == [], "\n".join(disagreements)

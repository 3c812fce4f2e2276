"""The generated CRD: a structural schema the API server accepts, fully described, bounded, with the same defaults.

The API server refuses a CRD whose schema is not structural, and its CEL cost estimator refuses rules over
unbounded strings and lists; `kubectl explain` shows nothing for an undocumented field. These tests check the
generated schema for all of that, and that the defaults the API server fills in are exactly pydantic's (so an
object read back from the cluster hashes to the same revision as the manifest the user wrote).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from specdeploy.api import GROUP, KIND, PLURAL, VERSION, SpeculativeDeploymentSpec
from specdeploy.api.crd import build_crd
from specdeploy.api.revision import revision_id
from specdeploy.api.types import MAX_QUALIFIED_NAME_LENGTH, QUALIFIED_NAME_PATTERN

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
FORBIDDEN_KEYS = {"$ref", "$defs", "definitions", "allOf", "oneOf", "not", "title", "const", "propertyNames"}


def schema() -> dict[str, Any]:
    version = build_crd()["spec"]["versions"][0]
    root: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return root


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_names_scope_and_subresources() -> None:
    crd = build_crd()
    assert crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"]) == (KIND, PLURAL)
    assert set(names["shortNames"]) == {"sd", "specdeploy"}
    assert "specdeploy" in names["categories"]
    assert crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
    assert version["subresources"] == {
        "status": {},
        # Issue 15: kubectl scale, HPA and KEDA go through /scale; the selector is a string in status.
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert schema()["properties"]["status"]["properties"]["selector"]["type"] == "string"


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        assert not FORBIDDEN_KEYS & node.keys(), f"{path}: {FORBIDDEN_KEYS & node.keys()}"
        assert node.get("additionalProperties") is not False, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path}: no type"
        if "anyOf" in node:
            # The only anyOf a structural schema may carry types in: the int-or-string pair.
            assert node.get("x-kubernetes-int-or-string") is True, path
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert "type" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "nullable" not in node, path


def test_every_property_has_a_description() -> None:
    missing = [
        path
        for path, node in walk(schema())
        if path
        and path != ".metadata"
        and not str(node.get("description", "")).strip()
        and not path.endswith(("[]", "{}"))
    ]
    assert missing == []


def test_every_string_list_and_map_is_bounded() -> None:
    for path, node in walk(schema()):
        if path in (".apiVersion", ".kind"):
            continue  # checked by the API server itself before the schema is consulted
        if node.get("type") == "string" or node.get("x-kubernetes-int-or-string"):
            assert "maxLength" in node or "enum" in node, f"{path}: string without maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: array without maxItems"
        if node.get("type") == "object" and (
            "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
        ):
            assert "maxProperties" in node, f"{path}: map without maxProperties"


def test_no_field_preserves_unknown_fields() -> None:
    # Affinity is typed like core/v1: nothing in the object escapes the schema's bounds.
    preserved = [path for path, node in walk(schema()) if node.get("x-kubernetes-preserve-unknown-fields")]
    assert preserved == []


def test_every_map_checks_its_keys_as_pydantic_does() -> None:
    maps = {path: node for path, node in walk(schema()) if isinstance(node.get("additionalProperties"), dict)}
    assert {
        ".spec.serving.resources.requests",
        ".spec.serving.resources.limits",
        ".spec.serving.nodeSelector",
        ".spec.serving.podAnnotations",
        ".spec.serving.podLabels",
        ".spec.serving.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[].labelSelector"
        ".matchLabels",
    } <= maps.keys()
    for path, node in maps.items():
        (rule,) = node["x-kubernetes-validations"]
        # size() comes first so that CEL stops before the regex on an oversized key (bounded runtime cost).
        assert rule["rule"].startswith(f"self.all(k, k.size() <= {MAX_QUALIFIED_NAME_LENGTH} && "), path
        assert f"k.matches('{QUALIFIED_NAME_PATTERN}')" in rule["rule"], path
        field = path.lstrip(".") if "affinity" not in path else "spec.serving.affinity matchLabels"
        assert rule["message"].startswith(f"{field} keys must be qualified names"), path


def test_the_key_pattern_fits_in_a_cel_string_literal() -> None:
    # The pattern is pasted between single quotes in CEL: a quote would end the literal, a backslash escape it.
    assert "'" not in QUALIFIED_NAME_PATTERN
    assert "\\" not in QUALIFIED_NAME_PATTERN


def test_bounds_and_enums_from_the_models_reach_the_schema() -> None:
    spec = schema()["properties"]["spec"]["properties"]
    tp = spec["target"]["properties"]["tensorParallelSize"]
    assert (tp["minimum"], tp["maximum"], tp["default"]) == (1, 64, 1)
    k = spec["speculation"]["properties"]["numSpeculativeTokens"]
    assert (k["minimum"], k["maximum"]) == (1, 16)
    assert "default" not in k, "k's default depends on the method (4, or 1 for mtp): the models fill it in"
    assert spec["speculation"]["properties"]["method"]["enum"] == [
        "draft_model",
        "eagle",
        "eagle3",
        "ngram",
        "mtp",
        "medusa",
        "mlp_speculator",
        "ngram_gpu",
        "suffix",
    ]
    rate = spec["rollback"]["properties"]["minAcceptanceRate"]
    assert (rate["type"], rate["minimum"], rate["maximum"], rate["default"]) == ("number", 0, 1, 0.5)
    gmu = spec["serving"]["properties"]["gpuMemoryUtilization"]
    assert (gmu["minimum"], gmu["exclusiveMinimum"], gmu["maximum"]) == (0, True, 1)
    assert spec["target"]["required"] == ["model"]
    assert schema()["properties"]["spec"]["required"] == ["target"]
    assert spec["validation"]["properties"]["gpuMemoryGiB"]["type"] == "integer"


def test_cel_rules_name_the_fields_they_guard() -> None:
    rules = [(path, rule) for path, node in walk(schema()) for rule in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 10
    for path, rule in rules:
        assert set(rule) <= {"rule", "message", "fieldPath", "reason", "messageExpression"}, path
        assert rule["message"].startswith(("spec.", "metadata.name")), (path, rule["message"])
    messages = " ".join(rule["message"] for _, rule in rules)
    for phrase in (
        "spec.draft is required unless spec.speculation.method is ngram",
        "spec.draft must not be set when spec.speculation.method is ngram",
        "spec.metrics.prometheus.url is required",
        "spec.serving.extraArgs must not set a reserved vLLM flag",
        "metadata.name must be at most 43 characters",
    ):
        assert phrase in messages


def test_conditions_are_a_map_keyed_by_type() -> None:
    conditions = schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert {"type", "status", "reason", "lastTransitionTime"} <= set(item["required"])
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


def _resolve(path: str) -> dict[str, Any]:
    node = schema()
    for part in path.strip(".").split("."):
        node = node["properties"][part]
    return node


def test_printer_columns_point_at_fields_of_the_right_type() -> None:
    columns = {c["name"].upper(): c for c in build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert list(columns)[:8] == ["TARGET", "DRAFT", "K", "TP", "ACCEPT", "READY", "STATUS", "AGE"]
    assert columns["ACCEPT"]["jsonPath"] == ".status.acceptance.rateText"
    assert columns["STATUS"]["jsonPath"] == ".status.phase"
    for name, column in columns.items():
        if column["jsonPath"].startswith(".metadata"):
            assert column["type"] == "date"
            continue
        field = _resolve(column["jsonPath"])
        assert field["type"] == column["type"], name


# --- Defaults: what the API server fills in must equal what pydantic fills in. ------------------------------


def apiserver_defaults(value: Any, node: dict[str, Any]) -> Any:
    """Structural defaulting as the API server does it: absent properties get their default, then recurse."""
    if isinstance(value, dict):
        for name, prop in node.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
        for name, child in value.items():
            if name in node.get("properties", {}):
                apiserver_defaults(child, node["properties"][name])
            elif isinstance(node.get("additionalProperties"), dict):
                apiserver_defaults(child, node["additionalProperties"])
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            apiserver_defaults(item, node["items"])
    return value


def drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def manifests() -> list[dict[str, Any]]:
    docs = [doc for path in EXAMPLES for doc in yaml.safe_load_all(path.read_text()) if doc]
    docs.append({"spec": {"target": {"model": "a/b"}, "speculation": {"method": "ngram"}}})
    return docs


@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: str(m.get("metadata", {}).get("name", "minimal")))
def test_apiserver_defaults_equal_pydantic_defaults(manifest: dict[str, Any]) -> None:
    raw = manifest["spec"]
    spec_schema = schema()["properties"]["spec"]
    defaulted = apiserver_defaults(copy.deepcopy(raw), spec_schema)
    parsed = SpeculativeDeploymentSpec.model_validate(raw)
    expected = drop_empty(parsed.model_dump(mode="json", exclude_none=True))
    if (raw.get("speculation") or {}).get("numSpeculativeTokens") is None:
        # k's default depends on the method (4, or 1 for mtp): the schema has none, the models fill it in, and the
        # revision id below is the same either way.
        del expected["speculation"]["numSpeculativeTokens"]
    assert defaulted == expected
    assert revision_id(SpeculativeDeploymentSpec.model_validate(defaulted)) == revision_id(parsed)


def test_every_default_in_the_schema_is_valid_for_its_field() -> None:
    # The API server refuses a CRD whose defaults fail its own schema; pydantic must accept them too.
    spec = apiserver_defaults({"target": {"model": "a/b"}, "draft": {"model": "c/d"}}, schema()["properties"]["spec"])
    assert SpeculativeDeploymentSpec.model_validate(spec).serving.port == 8000


def test_field_docs_say_what_vllm_does() -> None:
    # `kubectl explain` is where users read these; they follow vLLM 0.32's SpeculativeConfig.
    spec = schema()["properties"]["spec"]["properties"]
    lookup = spec["speculation"]["properties"]
    # n-gram: 5 and 5 only when neither is given; one given is copied to the other.
    assert lookup["promptLookupMax"]["description"].endswith("promptLookupMin when only that is set, else 5.")
    assert lookup["promptLookupMin"]["description"].endswith("promptLookupMax when only that is set, else 5.")
    draft_tp = " ".join(spec["draft"]["properties"]["tensorParallelSize"]["description"].split())
    assert "draft_model: must equal spec.target.tensorParallelSize" in draft_tp
    assert "the heads are loaded with the target's parallel config either way, so this does not shard them" in draft_tp
    assert "(1 for mlp_speculator)" in draft_tp
    assert "or 1 for mtp" in lookup["numSpeculativeTokens"]["description"]

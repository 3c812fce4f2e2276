"""The chart's values contract: every key documented in values.yaml, and a schema that lets no typo through.

Helm checks values.schema.json on install, upgrade, lint and template; a typo is only refused where the
object says additionalProperties false (or types its map values), so these tests walk the whole schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART

pytestmark = pytest.mark.chart

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES_TEXT = (CHART / "values.yaml").read_text()
PASSTHROUGH = "x-specdeploy-passthrough"


def walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for key, child in node.get("properties", {}).items():
        out += walk(child, f"{path}.{key}" if path else key)
    if isinstance(node.get("items"), dict):
        out += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += walk(node["additionalProperties"], f"{path}{{}}")
    for alt in node.get("anyOf", []):
        out += walk(alt, path)
    return out


def test_every_object_in_the_schema_is_closed_or_a_typed_map() -> None:
    open_nodes = []
    for path, node in walk(SCHEMA, ""):
        if node.get("type") != "object" or node.get(PASSTHROUGH):
            continue
        extra = node.get("additionalProperties")
        if extra is False:
            continue
        if isinstance(extra, dict) and ("type" in extra or "anyOf" in extra):
            continue
        open_nodes.append(path or "<root>")
    assert open_nodes == []


def test_only_kubernetes_passthrough_fields_are_left_open() -> None:
    # Affinity's inner terms are Kubernetes' own deep types, validated by the API server; `global` belongs
    # to parent charts. Nothing else may be open.
    open_paths = {path for path, node in walk(SCHEMA, "") if node.get(PASSTHROUGH)}
    assert open_paths == {"global", "affinity.nodeAffinity", "affinity.podAffinity", "affinity.podAntiAffinity"}


def leaf_keys(values: Any, prefix: str = "") -> list[str]:
    keys = []
    if isinstance(values, dict):
        for key, child in values.items():
            dotted = f"{prefix}.{key}" if prefix else key
            keys.append(dotted)
            keys += leaf_keys(child, dotted)
    return keys


def commented_keys(text: str) -> dict[str, str]:
    """Dotted key -> the first line of the comment block right above it (empty when there is none)."""
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z_][\w./-]*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [m.group(2)])
        stack.append((indent, m.group(2)))
        j = i
        while j > 0 and lines[j - 1].strip().startswith("#"):
            j -= 1
        found[dotted] = lines[j].strip() if j < i else ""
    return found


# Entries of free-form maps in the defaults: their parent key carries the comment.
MAP_ENTRIES = {
    "resources.requests.cpu",
    "resources.requests.memory",
    "resources.limits.memory",
    "grafanaDashboard.labels.grafana_dashboard",
    "networkPolicy.dns.podLabels.k8s-app",
}


def test_every_values_key_has_a_comment_naming_it() -> None:
    values = yaml.safe_load(VALUES_TEXT)
    found = commented_keys(VALUES_TEXT)
    assert set(found) == set(leaf_keys(values))
    missing = [k for k, first in found.items() if k not in MAP_ENTRIES and not first.startswith(f"# {k} -- ")]
    assert missing == []


def test_schema_covers_exactly_the_keys_of_values_yaml() -> None:
    values = yaml.safe_load(VALUES_TEXT)
    schema_top = set(SCHEMA["properties"]) - {"global"}
    assert schema_top == set(values)
    sections = ("image", "validatorImage", "operator", "rbac", "serviceAccount", "metrics", "vllmPodMonitor")
    for section in (*sections, "policy", "admissionPolicy", "networkPolicy"):
        assert set(SCHEMA["properties"][section]["properties"]) == set(values[section]), section


def test_there_is_no_replica_count() -> None:
    # kopf has no leader election; two replicas would both reconcile. The schema refuses the key.
    values = yaml.safe_load(VALUES_TEXT)
    assert "replicaCount" not in values
    assert "replicaCount" not in SCHEMA["properties"]
    assert SCHEMA["additionalProperties"] is False

"""Every string, list and map of the shipped CRD files has a bound, and the bounds add up to a fixed maximum size.

``tests/unit/api/test_api_crd.py`` checks the schema pydantic generates; this checks the YAML files a user
actually applies (``crds/`` and the chart's copy), and turns the bounds into the figure that matters for etcd: the
largest ``spec`` and ``status`` the API server can be made to store. The API server enforcing the bounds is
shown by ``tests/reliability/test_oversized_objects.py`` (it needs the control plane).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.api.test_api_crd import walk

REPO = Path(__file__).resolve().parents[3]
CRD_FILES = sorted((REPO / "crds").glob("*.yaml")) + sorted((REPO / "charts" / "specdeploy" / "crds").glob("*.yaml"))
NUMBER_BYTES = 24  # the longest JSON rendering of a float64 or int64
# Map keys have no schema of their own: each map bounds them with a CEL rule "self.all(k, k.size() <= N && ...)".
KEY_BOUND = re.compile(r"^self\.all\(k, k\.size\(\) <= (\d+) && ")


def key_bound(node: dict[str, Any]) -> float:
    """The longest key the map ``node`` admits (inf when no rule bounds its keys)."""
    for rule in node.get("x-kubernetes-validations", []):
        found = KEY_BOUND.match(rule["rule"])
        if found:
            return int(found.group(1))
    return math.inf


def schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in CRD_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            for version in doc["spec"]["versions"]:
                yield f"{path.relative_to(REPO)}:{version['name']}", version["schema"]["openAPIV3Schema"]


def worst_case_bytes(node: dict[str, Any], char_bytes: int = 1) -> float:
    """The longest compact JSON the schema admits for ``node`` (inf where nothing bounds it); ``char_bytes`` is the
    UTF-8 size assumed per character of a string (1 for ASCII text, 4 at worst)."""
    if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
        return math.inf
    if node.get("type") == "string" or node.get("x-kubernetes-int-or-string"):
        if "enum" in node:
            return 2 + max(len(str(v)) for v in node["enum"])
        return 2 + node.get("maxLength", math.inf) * char_bytes
    if node.get("type") in ("integer", "number"):
        return NUMBER_BYTES
    if node.get("type") == "boolean":
        return 5
    if node.get("type") == "array":
        return 2 + node.get("maxItems", math.inf) * (worst_case_bytes(node["items"], char_bytes) + 1)
    if isinstance(node.get("additionalProperties"), dict):
        entry = 2 + key_bound(node) + 1 + worst_case_bytes(node["additionalProperties"], char_bytes) + 1
        return 2 + node.get("maxProperties", math.inf) * entry
    props = node.get("properties", {})
    return 2 + sum(len(name) + 4 + worst_case_bytes(child, char_bytes) for name, child in props.items())


@pytest.mark.parametrize(("where", "schema"), list(schemas()), ids=[w for w, _ in schemas()])
def test_every_string_list_and_map_is_bounded(where: str, schema: dict[str, Any]) -> None:
    unbounded = []
    for path, node in walk(schema):
        if path in (".apiVersion", ".kind", ".metadata"):
            continue  # the API server checks these itself before the schema is consulted
        if node.get("type") == "string" or node.get("x-kubernetes-int-or-string"):
            if "maxLength" not in node and "enum" not in node:
                unbounded.append(f"{path}: string without maxLength or enum")
            if "format" in node and "maxLength" not in node:
                unbounded.append(f"{path}: format {node['format']} without maxLength")
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(f"{path}: array without maxItems")
        is_map = "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
        if node.get("type") == "object" and is_map and "maxProperties" not in node:
            unbounded.append(f"{path}: map without maxProperties")
    assert unbounded == [], f"{where}:\n" + "\n".join(unbounded)


def test_the_shipped_files_are_present_and_identical() -> None:
    assert len(CRD_FILES) == 2, CRD_FILES
    assert CRD_FILES[0].read_text() == CRD_FILES[1].read_text()


def test_worst_case_sizes_of_spec_and_status() -> None:
    [(_, schema), *_] = schemas()
    spec, status = schema["properties"]["spec"], schema["properties"]["status"]
    serving = spec["properties"]["serving"]["properties"]
    sizes = {
        "spec": (worst_case_bytes(spec), worst_case_bytes(spec, 4)),
        "status": (worst_case_bytes(status), worst_case_bytes(status, 4)),
        "spec.serving.affinity": (worst_case_bytes(serving["affinity"]), worst_case_bytes(serving["affinity"], 4)),
    }
    biggest = sorted(((worst_case_bytes(c), f"spec.serving.{n}") for n, c in serving.items()), reverse=True)[:4]
    print("\nlargest objects the CRD schema admits (ASCII text / 4-byte UTF-8 characters):")
    for what, (ascii_bytes, utf8_bytes) in sizes.items():
        print(f"  {what:<22} {ascii_bytes / 1024:>7.0f} KiB / {utf8_bytes / 1024:>7.0f} KiB")
    print("  largest spec parts: " + ", ".join(f"{p} {b / 1024:.0f} KiB" for b, p in biggest))
    # Finite everywhere, affinity included; in ASCII the whole spec fits etcd's 1.5 MiB request limit, and with
    # multi-byte text the API server's request limit is what stops it.
    assert all(math.isfinite(a) and math.isfinite(u) for a, u in sizes.values())
    assert sizes["spec"][0] < 1.5 * 1024 * 1024
    # Affinity is typed like core/v1 with bounds sized for scheduling rules: a small part of the spec, not its bulk.
    assert sizes["spec.serving.affinity"][0] < 256 * 1024


def test_map_keys_are_bounded_and_nothing_is_free_form() -> None:
    [(_, schema), *_] = schemas()
    gaps = []
    for path, node in walk(schema):
        if isinstance(node.get("additionalProperties"), dict) and not math.isfinite(key_bound(node)):
            gaps.append(f"{path}: no rule bounds the length of its keys")
        if node.get("x-kubernetes-preserve-unknown-fields"):
            gaps.append(f"{path}: free-form content (only its top-level keys are counted)")
    assert gaps == [], "\n".join(gaps)

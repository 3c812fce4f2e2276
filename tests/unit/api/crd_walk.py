"""Walk the generated CRD schema to reach every string the API server checks with a regular expression.

``maximal`` builds an object in which every property of a schema is present (one item per list, one entry per
map), so each ``pattern`` of the CRD has a leaf in it; ``pattern_leaves`` lists those leaves and
``keyed_maps`` the maps whose keys a CEL rule checks with ``matches()``. ``re2_accepts`` is the stand-in for
Go's RE2 used by the unit tests: Python's ``re`` in ASCII mode with the final ``$`` read as end of text. It is
only trusted because tests/integration/test_api_parity.py shows it gives the real API server's verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from specdeploy.api.crd import build_crd

Path = tuple[str | int, ...]
MAP_KEY = "k"
# A value every pattern of the CRD accepts, unless the table says otherwise.
SAMPLE = "a1"
SAMPLES_BY_PATTERN = {
    r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$": "/a1",
    r"^[A-Za-z]+$": "a",
}
SAMPLES_BY_FORMAT = {"date-time": "2026-01-02T03:04:05Z"}


@cache
def openapi() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _string_sample(node: dict[str, Any]) -> str:
    if "enum" in node:
        return str(node["enum"][0])
    if "format" in node:
        return SAMPLES_BY_FORMAT[node["format"]]
    pattern = node.get("pattern", "")
    if pattern.startswith("^https?://"):
        return "http://a1"
    if node.get("x-kubernetes-int-or-string"):
        return "1"
    return SAMPLES_BY_PATTERN.get(pattern, SAMPLE)


def maximal(node: dict[str, Any]) -> Any:
    """A value for ``node`` with every property present and a valid leaf wherever a pattern applies."""
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        out = {name: maximal(child) for name, child in node.get("properties", {}).items()}
        if isinstance(node.get("additionalProperties"), dict):
            out[MAP_KEY] = maximal(node["additionalProperties"])
        return out
    if kind == "array":
        return [maximal(node["items"])]
    if kind == "integer":
        return int(node.get("minimum", 1))
    if kind == "number":
        low, high = node.get("minimum", 0), node.get("maximum", 1)
        return (low + high) / 2
    if kind == "boolean":
        return False
    return _string_sample(node)


def pattern_leaves(node: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path in ``maximal(node)``, schema node) for every node with a ``pattern``."""
    if "pattern" in node:
        yield path, node
    for name, child in node.get("properties", {}).items():
        yield from pattern_leaves(child, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from pattern_leaves(node["items"], (*path, 0))
    if isinstance(node.get("additionalProperties"), dict):
        yield from pattern_leaves(node["additionalProperties"], (*path, MAP_KEY))


_KEY_RULE = re.compile(
    r"self\.all\(k, k\.size\(\) <= (?P<size>\d+) && k\.indexOf\('/'\) <= (?P<prefix>\d+) && "
    r"k\.matches\('(?P<pattern>[^']*)'\)\)"
)


def keyed_maps(node: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, re.Match[str]]]:
    """(path, parsed rule) of every map whose keys a CEL rule checks with ``matches()``."""
    for rule in node.get("x-kubernetes-validations", []):
        if "matches(" in rule["rule"] and isinstance(node.get("additionalProperties"), dict):
            parsed = _KEY_RULE.fullmatch(rule["rule"])
            assert parsed is not None, f"{path}: a key rule this walker cannot read: {rule['rule']}"
            yield path, parsed
    for name, child in node.get("properties", {}).items():
        yield from keyed_maps(child, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from keyed_maps(node["items"], (*path, 0))
    if isinstance(node.get("additionalProperties"), dict):
        yield from keyed_maps(node["additionalProperties"], (*path, MAP_KEY))


def set_at(obj: Any, path: Path, value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def rename_key(obj: Any, path: Path, new_key: str) -> None:
    for part in path:
        obj = obj[part]
    obj[new_key] = obj.pop(MAP_KEY)


@cache
def _re2(pattern: str) -> re.Pattern[str]:
    # Go's regexp.MatchString searches (the patterns anchor themselves); its "$" without the m flag is the end of
    # the text, which Python spells \Z (Python's "$" also matches before a final newline).
    assert pattern.endswith("$"), pattern
    return re.compile(pattern[:-1] + r"\Z", re.ASCII)


def re2_accepts(pattern: str, value: str) -> bool:
    """Go RE2's verdict, for patterns that spell out their classes (no \\s, \\d, \\w: see api/types.py)."""
    return _re2(pattern).search(value) is not None


def schema_accepts(node: dict[str, Any], value: str) -> bool:
    """The API server's verdict on a string leaf: length in characters (runes), then the pattern."""
    if len(value) < node.get("minLength", 0) or len(value) > node.get("maxLength", len(value)):
        return False
    return re2_accepts(node["pattern"], value)


def key_rule_accepts(rule: re.Match[str], key: str) -> bool:
    """The API server's verdict on a map key under a qualified-key rule (size, prefix length, matches)."""
    return len(key) <= int(rule["size"]) and key.find("/") <= int(rule["prefix"]) and re2_accepts(rule["pattern"], key)


def parse_field(field: str) -> Path:
    """An API server field path ("spec.serving.tolerations[0].key", "spec.x.podLabels[k]") as a Path."""
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", field):
        if part.startswith("["):
            inner = part[1:-1]
            out.append(int(inner) if inner.isdigit() else inner)
        else:
            out.append(part)
    return tuple(out)

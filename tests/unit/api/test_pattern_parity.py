"""Every pattern of the CRD and its pydantic twin accept exactly the same strings.

The API server runs the CRD's patterns (and the ``matches()`` of its CEL rules) with Go's RE2; the operator parses
the stored object with pydantic (Rust's regex engine) and a few hand-written Python checks. Where they disagree, an
object the API server stored is one the operator cannot read. Here every pattern leaf of the generated CRD, every
map whose keys a CEL rule checks, and metadata.name get each hostile string of ``hostile.HOSTILE_STRINGS``, and
the real models must refuse exactly the leaves an RE2 stand-in refuses. The stand-in (``crd_walk.re2_accepts``) is
checked against the real API server in tests/integration/test_api_parity.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from specdeploy.api import SpeculativeDeploymentSpec, SpeculativeDeploymentStatus
from specdeploy.api.resource import NAME_RULE, check_name

from .crd_walk import (
    Path,
    key_rule_accepts,
    keyed_maps,
    maximal,
    openapi,
    pattern_leaves,
    re2_accepts,
    rename_key,
    schema_accepts,
    set_at,
)
from .hostile import HOSTILE_STRINGS

# Character classes whose meaning depends on the engine: ASCII in RE2, Unicode in Rust's regex and Python's re.
_ENGINE_DEPENDENT = re.compile(r"\\[sSdDwWbBpP]|\(\?[a-zA-Z]")
_SECTIONS: dict[str, type[BaseModel]] = {"spec": SpeculativeDeploymentSpec, "status": SpeculativeDeploymentStatus}


def all_patterns() -> list[str]:
    found = [node["pattern"] for _, node in pattern_leaves(openapi())]
    for _, rule in keyed_maps(openapi()):
        found.append(rule["pattern"])
    found.append(re.search(r"matches\('([^']*)'\)", NAME_RULE)[1])  # type: ignore[index]
    return sorted(set(found))


def refused_by_pydantic(model: type[BaseModel], obj: Any, prefix: str) -> set[Path]:
    try:
        model.model_validate(obj)
    except ValidationError as err:
        return {(prefix, *e["loc"]) for e in err.errors(include_url=False)}
    return set()


def leaf_verdicts(value: str) -> tuple[set[Path], set[Path], int]:
    """(leaves pydantic refuses, leaves the RE2 stand-in refuses, leaves tried) with ``value`` in every leaf."""
    leaves = [(path, node) for path, node in pattern_leaves(openapi()) if path[0] in _SECTIONS]
    pydantic_refused: set[Path] = set()
    for section, model in _SECTIONS.items():
        obj = maximal(openapi()["properties"][section])
        for path, _ in leaves:
            if path[0] == section:
                set_at(obj, path[1:], value)
        pydantic_refused |= refused_by_pydantic(model, obj, section)
    expected = {path for path, node in leaves if not schema_accepts(node, value)}
    return pydantic_refused & {path for path, _ in leaves}, expected, len(leaves)


def outside_classes(pattern: str) -> str:
    """The pattern's syntax outside ``[...]`` classes, escapes removed (what is left can only be an operator)."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 2 if pattern[i + 1 : i + 2] == "]" else 1  # a "]" right after "[" is a literal
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def test_patterns_spell_out_their_character_classes() -> None:
    patterns = all_patterns()
    assert len(patterns) >= 15
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        assert not _ENGINE_DEPENDENT.search(pattern), f"engine-dependent class or flag in {pattern}"
        syntax = outside_classes(pattern)
        assert "$" not in syntax[:-1] and "^" not in syntax[1:], f"an anchor inside {pattern}"
        assert "." not in syntax, f"'.' (any character, Unicode-dependent in width) in {pattern}"


@pytest.mark.parametrize("name", list(HOSTILE_STRINGS))
def test_every_pattern_leaf_gets_the_same_verdict_from_pydantic_and_re2(name: str) -> None:
    value = HOSTILE_STRINGS[name]
    pydantic_refused, expected, tried = leaf_verdicts(value)
    assert tried >= 80, "every pattern leaf of the CRD is reached"
    assert pydantic_refused == expected, (
        f"{name}: refused only by pydantic {sorted(pydantic_refused - expected)}; "
        f"only by the API server {sorted(expected - pydantic_refused)}"
    )


@pytest.mark.parametrize("name", list(HOSTILE_STRINGS))
def test_map_keys_get_the_same_verdict_from_pydantic_and_the_cel_rule(name: str) -> None:
    key = HOSTILE_STRINGS[name]
    maps = list(keyed_maps(openapi()))
    assert len(maps) >= 7
    obj = {section: maximal(openapi()["properties"][section]) for section in _SECTIONS}
    for path, _ in maps:
        rename_key(obj, path, key)
    refused: set[Path] = set()
    for section, model in _SECTIONS.items():
        refused |= refused_by_pydantic(model, obj[section], section)
    expected = {path for path, rule in maps if not key_rule_accepts(rule, key)}
    assert refused & {path for path, _ in maps} == expected


@pytest.mark.parametrize("name", list(HOSTILE_STRINGS))
def test_metadata_name_gets_the_same_verdict_from_pydantic_and_the_cel_rule(name: str) -> None:
    value = HOSTILE_STRINGS[name]
    pattern = re.search(r"matches\('([^']*)'\)", NAME_RULE)[1]  # type: ignore[index]
    limit = int(re.search(r"size\(self\.metadata\.name\) <= (\d+)", NAME_RULE)[1])  # type: ignore[index]
    try:
        check_name(value)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == (len(value) <= limit and re2_accepts(pattern, value))


def test_the_image_from_the_issue_is_refused_on_both_sides() -> None:
    # Before: the CRD's ^\S+$ (ASCII in Go) stored it and pydantic's \S (Unicode) refused it on every reconcile.
    image = HOSTILE_STRINGS["image from the issue"]
    (node,) = [n for p, n in pattern_leaves(openapi()) if p == ("spec", "serving", "image")]
    assert not schema_accepts(node, image)
    spec = {"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "serving": {"image": image}}
    with pytest.raises(ValidationError, match=r"serving\.image"):
        SpeculativeDeploymentSpec.model_validate(spec)

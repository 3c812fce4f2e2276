"""Depth shaped by load (issue 14): the schedules the API accepts are exactly those vLLM 0.32's own validator accepts
as written. That vLLM serves with such a schedule and its draft-token counter follows it is checked on the harness
server (test_vllm_harness.py), so the tier starts no extra vLLM server for it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from specdeploy.api.payoff import BatchSizeRange, check_schedule

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def vllm_validator(vllm_python: Path) -> Callable[[object], list[tuple[int, int, int]]]:
    """vLLM 0.32's ``validate_and_normalize_dynamic_sd_schedule``, loaded from the cached install's source file.

    The file imports nothing, so it is loaded alone: importing the vllm package would take most of a minute.
    """
    venv = vllm_python.parent.parent
    [source] = venv.glob("lib/python3*/site-packages/vllm/v1/spec_decode/dynamic/utils.py")
    spec = importlib.util.spec_from_file_location("vllm_dynamic_sd_utils", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check: Callable[[object], list[tuple[int, int, int]]] = module.validate_and_normalize_dynamic_sd_schedule
    return check


def test_the_api_accepts_exactly_the_schedules_vllm_accepts_as_written(vllm_python: Path) -> None:
    """vLLM's own validator (it also sorts: the API asks for sorted input, so "as written" is the comparison)."""
    schedules = [
        [[1, 1, 4], [2, 256, 0]],
        [[1, 4, 3], [5, 16, 2], [17, 256, 0]],
        [[1, 16, 3], [32, 128, 2]],
        [[1, 65536, 0]],
        [[2, 8, 1]],
        [[1, 4, 2], [4, 8, 1]],
        [[1, 4, 2], [9, 16, 1], [5, 8, 0]],
        [[1, 8, 2], [12, 9, 1]],
        [[1, 8, -1]],
    ]
    validate = vllm_validator(vllm_python)
    vllm_verdicts = []
    ours = []
    for schedule in schedules:
        try:
            vllm_verdicts.append(validate(schedule) == [tuple(e) for e in schedule])
        except ValueError:
            vllm_verdicts.append(False)
        try:
            entries = [BatchSizeRange(start=s, end=e, tokens=t) for s, e, t in schedule]
            check_schedule(entries, k=4)
            ours.append(True)
        except ValueError:  # pydantic's ValidationError is a ValueError: bounds and start <= end
            ours.append(False)
    assert ours == vllm_verdicts == [True, True, True, True, False, False, False, False, False]

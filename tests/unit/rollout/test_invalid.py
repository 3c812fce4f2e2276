"""A stored spec the operator cannot parse is said once per generation: a bounded message naming the fields, the
same Event name for every try within a generation, and a status that an unchanged world does not write again."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.rollout.test_plan import BASE
from tests.unit.rollout.world import assert_schema_valid

from specdeploy import conditions as cond
from specdeploy import redact
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.rollout import invalid
from specdeploy.rollout.drift import is_subset
from specdeploy.rollout.events import MAX_MESSAGE_BYTES

UID = "0b6f5a52-9c1e-4a43-a1a8-6a1f1f0c2e11"
NOW = "2026-12-07T01:40:12Z"


def refusal(spec: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        SpeculativeDeploymentSpec.model_validate(spec)
    return err.value


def test_the_message_names_the_field_and_never_echoes_a_huge_value_whole() -> None:
    huge = "vllm/vllm-openai:" + "v" * 100_000 + "\u00a0"
    message = invalid.describe(refusal({**BASE, "serving": {"image": huge}}))
    assert message.startswith("spec does not parse: spec.serving.image: ")
    assert len(message.encode()) <= 300 and huge not in message


def test_many_findings_are_counted_not_listed() -> None:
    spec = {**BASE, "serving": {"env": [{"name": f"A{i}", "value": "x", "bogus": i} for i in range(40)]}}
    message = invalid.describe(refusal(spec))
    assert message.count("spec.serving.env[") == redact.MAX_ERRORS
    assert message.endswith(f"and {40 - redact.MAX_ERRORS} more")
    assert len(message.encode()) <= min(MAX_MESSAGE_BYTES, cond.MAX_MESSAGE)


def test_the_status_says_invalid_spec_once_and_keeps_the_rest() -> None:
    old = {
        "observedGeneration": 1,
        "revision": {"current": "abc", "serving": "abc", "stable": None, "failed": []},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Serving",
                "message": "1/1",
                "lastTransitionTime": NOW,
                "observedGeneration": 1,
            },
        ],
    }
    status = invalid.status_for(old, 2, "spec does not parse: spec.serving.image: bad", NOW)
    assert_schema_valid(status)
    ready = cond.get(status["conditions"], cond.READY)
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert cond.get(status["conditions"], cond.PROGRESSING)["reason"] == "InvalidSpec"  # type: ignore[index]
    assert status["phase"] == "Failed" and status["observedGeneration"] == 2
    assert status["revision"] == old["revision"]
    # a second pass over the status it wrote asks for nothing (the daemon's is_subset check)
    assert is_subset(invalid.status_for(status, 2, "spec does not parse: spec.serving.image: bad", "later"), status)


def test_one_event_name_per_generation() -> None:
    first = invalid.event_for("coder", UID, 2, "a")
    assert first.type == "Warning" and first.reason == "InvalidSpec"
    assert invalid.event_for("coder", UID, 2, "other words").name == first.name
    assert invalid.event_for("coder", UID, 3, "a").name != first.name

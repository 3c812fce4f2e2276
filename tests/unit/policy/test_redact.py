"""What the operator logs about a spec that does not parse: the field and the rule, never the value whole.

Why: pydantic's ``str(ValidationError)`` repeats each rejected ``input_value``; the operator logged it as is (and
kopf turns error lines into Events), so a megabyte string, a newline that forges a log line, or terminal escapes in
a spec went straight into the logs.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.redact import CLIP_CHARS, MAX_ERRORS, clip, validation_error


def refused(body: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        SpeculativeDeploymentSpec.model_validate(body)
    return info.value


HOSTILE = "vllm/vllm-openai:v1\u00a0" + "A" * 5000 + "\n2026-01-01 INFO forged line\x1b[2J"


def test_a_rejected_extra_arg_is_never_quoted_whole() -> None:
    """The old log line was ``f"spec does not parse: {e}"``: a rule message that quoted the value (extraArgs, map
    keys) printed a 1,000-character argument whole. Neither the rule's own message nor the description does now."""
    arg = "--model=" + "z" * 1000
    err = refused({"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "serving": {"extraArgs": [arg]}})
    assert arg not in str(err)
    text = validation_error(err)
    assert arg not in text and "spec.serving.extraArgs" in text and len(text) < 600


def test_the_description_names_the_field_and_quotes_the_value_only_in_part() -> None:
    err = refused({"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "serving": {"image": HOSTILE}})
    text = validation_error(err)
    assert text.startswith("spec.serving.image: String should have at most 512 characters (got ")
    assert "A" * (CLIP_CHARS + 1) not in text
    assert f"({len(HOSTILE)} characters)" in text
    assert "\n" not in text and "\x1b" not in text and "\u00a0" not in text
    assert len(text) < 400


def test_a_rule_message_that_embeds_the_value_is_cut_and_escaped() -> None:
    arg = "--model=" + "z" * 1000 + "\nforged"
    err = refused({"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "serving": {"extraArgs": [arg]}})
    text = validation_error(err)
    assert text.startswith("spec.serving.extraArgs: ")
    assert "z" * 300 not in text and "\n" not in text


def test_many_errors_are_counted_not_listed() -> None:
    body = {
        "target": {"model": "-bad", "tensorParallelSize": 0, "maxModelLen": 0, "revision": "-x"},
        "draft": {"model": "-bad", "tensorParallelSize": 0, "revision": "-y"},
        "replicas": -1,
    }
    text = validation_error(refused(body))
    assert text.count("; ") == MAX_ERRORS
    assert text.endswith("more")


def test_clip_leaves_short_values_whole_and_escaped() -> None:
    assert clip("vllm/vllm-openai:v0.32.0") == "'vllm/vllm-openai:v0.32.0'"
    assert clip("a\nb") == "'a\\nb'"
    assert clip(12) == "'12'"

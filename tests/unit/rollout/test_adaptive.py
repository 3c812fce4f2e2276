"""The adaptive loop's revision: the spec with the operator's schedule, a new revision id, the spec untouched."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.render.vllm_args import speculative_config
from specdeploy.rollout.adaptive import adapted_spec

SPEC = SpeculativeDeploymentSpec.model_validate(
    {
        "target": {"model": "org/target"},
        "draft": {"model": "org/draft"},
        "speculation": {"numSpeculativeTokens": 4, "adaptive": {"enabled": True, "minIntervalSeconds": 60}},
    }
)


def test_a_chosen_schedule_is_a_new_revision_that_vllm_gets_and_the_spec_is_untouched() -> None:
    off_under_load = ((1, 7, 4), (8, 65_536, 0))
    derived = adapted_spec(SPEC, off_under_load)
    assert revision_id(derived) != revision_id(SPEC)
    assert speculative_config(derived)["num_speculative_tokens_per_batch_size"] == [[1, 7, 4], [8, 65_536, 0]]
    assert SPEC.speculation.num_speculative_tokens_per_batch_size is None
    assert derived.speculation.adaptive == SPEC.speculation.adaptive


def test_k_everywhere_is_the_spec_itself_and_a_bad_schedule_is_refused() -> None:
    assert adapted_spec(SPEC, ((1, 65_536, 4),)) is SPEC
    assert adapted_spec(SPEC, None) is SPEC
    with pytest.raises(ValidationError, match="first range must start at 1"):
        adapted_spec(SPEC, ((2, 8, 1),))
    with pytest.raises(ValidationError, match=r"must not exceed spec\.speculation\.numSpeculativeTokens"):
        adapted_spec(SPEC, ((1, 8, 5),))

"""The K column (status.numSpeculativeTokens) says the depth of what serves, not only what the spec asks for."""

from __future__ import annotations

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import serving_snapshot
from specdeploy.rollout.history import RevisionRecord, ServingChoice
from specdeploy.rollout.status import serving_depth


def spec(**speculation: object) -> SpeculativeDeploymentSpec:
    body: dict[str, object] = {"target": {"model": "org/t"}, "speculation": speculation}
    if speculation.get("method", "draft_model") == "draft_model":
        body["draft"] = {"model": "org/d"}
    return SpeculativeDeploymentSpec.model_validate(body)


def choice(s: SpeculativeDeploymentSpec, *, speculation: bool = True) -> ServingChoice:
    return ServingChoice(RevisionRecord(id="0123456789", number=1, spec=serving_snapshot(s)), speculation=speculation)


def test_the_depth_is_the_serving_revisions_own() -> None:
    current = spec(numSpeculativeTokens=7)
    assert serving_depth(current, choice(spec(numSpeculativeTokens=2))) == 2  # a rollback serves the old k


def test_speculation_off_reads_zero_and_nothing_serving_reads_the_spec() -> None:
    current = spec(numSpeculativeTokens=3)
    assert serving_depth(current, choice(current, speculation=False)) == 0
    assert serving_depth(current, None) == 3


def test_an_unset_k_reads_the_methods_default() -> None:
    assert serving_depth(spec(method="mtp"), None) == 1
    assert serving_depth(spec(), choice(spec())) == 4

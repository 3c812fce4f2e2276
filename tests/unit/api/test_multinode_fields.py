"""pipelineParallelSize and gpusPerNode: their defaults, and that adding them changed no existing revision id."""

from __future__ import annotations

from typing import Any

from specdeploy.api.revision import revision_id
from specdeploy.api.spec import SpeculativeDeploymentSpec

BASE: dict[str, Any] = {"target": {"model": "org/target", "tensorParallelSize": 2}, "draft": {"model": "org/draft"}}


def test_defaults_are_one_stage_and_eight_gpus_per_node() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(BASE)
    assert spec.target.pipeline_stages == 1
    assert spec.target.gpus_per_replica == 2
    assert spec.serving.gpus_per_node_or_default == 8


def test_writing_the_defaults_keeps_the_revision_id() -> None:
    plain = SpeculativeDeploymentSpec.model_validate(BASE)
    explicit = SpeculativeDeploymentSpec.model_validate(
        {**BASE, "target": {**BASE["target"], "pipelineParallelSize": 1}, "serving": {"gpusPerNode": 8}}
    )
    assert revision_id(explicit) == revision_id(plain)


def test_pipeline_stages_change_the_revision_id() -> None:
    plain = SpeculativeDeploymentSpec.model_validate(BASE)
    staged = SpeculativeDeploymentSpec.model_validate({**BASE, "target": {**BASE["target"], "pipelineParallelSize": 2}})
    assert staged.target.gpus_per_replica == 4
    assert revision_id(staged) != revision_id(plain)

"""Issue 15 in the planner: status.selector for the scale subresource, and the optional children (budget, pool).

A refused spec (the admin's policy) must leave the optional children as they are: ``optional`` is None then,
which the handler reads as "touch nothing", where an empty list would delete the budget of a serving object.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from tests.unit.rollout.world import World

from specdeploy.policy import AdminPolicy
from specdeploy.rollout.plan import Observed

SPEC: dict[str, Any] = {
    "target": {"model": "org/target-70b"},
    "draft": {"model": "org/draft-7b"},
    "validation": {"policy": "Skip"},
    "serving": {"image": "vllm/vllm-openai:v0.32.0"},
}


@dataclasses.dataclass
class PolicedWorld(World):
    policy: AdminPolicy = dataclasses.field(default_factory=AdminPolicy)

    def observe(self) -> Observed:
        return dataclasses.replace(super().observe(), policy=self.policy)


def kinds(optional: list[dict[str, Any]] | None) -> list[str] | None:
    return None if optional is None else [o["kind"] for o in optional]


def test_status_publishes_the_pods_selector_and_the_plan_wants_a_budget_from_two_replicas() -> None:
    world = World(spec=copy.deepcopy(SPEC))
    p = world.settle()
    assert world.status["selector"] == "app.kubernetes.io/component=server,specdeploy.io/name=coder"
    assert kinds(p.optional) == []
    world.change_spec(replicas=2, routing={"inferencePool": {"enabled": True}})
    p = world.step()
    assert kinds(p.optional) == ["PodDisruptionBudget", "InferencePool"]
    assert p.record_revision is None  # scaling and routing make no revision


def test_a_refused_spec_leaves_the_optional_children_alone() -> None:
    world = PolicedWorld(
        spec={**copy.deepcopy(SPEC), "replicas": 2}, policy=AdminPolicy(images=("vllm/vllm-openai:*",))
    )
    assert kinds(world.settle().optional) == ["PodDisruptionBudget"]
    world.spec = {**world.spec, "serving": {"image": "evil.example.com/vllm:1"}}
    world.generation = 2
    assert world.step().optional is None

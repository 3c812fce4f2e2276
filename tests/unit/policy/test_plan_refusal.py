"""The planner on a spec the admin's policy refuses: the reason in status, one Warning Event, no child touched.

Why: when a tenant edits a serving object into something the admin refuses (another image, say), the operator must
neither roll the refused spec out nor tear down what serves; the user must see why, once, in the words of the field.
Driven through ``World`` (the real ``plan()`` on a cluster held as data, carried out as the handler does).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from tests.unit.rollout.world import World

from specdeploy.policy import AdminPolicy
from specdeploy.rollout.plan import Observed
from specdeploy.rollout.refusal import POLICY_VIOLATION

SPEC: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "validation": {"policy": "Skip"},
    "serving": {"image": "vllm/vllm-openai:v0.32.0"},
    "rollout": {"strategy": "Replace"},  # a fix rolls out at once (a canary would wait for the monitor)
}
POLICY = AdminPolicy(images=("vllm/vllm-openai:*",))


@dataclass
class PolicedWorld(World):
    policy: AdminPolicy = POLICY

    def observe(self) -> Observed:
        return dataclasses.replace(super().observe(), policy=self.policy)


def condition(world: World, type_: str) -> dict[str, Any]:
    return next(c for c in world.status["conditions"] if c["type"] == type_)


def refused(spec: dict[str, Any], image: str) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    out["serving"]["image"] = image
    return out


def test_a_refused_new_object_gets_the_reason_and_one_warning_and_no_children() -> None:
    world = PolicedWorld(spec=refused(SPEC, "evil.example.com/vllm:1"))
    p = world.settle()
    assert world.deployment is None and world.service is None and world.revisions == {} and world.jobs == {}
    assert p.record_revision is None and p.create_job is None
    ready = condition(world, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", POLICY_VIOLATION)
    assert ready["message"].startswith("spec refused by the operator's policy: spec.serving.image: ")
    assert condition(world, "Degraded")["status"] == "True"
    assert condition(world, "Progressing")["status"] == "False"
    assert world.status["phase"] == "Degraded"
    assert [(e.type, e.reason) for e in world.events] == [("Warning", POLICY_VIOLATION)]
    assert "spec.serving.image" in world.events[0].message
    for _ in range(3):  # later loops say nothing more
        world.step()
    assert len(world.events) == 1 and world.event_posts == 1


def test_a_refused_edit_leaves_the_serving_pods_alone_and_a_fix_rolls_out() -> None:
    world = PolicedWorld(spec=copy.deepcopy(SPEC))
    world.step()
    world.roll_out()
    world.settle()
    assert world.status["phase"] == "Ready"
    serving_before = copy.deepcopy(world.deployment)
    revision_before = world.status["revision"]
    writes = world.child_writes

    world.spec = refused(SPEC, "evil.example.com/vllm:1")
    world.generation = 2
    world.settle()
    assert world.deployment == serving_before and world.child_writes == writes
    assert world.status["revision"] == revision_before  # what serves is still said
    assert condition(world, "Ready")["reason"] == POLICY_VIOLATION
    assert "revision " + revision_before["serving"] + " keeps serving" in condition(world, "Degraded")["message"]
    assert world.status["observedGeneration"] == 2
    assert [e.reason for e in world.events].count(POLICY_VIOLATION) == 1

    fixed = copy.deepcopy(SPEC)
    fixed["speculation"] = {"numSpeculativeTokens": 6}
    world.spec, world.generation = fixed, 3
    world.step()
    world.roll_out()
    world.settle()
    assert world.status["phase"] == "Ready"
    assert world.status["revision"]["serving"] != revision_before["serving"]


def test_the_default_policy_refuses_a_reserved_environment_name() -> None:
    spec = copy.deepcopy(SPEC)
    spec["serving"]["env"] = [{"name": "HF_ENDPOINT", "value": "https://evil.example.com"}]
    world = PolicedWorld(spec=spec, policy=AdminPolicy())
    world.settle()
    assert world.deployment is None
    assert "spec.serving.env[0].name: 'HF_ENDPOINT'" in condition(world, "Ready")["message"]

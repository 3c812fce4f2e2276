"""The adaptive depth loop's plan step (issue 14 item 3) on the cluster-as-data world: a proposed schedule becomes
a new revision rolled out as a canary; it changes at most once per minIntervalSeconds; status.adaptive makes it
durable across restarts; a new spec drops it; an aborted schedule is not tried again on the same measurements.

The monitor's proposal is constructed here (``MonitorFinding.schedule``); how the tracker computes it from windows
is tested in tests/unit/monitor/test_proposal.py.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from tests.unit.rollout.test_canary import controller, revisions_live, verdict
from tests.unit.rollout.world import World, speculative_config

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.monitor.finding import CanaryVerdict, MonitorFinding
from specdeploy.monitor.payoff import ScheduleChoice
from specdeploy.rollout.adaptive import adapt, adapted_spec, with_schedule_revision
from specdeploy.rollout.canary import CANARY_ABORTED
from specdeploy.rollout.history import (
    ANNOTATION_REASON,
    ANNOTATION_STATE,
    History,
    RevisionRecord,
    RevisionState,
    from_controller_revisions,
)

INTERVAL = 60
BASE: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "speculation": {
        "method": "draft_model",
        "numSpeculativeTokens": 4,
        "adaptive": {"enabled": True, "minIntervalSeconds": INTERVAL},
    },
    "validation": {"policy": "Skip"},
    "rollback": {"stableAfterSeconds": 0},
    "replicas": 2,
    "rollout": {"canary": {"replicas": 1}},
}
OFF_ABOVE_4 = ((1, 4, 4), (5, 65_536, 0))
OFF_ABOVE_8 = ((1, 8, 4), (9, 65_536, 0))
WHY = "measured against the control group: speculation off where it loses (0.81x at 5-8)"


def rev(spec: dict[str, Any]) -> str:
    return revision_id(SpeculativeDeploymentSpec.model_validate(spec))


def serving_world() -> tuple[World, str]:
    world = World(spec=copy.deepcopy(BASE))
    world.step()
    world.roll_out()
    world.settle()
    assert world.condition("Ready")["status"] == "True"
    return world, rev(world.spec)


def propose(world: World, serving: str, schedule: tuple[tuple[int, int, int], ...], why: str = WHY) -> None:
    world.monitor = MonitorFinding(revision=serving, schedule=ScheduleChoice(schedule, why))


def schedule_of(world: World, serving_id: str) -> Any:
    dep = world.deployment_of(serving_id)
    assert dep is not None, serving_id
    config = speculative_config(dep)
    assert config is not None
    return config.get("num_speculative_tokens_per_batch_size")


def promote(world: World, old: str, new: str) -> None:
    verdict(world, old, new, CanaryVerdict.PASSED)
    for _ in range(12):
        world.step()
        controller(world, ready=True)
        world.monitor = None
        if revisions_live(world) == {new}:
            break
    world.settle()
    assert revisions_live(world) == {new}


def adopted(world: World, old: str) -> str:
    """A proposal was taken: the new revision starts as a canary beside ``old``; returns its id."""
    new = str(world.status["adaptive"]["revision"])
    assert new != old and world.status["revision"]["current"] == new
    assert world.plans[-1].canary is not None and world.plans[-1].canary.id == new
    assert world.plans[-1].serving is not None and world.plans[-1].serving.id == old
    return new


def test_a_proposed_schedule_is_a_new_revision_rolled_out_as_a_canary_and_the_spec_is_untouched() -> None:
    world, old = serving_world()
    assert "adaptive" not in world.status  # nothing proposed yet: nothing said
    propose(world, old, OFF_ABOVE_4)
    world.step()
    new = adopted(world, old)
    adaptive = world.status["adaptive"]
    assert adaptive["schedule"] == [{"start": 1, "end": 4, "tokens": 4}, {"start": 5, "end": 65_536, "tokens": 0}]
    assert adaptive["reason"] == WHY and adaptive["base"] == old
    assert adaptive["changedAt"] == "2026-01-01T12:00:00Z"
    assert "numSpeculativeTokensPerBatchSize" not in world.spec["speculation"]  # the spec is never edited
    controller(world, ready=True)
    world.settle()
    assert schedule_of(world, new) == [[1, 4, 4], [5, 65_536, 0]]  # vLLM gets the schedule
    assert schedule_of(world, old) is None  # the serving pods are untouched while the canary is judged
    assert world.status["canary"]["phase"] == "Analyzing"
    promote(world, old, new)
    assert world.status["revision"]["serving"] == new and world.condition("Ready")["status"] == "True"
    assert world.status["adaptive"]["revision"] == new


def test_the_schedule_changes_at_most_once_per_min_interval() -> None:
    world, old = serving_world()
    propose(world, old, OFF_ABOVE_4)
    world.step()
    new = adopted(world, old)
    controller(world, ready=True)
    promote(world, old, new)
    world.now += INTERVAL - 5  # measured on the new revision, a different schedule, too soon
    propose(world, new, OFF_ABOVE_8)
    world.settle()
    assert world.status["adaptive"]["revision"] == new and world.status["revision"]["current"] == new
    assert world.plans[-1].canary is None
    world.now += 10  # the interval has passed since the change
    propose(world, new, OFF_ABOVE_8)
    world.step()
    newer = adopted(world, new)
    assert newer != old and world.status["adaptive"]["schedule"][0] == {"start": 1, "end": 8, "tokens": 4}
    assert world.status["adaptive"]["changedAt"] == "2026-01-01T12:01:05Z"


def test_a_restart_reads_the_schedule_from_status_and_computes_the_same_revision() -> None:
    world, old = serving_world()
    propose(world, old, OFF_ABOVE_4)
    world.step()
    new = adopted(world, old)
    controller(world, ready=True)
    promote(world, old, new)
    revisions, status = set(world.revisions), copy.deepcopy(world.status)
    world.monitor = None  # a new operator process: nothing in memory, no proposal yet
    world.now += 3 * INTERVAL
    world.settle()
    assert set(world.revisions) == revisions and world.status["revision"]["current"] == new
    assert world.status["adaptive"] == status["adaptive"] and world.plans[-1].canary is None
    propose(world, new, OFF_ABOVE_4)  # its first proposal is the schedule in force: nothing to do
    world.settle()
    assert set(world.revisions) == revisions and world.status["adaptive"] == status["adaptive"]
    assert revisions_live(world) == {new}


def test_a_new_spec_drops_the_operators_schedule() -> None:
    world, old = serving_world()
    propose(world, old, OFF_ABOVE_4)
    world.step()
    new = adopted(world, old)
    controller(world, ready=True)
    promote(world, old, new)
    world.monitor = None
    world.change_spec(speculation={"numSpeculativeTokens": 5})
    world.step()
    user = rev(world.spec)
    assert world.status["revision"]["current"] == user
    adaptive = world.status["adaptive"]
    assert adaptive["schedule"] == [] and adaptive["base"] == user and adaptive["revision"] == user
    assert "the spec changed" in adaptive["reason"]
    controller(world, ready=True)
    world.settle()
    assert schedule_of(world, user) is None  # the user's revision runs the spec's own depth
    # Turning the loop off also drops a schedule in force.
    world2, old2 = serving_world()
    propose(world2, old2, OFF_ABOVE_4)
    world2.step()
    world2.monitor = None
    world2.change_spec(speculation={"adaptive": {"enabled": False}})
    world2.step()
    assert world2.status["adaptive"]["schedule"] == [] and world2.status["revision"]["current"] == old2
    assert "adaptive is off" in world2.status["adaptive"]["reason"]


def test_an_aborted_schedule_is_not_rolled_out_again_until_the_measurements_change() -> None:
    world, old = serving_world()
    propose(world, old, OFF_ABOVE_4)
    world.step()
    new = adopted(world, old)
    controller(world, ready=True)
    world.settle()
    verdict(world, old, new, CanaryVerdict.FAILED, "canary 50% slower")
    world.step()
    assert world.annotations(new)[ANNOTATION_REASON] == CANARY_ABORTED
    assert world.annotations(new)[ANNOTATION_STATE] == "failed"
    controller(world, ready=True)
    world.monitor = None
    world.settle()
    assert revisions_live(world) == {old} and world.status["revision"]["serving"] == old
    # The serving revision's measurements still give the same schedule, long after: it is not tried again.
    world.now += 5 * INTERVAL
    propose(world, old, OFF_ABOVE_4)
    world.settle()
    assert revisions_live(world) == {old} and world.plans[-1].canary is None
    assert world.status["adaptive"]["revision"] == new  # the schedule last chosen, its revision failed
    # Different measurements, a different schedule: rolled out as a canary.
    propose(world, old, OFF_ABOVE_8)
    world.step()
    assert adopted(world, old) not in (old, new)


def test_a_schedule_with_k_everywhere_is_the_spec_itself() -> None:
    world, old = serving_world()
    propose(world, old, ((1, 65_536, 4),), "no control group: the same depth at every load, k=4 from the spec")
    world.settle()
    assert world.status["revision"]["current"] == old and world.plans[-1].canary is None
    assert set(world.revisions) == {f"coder-{old}"}


def test_the_schedules_revision_shares_the_specs_validation_and_needs_no_snapshot_from_the_index() -> None:
    spec = {**copy.deepcopy(BASE), "validation": {"policy": "Enforce"}}
    world = World(spec=spec)
    world.step()
    assert world.job is not None
    report = {"compatible": True, "checks": [{"name": "vocabulary", "status": "pass", "message": "same"}]}
    world.finish_job(0, report)
    world.step()
    world.roll_out()
    world.settle()
    old = rev(world.spec)
    assert world.serving() == old
    jobs = set(world.job_manifests)
    propose(world, old, OFF_ABOVE_4)
    world.step()
    new = adopted(world, old)
    assert set(world.job_manifests) == jobs  # no validation Job for a schedule: same target, same draft
    assert world.condition("Validated")["status"] == "True"
    assert world.status["validation"]["revision"] == new
    # The operator's revision index keeps no snapshots; the step fills in the schedule's own (the spec with it).
    history = from_controller_revisions(list(world.revisions.values()))
    bare = History(tuple(replace(r, spec={}) for r in history.revisions))
    served = adapted_spec(SpeculativeDeploymentSpec.model_validate(world.spec), OFF_ABOVE_4)
    record = bare.get(new)
    assert record is not None
    filled, _ = with_schedule_revision(bare, record, served, old)
    assert filled.spec["speculation"]["numSpeculativeTokensPerBatchSize"][1] == {"start": 5, "end": 65_536, "tokens": 0}


def test_no_schedule_for_a_spec_whose_revision_failed_or_has_no_validation_report_to_share() -> None:
    spec = SpeculativeDeploymentSpec.model_validate({**copy.deepcopy(BASE), "validation": {"policy": "Enforce"}})
    base = revision_id(spec)
    finding = MonitorFinding(revision=base, schedule=ScheduleChoice(OFF_ABOVE_4, WHY))
    unvalidated = History((RevisionRecord(id=base, number=1, spec={}),))
    step = adapt(spec, None, finding, unvalidated, now=0.0, now_iso="2026-01-01T12:00:00Z")
    assert step.spec is spec and step.status is None
    checked = History((RevisionRecord(id=base, number=1, spec={}, validation={"exitCode": 0}),))
    assert adapt(spec, None, finding, checked, now=0.0, now_iso="2026-01-01T12:00:00Z").changed
    failed = History((RevisionRecord(id=base, number=1, spec={}, state=RevisionState.FAILED, validation={}),))
    assert not adapt(spec, None, finding, failed, now=0.0, now_iso="2026-01-01T12:00:00Z").changed

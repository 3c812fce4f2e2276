"""Canary rollouts (issue 13), scenario by scenario on the cluster-as-data world, and the promotion step alone.

The monitor's word on a canary is constructed here (``CanaryFinding``): what the tracker concludes from the windows
is the monitor's side; what the planner does with it is this file's. A helper plays the Deployment controller: a
scale-down takes effect at once (the Deployment removes pods), new pods exist at once and become Ready on
``ready()``; after each move the test checks what a client of the Service would notice: never fewer than
``replicas`` ready pods, never more than ``canary.replicas`` extra pods.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.rollout.world import World, template_revision

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.monitor.finding import CanaryFinding, CanaryVerdict, MonitorFinding
from specdeploy.rollout.canary import CANARY_ABORTED, CANARY_PASSED, step
from specdeploy.rollout.history import ANNOTATION_REASON, ANNOTATION_STATE

R, C = 3, 1
BASE: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
    "validation": {"policy": "Skip"},
    "rollback": {"stableAfterSeconds": 0},
    "replicas": R,
    "rollout": {"canary": {"replicas": C}},
}


def rev(spec: dict[str, Any]) -> str:
    return revision_id(SpeculativeDeploymentSpec.model_validate(spec))


def controller(world: World, *, ready: bool) -> None:
    """The Deployment controller and kubelet: every Deployment has its spec.replicas pods; a scale-down removes
    pods at once (the not-ready first), new pods become Ready only when ``ready``."""
    for dep in world.deployments.values():
        want = int(dep["spec"]["replicas"])
        status = dep.get("status") or {}
        have_ready = int(status.get("readyReplicas") or 0)
        now_ready = want if ready else min(have_ready, want)
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": want,
            "updatedReplicas": want,
            "readyReplicas": now_ready,
            "availableReplicas": now_ready,
        }


def pods(world: World) -> tuple[int, int]:
    """(pods that exist, pods that are ready), every revision."""
    deps = list(world.deployments.values())
    return (
        sum(int((d.get("status") or {}).get("replicas") or 0) for d in deps),
        sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in deps),
    )


def move(world: World, *, ready: bool = True) -> None:
    """One reconcile, then the controller; the invariants a client notices hold after each."""
    world.step()
    controller(world, ready=False)  # pods asked for exist, not ready yet
    check(world)
    controller(world, ready=ready)
    check(world)


def check(world: World) -> None:
    existing, ready = pods(world)
    assert ready >= R, f"{ready} ready pods, fewer than replicas {R}: {world.deployments.keys()}"
    assert existing <= R + C, f"{existing} pods, more than {C} extra"


def serving_world(spec: dict[str, Any] | None = None) -> World:
    world = World(spec=copy.deepcopy(spec or BASE))
    world.step()
    world.roll_out()
    world.settle()
    assert world.condition("Ready")["status"] == "True"
    assert pods(world) == (R, R)
    return world


def revisions_live(world: World) -> set[str]:
    return {str(template_revision(d)) for d in world.deployments.values()}


def canary_world(k: int = 6, *, stable: bool = False) -> tuple[World, str, str]:
    """Serving one revision (marked stable by a healthy run if ``stable``); a change of k starts a canary of C
    pods beside it, Ready."""
    world = serving_world()
    old = rev(world.spec)
    if stable:
        world.monitor = MonitorFinding(revision=old, healthy=True, healthy_seconds=60, message="healthy")
        world.settle()
        world.monitor = None
    world.change_spec(speculation={"numSpeculativeTokens": k})
    new = rev(world.spec)
    p = world.step()
    assert p.canary is not None and p.canary.id == new and p.serving is not None and p.serving.id == old
    assert world.status["canary"]["phase"] == "Starting"
    controller(world, ready=True)
    world.settle()
    assert world.status["canary"]["phase"] == "Analyzing"
    assert {template_revision(d): d["spec"]["replicas"] for d in world.deployments.values()} == {old: R, new: C}
    return world, old, new


def verdict(world: World, old: str, new: str, word: CanaryVerdict, message: str = "") -> None:
    world.monitor = MonitorFinding(
        revision=old,
        canary=CanaryFinding(
            revision=new,
            serving=old,
            verdict=word,
            windows_passed=3 if word is CanaryVerdict.PASSED else 1,
            acceptance_canary=0.41 if word is CanaryVerdict.FAILED else 0.72,
            acceptance_serving=0.7,
            tpot_canary=0.031,
            tpot_serving=0.03,
            message=message or f"canary {word.value.lower()}",
        ),
    )


def reasons(world: World) -> list[str]:
    return [e.reason for e in world.events]


# ----------------------------------------------------------------------------------------- the step function
@settings(deadline=None)  # a shared CI machine: timing is not what this checks
@given(st.integers(1, 12), st.integers(1, 6), st.data())
def test_a_promotion_never_drops_below_replicas_ready_nor_exceeds_the_surge(
    replicas: int, surge: int, data: Any
) -> None:
    """From R old pods to R new ones, one step per reconcile, the new pods getting ready one or several at a time:
    every moment has at least R ready pods and at most R + C pods, and it finishes."""
    old_pods, new_pods, new_ready = replicas, 0, 0
    for _ in range(2 * replicas + 4):
        keep, new_pods = step(replicas, surge, old_pods, new_ready, new_pods)
        assert new_pods <= replicas and new_pods >= new_ready
        assert old_pods + new_pods <= replicas + surge  # the new pods start beside the old ones that exist
        old_pods = min(old_pods, keep)  # scaling down removes (ready) pods at once
        assert old_pods + new_ready >= replicas
        if new_ready == replicas and old_pods == 0:
            return
        new_ready = data.draw(st.integers(min(new_ready + 1, new_pods), new_pods))  # some new pods get ready
    raise AssertionError("the promotion did not finish")


def test_step_starts_with_the_surge_and_keeps_the_old_until_the_new_are_ready() -> None:
    assert step(3, 1, 3, 0) == (3, 1)  # first the surge
    assert step(3, 1, 3, 1) == (2, 1)  # one new ready: one old goes
    assert step(3, 1, 2, 1, 1) == (2, 2)  # the old pod is gone: one more new one
    assert step(3, 1, 0, 3, 3) == (0, 3)


# ----------------------------------------------------------------------------------------- scenarios
def test_first_revision_rolls_out_directly_under_its_revision_name() -> None:
    world = serving_world()
    assert list(world.deployments) == [f"coder-{rev(world.spec)}"]
    assert "canary" not in world.status


def test_a_passed_canary_is_promoted_step_by_step_with_one_event() -> None:
    world, old, new = canary_world()
    assert reasons(world).count("CanaryStarted") == 1
    assert world.status["revision"]["serving"] == old and world.condition("Ready")["status"] == "True"
    verdict(world, old, new, CanaryVerdict.PASSED)
    move(world, ready=False)
    assert world.annotations(new)[ANNOTATION_REASON] == CANARY_PASSED
    assert world.annotations(new)[ANNOTATION_STATE] == ""  # passed the canary, not stable yet
    assert world.status["canary"]["phase"] == "Promoting"
    world.monitor = None  # the verdict is durable: a new process (no finding) goes on promoting
    for _ in range(12):
        move(world)
        if revisions_live(world) == {new}:
            break
    world.settle()
    assert revisions_live(world) == {new} and pods(world) == (R, R)
    assert world.status["canary"]["phase"] == "Promoted"
    assert world.status["canary"]["acceptance"] == {"canary": 0.72, "serving": 0.7}
    assert world.status["revision"]["serving"] == new and world.condition("Ready")["status"] == "True"
    assert reasons(world).count("CanaryPromoted") == 1


def test_ready_stays_true_through_the_promotion() -> None:
    world, old, new = canary_world()
    verdict(world, old, new, CanaryVerdict.PASSED)
    for _ in range(12):
        move(world)
        world.monitor = None
        assert world.condition("Ready")["status"] == "True", world.condition("Ready")
        if revisions_live(world) == {new}:
            break
    assert revisions_live(world) == {new}


def test_a_spec_changed_back_while_its_canary_runs_keeps_the_serving_revision() -> None:
    """Serving A, a canary of B, then the spec names A again: A serves on at full size, B's pods go."""
    world, old, new = canary_world()
    world.change_spec(speculation={"numSpeculativeTokens": 4})  # back to the first revision
    assert rev(world.spec) == old
    move(world)
    world.settle()
    assert revisions_live(world) == {old} and pods(world) == (R, R) and world.deployment_of(new) is None
    assert world.status["canary"]["phase"] == "Aborted" and "dropped" in world.status["canary"]["message"]


def test_a_failed_canary_is_aborted_and_the_serving_pods_are_untouched() -> None:
    world, old, new = canary_world()
    incumbent = copy.deepcopy(world.deployment_of(old))
    verdict(world, old, new, CanaryVerdict.FAILED, "canary 0.41 vs serving 0.70 over 12000 draft tokens")
    move(world)
    world.monitor = None
    world.settle()
    assert revisions_live(world) == {old}
    assert world.deployment_of(old) == incumbent  # not patched: same pods, no restart
    ann = world.annotations(new)
    assert (ann[ANNOTATION_STATE], ann[ANNOTATION_REASON]) == ("failed", CANARY_ABORTED)
    assert world.status["canary"]["phase"] == "Aborted" and "0.41" in world.status["canary"]["message"]
    assert world.condition("RolledBack")["reason"] == CANARY_ABORTED
    assert world.status["revision"]["serving"] == old
    warnings = [e.reason for e in world.events if e.type == "Warning"]
    assert warnings == [CANARY_ABORTED]  # one Warning, no RolledBack/Degraded besides
    # not retried until the spec changes
    for _ in range(3):
        move(world)
    assert revisions_live(world) == {old}


def test_the_incumbent_serves_after_an_abort_even_when_not_stable_yet() -> None:
    spec = {**BASE, "rollback": {"stableAfterSeconds": 3600}}
    world = serving_world(spec)
    old = rev(world.spec)
    world.change_spec(speculation={"numSpeculativeTokens": 7})
    new = rev(world.spec)
    move(world)
    verdict(world, old, new, CanaryVerdict.FAILED)
    move(world)
    world.monitor = None
    world.settle()
    assert revisions_live(world) == {old} and world.status["revision"]["serving"] == old  # not a -nospec fallback


def test_a_change_of_replicas_alone_starts_no_canary() -> None:
    world = serving_world()
    only = set(world.deployments)
    world.change_spec(replicas=R + 1)
    world.step()
    assert set(world.deployments) == only and "canary" not in world.status
    assert next(iter(world.deployments.values()))["spec"]["replicas"] == R + 1


def test_a_newer_change_during_a_canary_drops_the_old_canary() -> None:
    world, old, first = canary_world(k=6)
    world.change_spec(speculation={"numSpeculativeTokens": 8})
    second = rev(world.spec)
    move(world)
    move(world)
    assert revisions_live(world) == {old, second}
    assert world.status["canary"]["revision"] == second and world.deployment_of(old) is not None
    assert world.deployment_of(first) is None


def test_a_live_rollback_after_promotion_brings_the_fallback_first() -> None:
    world, old, new = canary_world(stable=True)
    assert world.annotations(old)[ANNOTATION_STATE] == "stable"  # the last good revision a rollback goes back to
    verdict(world, old, new, CanaryVerdict.PASSED)
    for _ in range(12):
        move(world)
        world.monitor = None
        if revisions_live(world) == {new}:
            break
    world.settle()
    # later the rate falls on the promoted revision: the monitor trips on it (the serving revision)
    world.monitor = MonitorFinding(revision=new, trip=True, message="rate 0.2 below 0.5")
    move(world, ready=False)
    world.monitor = None
    assert revisions_live(world) == {old, new}  # the fallback's pods first, the bad ones still serve
    for _ in range(12):
        move(world)
        if revisions_live(world) == {old}:
            break
    assert revisions_live(world) == {old} and pods(world) == (R, R)
    assert world.condition("RolledBack")["status"] == "True"


def test_strategy_replace_deletes_the_other_revision_at_once() -> None:
    world = serving_world({**BASE, "rollout": {"strategy": "Replace"}})
    old = rev(world.spec)
    world.change_spec(speculation={"numSpeculativeTokens": 6})
    world.step()
    assert revisions_live(world) == {rev(world.spec)} and old not in revisions_live(world)
    assert "canary" not in world.status


def test_an_operator_upgrade_keeps_the_legacy_deployment_under_its_name() -> None:
    """A Deployment named <name> (earlier versions) that runs the serving revision is kept and patched under its
    name; only a new revision gets a new name."""
    world = serving_world()
    ((_, dep),) = world.deployments.items()
    legacy = copy.deepcopy(dep)
    legacy["metadata"]["name"] = "coder"
    legacy["spec"]["selector"] = {
        "matchLabels": {"specdeploy.io/name": "coder", "app.kubernetes.io/component": "server"}
    }
    world.deployments = {"coder": legacy}
    world.settle()
    assert list(world.deployments) == ["coder"]
    world.change_spec(speculation={"numSpeculativeTokens": 6})
    move(world)
    assert set(world.deployments) == {"coder", f"coder-{rev(world.spec)}"}


def test_crashes_at_every_canary_step_say_each_transition_once() -> None:
    for crash in ("after-verdicts", "after-events"):
        world, old, new = canary_world()
        world.crash = crash
        verdict(world, old, new, CanaryVerdict.PASSED)
        for _ in range(14):
            move(world)
            if revisions_live(world) == {new}:
                break
        world.crash = None
        world.settle()
        assert revisions_live(world) == {new}, crash
        assert reasons(world).count("CanaryStarted") == 1 and reasons(world).count("CanaryPromoted") == 1, crash
        world2, old2, new2 = canary_world()
        world2.crash = crash
        verdict(world2, old2, new2, CanaryVerdict.FAILED)
        move(world2)
        world2.crash = None
        world2.monitor = None
        world2.settle()
        assert revisions_live(world2) == {old2}, crash
        assert reasons(world2).count(CANARY_ABORTED) == 1, crash

"""spec.rollback.minSpeedup (issue 14 item 2): speculation slower than the control group is rolled back exactly like a
low acceptance rate, with reason SlowerThanControl and the numbers in words (the planner on the cluster-as-data world).
"""

from __future__ import annotations

import copy

from tests.unit.rollout.test_plan import BASE, Reports, next_revision, reports, rev, stable_world, with_k

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import serving_snapshot
from specdeploy.monitor.decision import Verdict
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.monitor.payoff import SpeedObservation, decide_speed, measure
from specdeploy.render.control import control_deployment_name
from specdeploy.rollout.history import ANNOTATION_REASON, ANNOTATION_STATE, RevisionRecord, ServingChoice
from specdeploy.rollout.plan import spec_for
from specdeploy.rollout.serve import SLOWER_THAN_CONTROL

__all__ = ["reports"]  # the shared fixture, imported so pytest finds it here


def test_slower_than_control_rolls_back_to_the_stable_revision_and_says_why(reports: Reports) -> None:
    world = stable_world(reports)
    good = rev(BASE)
    slow_spec = with_k(7)
    slow_spec["speculation"]["control"] = {"replicas": 1, "minOutputTokens": 100}
    slow_spec["rollback"] = {**slow_spec["rollback"], "minSpeedup": 1.0}
    slow = rev(slow_spec)
    next_revision(world, reports.compatible, slow_spec)
    assert world.serving() == slow
    mark = len(world.events)

    # Three windows in which the speculative pods are at 0.58x the control pods' speed at 8 running requests.
    windows = [
        measure([SpeedObservation(8, 0.1 / 0.58, 500)], [SpeedObservation(8, 0.1, 500)], min_tokens=100)
        for _ in range(3)
    ]
    decision = decide_speed(1.0, 3, windows)
    assert decision.verdict is Verdict.ROLLBACK
    world.monitor = MonitorFinding(revision=slow, trip=True, trip_reason=decision.reason, message=decision.message)
    world.step()
    assert world.annotations(slow)[ANNOTATION_STATE] == "failed"
    assert world.annotations(slow)[ANNOTATION_REASON] == SLOWER_THAN_CONTROL == "SlowerThanControl"
    assert world.serving() == good
    rolled = world.condition("RolledBack")
    assert (rolled["status"], rolled["reason"]) == ("True", SLOWER_THAN_CONTROL)
    assert "0.58x its speed, below minSpeedup 1.00 in 3 consecutive" in rolled["message"]
    degraded = world.condition("Degraded")
    assert (degraded["reason"], degraded["message"]) == (
        SLOWER_THAN_CONTROL,
        "speculation stayed slower than the control group",
    )
    warnings = [e for e in world.events[mark:] if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["RolledBack"]
    assert "slower than the control group" in warnings[0].message
    [failed] = world.status["revision"]["failed"]
    assert (failed["id"], failed["reason"]) == (slow, SLOWER_THAN_CONTROL)


def test_a_revision_is_rendered_with_todays_control_group_and_adaptive_settings() -> None:
    # Revisions leave control and adaptive out of their snapshot (they are not part of the pods' revision), so the
    # spec rendered for an older revision takes today's: minSpeedup, which needs control, stays valid.
    old = SpeculativeDeploymentSpec.model_validate(BASE)
    today = copy.deepcopy(with_k(7))
    today["speculation"]["control"] = {"replicas": 2}
    today["speculation"]["adaptive"] = {"enabled": True}
    today["rollback"] = {**today["rollback"], "minSpeedup": 0.9}
    record = RevisionRecord(id=rev(BASE), number=1, spec=serving_snapshot(old))
    rendered = spec_for(ServingChoice(record, speculation=True), SpeculativeDeploymentSpec.model_validate(today))
    assert rendered.speculation.k == 4  # the old revision's depth
    assert rendered.speculation.control is not None and rendered.speculation.control.replicas == 2
    assert rendered.speculation.adaptive is not None and rendered.speculation.adaptive.enabled
    assert rendered.rollback.min_speedup == 0.9


def test_the_control_deployment_stands_beside_what_serves_and_never_restarts_it(reports: Reports) -> None:
    world = stable_world(reports)
    serving = world.deployment
    assert serving is not None
    name, template = serving["metadata"]["name"], copy.deepcopy(serving["spec"]["template"])
    world.change_spec(speculation={**BASE["speculation"], "control": {"replicas": 2}})
    world.settle()
    control = world.deployments.get(control_deployment_name(world.name))
    assert control is not None and control["spec"]["replicas"] == 2
    [container] = control["spec"]["template"]["spec"]["containers"]
    assert "--speculative-config" not in container["args"]
    assert container["args"][0] == "org/target-70b"
    # The speculative pods are untouched: same Deployment, same template, same revision.
    assert world.deployments[name]["spec"]["template"] == template
    assert world.serving() == rev(BASE)
    world.roll_out()
    world.settle()
    assert world.status["ready"] == "3/3"  # READY counts the control pods; replicas stays the speculative ones
    assert (world.status["replicas"], world.status["readyReplicas"]) == (1, 1)
    assert world.condition("Ready")["status"] == "True"
    # Scaling the control group changes only the control Deployment; removing it deletes it.
    world.change_spec(speculation={**BASE["speculation"], "control": {"replicas": 1}})
    world.settle()
    assert world.deployments[control_deployment_name(world.name)]["spec"]["replicas"] == 1
    assert world.deployments[name]["spec"]["template"] == template
    world.change_spec(speculation={**BASE["speculation"], "control": None})
    world.settle()
    assert control_deployment_name(world.name) not in world.deployments
    assert world.deployments[name]["spec"]["template"] == template

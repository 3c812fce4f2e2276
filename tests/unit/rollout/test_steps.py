"""The plan's steps one by one (``rollout.plan`` is their pipeline): each is a pure function of plain data.

Scenario tests of the whole pipeline are in test_plan.py; these pin what each step alone decides, so a step can be
changed (or a new one added, such as a canary) knowing which decisions it owns.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from specdeploy import conditions as cond
from specdeploy.api import RollbackAction, SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.api.status import MAX_FAILED_REVISIONS
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.render import owner_for
from specdeploy.rollout import progress
from specdeploy.rollout.announce import Subject, Transitions, newly_stable, plan_events
from specdeploy.rollout.canary import Layout
from specdeploy.rollout.history import History, RevisionRecord, RevisionState, ServingChoice
from specdeploy.rollout.plan import Owner, prunable_names, record_revision, render_children
from specdeploy.rollout.serve import ACCEPTANCE_LOW, apply_finding, select
from specdeploy.rollout.status import Rollout, StatusInput, build_status, rollout_conditions
from specdeploy.rollout.validation import (
    VALIDATION_ERROR,
    VALIDATION_FAILED,
    VALIDATION_RETRY_SECONDS,
    JobOutcome,
    ValidationInput,
    ValidationState,
    holds_rollout,
    job_outcome,
    validate_step,
)

SPEC = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
    "rollback": {"stableAfterSeconds": 60},
}
OWNER = Owner("coder", "llm", "0b6f5a52-9c1e-4a43-a1a8-6a1f1f0c2e11", 3)
NOW, NOW_ISO = 1_767_268_800.0, "2026-01-01T12:00:00Z"
FAILED, STABLE, NEW = RevisionState.FAILED, RevisionState.STABLE, RevisionState.NEW


def spec(**sections: Any) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate({**copy.deepcopy(SPEC), **sections})


def r(rev_id: str, number: int, state: RevisionState = NEW, reason: str = "", **kw: Any) -> RevisionRecord:
    return RevisionRecord(id=rev_id, number=number, spec={}, state=state, reason=reason, **kw)


def deployment(serving_id: str, replicas: int = 1, ready: int = 1, generation: int = 1, seen: int = 1) -> dict:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"specdeploy.io/revision": serving_id}}}},
        "status": {
            "observedGeneration": seen,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
        },
    }


# ----------------------------------------------------------------------------------------- 1. record the revision
def test_record_revision_records_a_new_spec_once_with_the_next_number() -> None:
    s = spec()
    current, history, record = record_revision(OWNER, s, History((r("aaaaaaaaaa", 4),)))
    assert (current.id, current.number) == (revision_id(s), 5)
    assert history.get(current.id) == current and len(history.revisions) == 2
    assert record is not None and record["revision"] == 5
    assert record["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    again = record_revision(OWNER, s, history)
    assert again == (current, history, None), "a revision already recorded is not recorded again"


# ----------------------------------------------------------------------------------------- 2. validation
def validation_input(s: SpeculativeDeploymentSpec, current: RevisionRecord, job: JobOutcome | None) -> ValidationInput:
    return ValidationInput(owner_for(OWNER.name, OWNER.uid), OWNER.namespace, s, current, job, [], NOW, NOW_ISO)


def report(exit_code: int, *failing: str) -> JobOutcome:
    checks = [{"name": name, "status": "fail", "message": "differs"} for name in failing]
    return JobOutcome("coder-validate-x", True, exit_code, {"checks": checks}, finished_at=NOW - 10)


@pytest.mark.parametrize(
    ("sections", "reason"),
    [
        ({"validation": {"policy": "Skip"}}, "ValidationSkipped"),
        ({"draft": None, "speculation": {"method": "ngram", "numSpeculativeTokens": 2}}, "NothingToValidate"),
    ],
)
def test_validation_is_skipped_without_a_job_when_there_is_nothing_to_check(sections: dict, reason: str) -> None:
    s = SpeculativeDeploymentSpec.model_validate({k: v for k, v in {**SPEC, **sections}.items() if v is not None})
    step = validate_step(validation_input(s, r("a", 1), None))
    assert step.state is ValidationState.SKIPPED and not step.state.holds_rollout
    assert (step.condition.status, step.condition.reason) == (cond.TRUE, reason)
    assert step.create_job is None and not step.events and not step.verdicts


def test_no_report_yet_creates_the_job_and_announces_it_once() -> None:
    step = validate_step(validation_input(spec(), r("a", 1), None))
    assert step.state is ValidationState.RUNNING and step.state.holds_rollout
    assert step.create_job is not None and step.create_job["kind"] == "Job"
    assert [e.reason for e in step.events] == ["ValidationStarted"]
    said = [{"type": cond.VALIDATED, "status": cond.UNKNOWN, "message": step.condition.message}]
    running = validate_step(
        ValidationInput(
            owner_for(OWNER.name, OWNER.uid), "llm", spec(), r("a", 1), JobOutcome("j", False), said, NOW, NOW_ISO
        )
    )
    assert running.create_job is None and not running.events, "the Job runs and the status says so already"


def test_a_compatible_report_passes_and_is_recorded_on_the_revision() -> None:
    step = validate_step(validation_input(spec(), r("a", 1), report(0)))
    assert step.state is ValidationState.PASSED
    assert step.condition.reason == "ValidationSucceeded" and step.summary is not None
    assert [rev for rev, _ in step.verdicts] == ["a"]


def test_an_incompatible_report_under_enforce_fails_the_revision_durably() -> None:
    step = validate_step(validation_input(spec(), r("a", 1), report(1, "vocabulary")))
    assert step.state is ValidationState.FAILED
    assert (step.condition.status, step.condition.reason) == (cond.FALSE, VALIDATION_FAILED)
    assert step.current.state is FAILED and step.current.reason == VALIDATION_FAILED
    assert len(step.verdicts) == 2, "the report, then the FAILED verdict"
    assert holds_rollout(ValidationState.PASSED, step.current), "a refused revision stays held"


def test_an_incompatible_report_under_warn_lets_the_revision_roll_out() -> None:
    step = validate_step(validation_input(spec(validation={"policy": "Warn"}), r("a", 1), report(1, "vocabulary")))
    assert step.state is ValidationState.PASSED and step.condition.reason == VALIDATION_FAILED
    assert step.current.state is NEW


def test_could_not_check_is_retried_only_after_the_retry_delay() -> None:
    fresh = validate_step(validation_input(spec(), r("a", 1), report(2)))
    assert fresh.state is ValidationState.ERROR and fresh.condition.reason == VALIDATION_ERROR
    assert fresh.delete_job is None and not fresh.verdicts, "could-not-check is not recorded on the revision"
    old = JobOutcome("coder-validate-x", True, 2, {}, finished_at=NOW - VALIDATION_RETRY_SECONDS - 1)
    assert validate_step(validation_input(spec(), r("a", 1), old)).delete_job == "coder-validate-x"


# ----------------------------------------------------------------------------------------- 3. what serves
def test_select_serves_the_current_revision_unless_held() -> None:
    history = History((r("a", 1, STABLE), r("b", 2)))
    chosen = select(history, history.revisions[1], RollbackAction.ROLLBACK_TO_LAST_GOOD, False, "a")
    assert chosen.serving is not None and chosen.serving.id == "b" and chosen.replaced is None
    held = select(history, history.revisions[1], RollbackAction.ROLLBACK_TO_LAST_GOOD, True, "a")
    assert held.serving is not None and held.serving.id == "a", "what runs keeps running while b is held"
    assert select(history, history.revisions[1], RollbackAction.NONE, True, None).serving is None


def test_select_names_the_failed_current_revision_a_rollback_replaces() -> None:
    history = History((r("a", 1, STABLE), r("b", 2, FAILED, ACCEPTANCE_LOW)))
    chosen = select(history, history.revisions[1], RollbackAction.ROLLBACK_TO_LAST_GOOD, False, "b")
    assert chosen.serving is not None and chosen.serving.id == "a" and chosen.replaced == history.revisions[1]
    kept = select(history, history.revisions[1], RollbackAction.NONE, False, "b")
    assert kept.serving is not None and kept.serving.id == "b" and kept.replaced is None


# ----------------------------------------------------------------------------------------- 4. the monitor's finding
def finding_step(finding: MonitorFinding | None, history: History, action: str = "RollbackToLastGood") -> Any:
    s = spec(rollback={"action": action, "stableAfterSeconds": 60})
    current = history.revisions[-1]
    selection = select(history, current, s.rollback.action, False, current.id)
    return apply_finding(
        finding,
        history=history,
        current=current,
        selection=selection,
        rollback=s.rollback,
        held=False,
        live_id=current.id,
        now_iso=NOW_ISO,
    )


def test_a_trip_fails_the_serving_revision_and_chooses_again() -> None:
    step = finding_step(MonitorFinding("b", trip=True, message="0.2 < 0.5"), History((r("a", 1, STABLE), r("b", 2))))
    assert step.current.state is FAILED and step.current.message == "0.2 < 0.5"
    assert step.selection.serving.id == "a" and step.rolled_back_now == step.current
    assert [rev for rev, _ in step.verdicts] == ["b"]


def test_a_trip_under_action_none_fails_the_revision_but_rolls_nothing_back() -> None:
    step = finding_step(MonitorFinding("b", trip=True), History((r("a", 1, STABLE), r("b", 2))), action="None")
    assert step.current.state is FAILED and step.selection.serving.id == "b" and step.rolled_back_now is None


def test_a_healthy_finding_makes_a_new_revision_stable_only_after_stable_after_seconds() -> None:
    history = History((r("a", 1),))
    early = finding_step(MonitorFinding("a", healthy=True, healthy_seconds=59), history)
    assert early.newly_stable is None and not early.verdicts
    late = finding_step(MonitorFinding("a", healthy=True, healthy_seconds=60, message="ok"), history)
    assert late.newly_stable is not None and late.newly_stable.state is STABLE
    assert late.selection.serving.revision.state is STABLE


def test_a_finding_about_another_revision_changes_nothing() -> None:
    history = History((r("a", 1),))
    step = finding_step(MonitorFinding("zzz", trip=True), history)
    assert step.history == history and not step.verdicts and step.rolled_back_now is None


# ----------------------------------------------------------------------------------------- 5. children
def test_render_children_renders_what_serves_and_always_a_service() -> None:
    s = spec()
    served = ServingChoice(
        RevisionRecord("a", 1, dict(s.model_dump(by_alias=True, exclude_none=True))), speculation=False
    )
    deps, _ = render_children(OWNER, s, served, "b", Layout(target=2, scale={"coder-old": 1}))
    assert deps[0]["spec"]["template"]["metadata"]["labels"]["specdeploy.io/revision"] == "a-nospec"
    assert deps[0]["spec"]["replicas"] == 2 and deps[0]["metadata"]["name"] == "coder-a-nospec"
    assert deps[1] == {  # another revision's Deployment is only scaled: its template (and pods) stay as they are
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coder-old", "namespace": OWNER.namespace},
        "spec": {"replicas": 1},
    }
    none, svc_only = render_children(OWNER, s, None, "b", Layout())
    assert none == [] and svc_only["kind"] == "Service"


# ----------------------------------------------------------------------------------------- progress
def test_rolled_out_needs_the_controller_to_have_seen_the_template_and_no_old_pods() -> None:
    assert progress.rolled_out(deployment("a"), "a", 1)
    assert not progress.rolled_out(deployment("a", generation=2, seen=1), "a", 1)
    assert progress.fully_ready(deployment("a", generation=2, seen=1), "a", 1)
    assert not progress.rolled_out(deployment("b"), "a", 1) and not progress.fully_ready(deployment("b"), "a", 1)
    assert not progress.rolled_out(None, "a", 1)


# ----------------------------------------------------------------------------------------- 6. conditions and status
def rollout(**kw: Any) -> Rollout:
    base: dict[str, Any] = {
        "validation": ValidationState.PASSED,
        "serving": ServingChoice(r("a", 1), True),
        "replaced": None,
        "action": RollbackAction.ROLLBACK_TO_LAST_GOOD,
        "rolled_out": True,
        "ready": 1,
        "replicas": 1,
    }
    return Rollout(**{**base, **kw})


def by_type(conditions: list[cond.Condition]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conditions}


def test_conditions_of_a_served_rolled_out_revision() -> None:
    got = by_type(rollout_conditions(rollout()))
    assert got == {
        cond.READY: (cond.TRUE, "Serving"),
        cond.PROGRESSING: (cond.FALSE, "Complete"),
        cond.ROLLED_BACK: (cond.FALSE, "NotRolledBack"),
        cond.DEGRADED: (cond.FALSE, "AsExpected"),
    }


def test_conditions_of_a_rollback_and_of_a_refused_draft() -> None:
    failed = r("b", 2, FAILED, ACCEPTANCE_LOW, message="0.2 < 0.5")
    got = rollout_conditions(rollout(replaced=failed))
    assert by_type(got)[cond.ROLLED_BACK] == (cond.TRUE, ACCEPTANCE_LOW) and "0.2 < 0.5" in got[2].message
    refused = by_type(rollout_conditions(rollout(validation=ValidationState.FAILED, serving=None, rolled_out=False)))
    assert refused[cond.DEGRADED] == (cond.TRUE, VALIDATION_FAILED) and refused[cond.READY][1] == "NotServing"


def test_status_is_built_through_the_models_keeping_nulls_that_clear_old_values() -> None:
    s = spec()
    failed = [r(f"f{i:09d}", i + 1, FAILED, ACCEPTANCE_LOW, at=NOW_ISO) for i in range(MAX_FAILED_REVISIONS + 3)]
    history = History((*failed, r("c", 99)))
    conditions = cond.set_conditions([], rollout_conditions(rollout(serving=None, rolled_out=False)), NOW_ISO, 3)
    facts = StatusInput("coder", "llm", 3, s, "c", None, history, 0)
    status = build_status(facts, conditions, validation=None, finding=None, old={}, now_iso=NOW_ISO)
    assert status["revision"]["serving"] is None and status["revision"]["stable"] is None
    assert len(status["revision"]["failed"]) == MAX_FAILED_REVISIONS
    assert "message" not in status["revision"]["failed"][0], "an empty message is left out, not written empty"
    assert (status["phase"], status["ready"], status["endpoint"]) == ("Pending", "0/1", "http://coder.llm.svc:8000")
    assert "validation" not in status and "acceptance" not in status


def test_status_keeps_the_observed_validation_and_acceptance_until_replaced() -> None:
    old = {"validation": {"revision": "a", "compatible": True}, "acceptance": {"rate": 0.5, "revision": "a"}}
    facts = StatusInput("coder", "llm", 3, spec(), "a", None, History((r("a", 1),)), 0)
    kept = build_status(facts, [], validation=None, finding=None, old=old, now_iso=NOW_ISO)
    assert (kept["validation"], kept["acceptance"]) == (old["validation"], old["acceptance"])
    new = MonitorFinding("a", acceptance={"rate": 0.75, "revision": "a"})
    replaced = build_status(facts, [], validation={"exitCode": 0}, finding=new, old=old, now_iso=NOW_ISO)
    assert replaced["acceptance"]["rate"] == 0.75
    assert replaced["validation"] == {"revision": "a", "policy": "Enforce", "exitCode": 0}


def test_status_refuses_a_value_the_schema_would_refuse() -> None:
    facts = StatusInput("coder", "llm", 3, spec(), "a", None, History((r("a", 1),)), 0)
    with pytest.raises(ValueError, match="rate"):
        build_status(
            facts, [], validation=None, finding=MonitorFinding("a", acceptance={"rate": 2}), old={}, now_iso=NOW_ISO
        )


# ----------------------------------------------------------------------------------------- 7. Events and pruning
def transitions(history: History, old_revision: dict, failed: list[dict], **kw: Any) -> Transitions:
    base: dict[str, Any] = {
        "old_conditions": [],
        "new_conditions": [],
        "old_revision": old_revision,
        "failed_listed": failed,
        "history": history,
        "action": RollbackAction.ROLLBACK_TO_LAST_GOOD,
        "serving": ServingChoice(history.revisions[0], True),
        "rolled_back_now": None,
    }
    return Transitions(**{**base, **kw})


def test_a_failure_recorded_but_not_yet_in_status_is_announced_under_its_verdict_name() -> None:
    bad = r("b", 2, FAILED, ACCEPTANCE_LOW, message="low", at=NOW_ISO)
    history = History((r("a", 1, STABLE), bad))
    subject = Subject(OWNER.name, OWNER.uid)
    first = plan_events(subject, transitions(history, {"stable": "a"}, [{"id": "b"}]))
    assert [e.reason for e in first] == ["RolledBack"]
    listed = {"stable": "a", "failed": [{"id": "b", "at": NOW_ISO}]}
    assert plan_events(subject, transitions(history, listed, [{"id": "b"}])) == [], "said once"
    none = transitions(history, {"stable": "a"}, [{"id": "b"}], action=RollbackAction.NONE)
    assert plan_events(subject, none) == [], "action None rolls nothing back"
    assert plan_events(subject, transitions(history, {"stable": "a"}, [{"id": "b"}]), already=first) == []


def test_newly_stable_only_for_a_newer_stable_revision() -> None:
    history = History((r("a", 1, STABLE), r("b", 2, STABLE)))
    assert newly_stable(history, {"stable": "a"}) == history.revisions[1]
    assert newly_stable(history, {"stable": "b"}) is None
    older = History((r("a", 1, STABLE), r("b", 2, FAILED)))
    assert newly_stable(older, {"stable": "b"}) is None, "falling back to an older stable revision is no news"


def test_prune_keeps_current_serving_and_stable() -> None:
    history = History(tuple(r(f"r{i:09d}", i + 1) for i in range(25)))
    names = prunable_names("coder", history, history.revisions[0], ServingChoice(history.revisions[1], True))
    assert len(names) == 5 and "coder-r000000000" not in names and "coder-r000000001" not in names


# ----------------------------------------------------------------------------------------- the Job's outcome
def job_index(*conditions: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": "coder-validate-x", "uid": "job-uid-x", "revision": "x", "conditions": list(conditions)}]


def pod_index(exit_code: int, message: str) -> list[dict[str, Any]]:
    terminated = {"exitCode": exit_code, "message": message, "reason": "Error"}
    return [{"name": "p", "job_uid": "job-uid-x", "terminated": terminated}]


DONE = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": NOW_ISO}


def test_job_outcome_reads_the_exit_code_and_report_of_the_terminated_pod() -> None:
    assert job_outcome([], [], "coder-validate-x") is None
    assert job_outcome(job_index(), [], "coder-validate-x") == JobOutcome("coder-validate-x", finished=False)
    got = job_outcome(job_index(DONE), pod_index(1, '{"checks": []}'), "coder-validate-x")
    assert got is not None and (got.exit_code, got.report, got.finished_at) == (1, {"checks": []}, NOW)


def test_job_outcome_counts_a_crash_as_could_not_check_and_keeps_its_words() -> None:
    got = job_outcome(job_index(DONE), pod_index(137, "OOMKilled"), "coder-validate-x")
    assert got is not None and (got.exit_code, got.report, got.message) == (2, None, "OOMKilled")
    no_pod = job_outcome(job_index(DONE), [], "coder-validate-x")
    assert no_pod is not None and no_pod.exit_code is None and "BackoffLimitExceeded" in no_pod.message


def test_a_report_recorded_on_the_revision_stays_shown_once_the_policy_is_skip() -> None:
    recorded = {"compatible": False, "exitCode": 1, "summary": "incompatible: vocabulary", "checks": []}
    step = validate_step(validation_input(spec(validation={"policy": "Skip"}), r("a", 1, validation=recorded), None))
    assert step.state is ValidationState.SKIPPED and step.summary == recorded
    facts = StatusInput("coder", "llm", 3, spec(validation={"policy": "Skip"}), "a", None, History((r("a", 1),)), 0)
    status = build_status(facts, [], validation=step.summary, finding=None, old={}, now_iso=NOW_ISO)
    assert status["validation"] == {"revision": "a", "policy": "Skip", **recorded}

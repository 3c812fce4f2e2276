"""The reconcile plan, scenario by scenario: what a user sees in status, Events and the Deployment.

Each test drives ``World`` (tests/unit/rollout/world.py): the real ``plan()`` on a cluster held as data, carried out
as the handler does. Validation reports are produced by the real validator (``specdeploy validate``) on model
folders built from real tokenizer files, and written to a report file exactly as the Job writes its termination
message; the monitor's verdicts come from the real decision function through the real tracker.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.harness import zoo
from tests.unit.rollout.world import World, monitor_finding, speculative_config, template_revision, vllm_args

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id, serving_snapshot
from specdeploy.api.status import MAX_FAILED_REVISIONS
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.render.labels import SD_NAME as LABEL_NAME
from specdeploy.render.labels import SD_REVISION as LABEL_REVISION
from specdeploy.rollout.history import (
    ANNOTATION_REASON,
    ANNOTATION_STATE,
    ANNOTATION_VALIDATION,
    MAX_REVISIONS,
    from_controller_revisions,
)
from specdeploy.rollout.plan import plan, spec_for
from specdeploy.rollout.serve import ACCEPTANCE_LOW
from specdeploy.rollout.validation import VALIDATION_ERROR, VALIDATION_FAILED, VALIDATION_RETRY_SECONDS
from specdeploy.validate.cli import main as validate_main

BASE: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
    "rollback": {"stableAfterSeconds": 0},
    # These scenarios are about what replaces what: strategy Replace, every pod at once (test_canary: Canary).
    "rollout": {"strategy": "Replace"},
}


def rev(spec: dict[str, Any]) -> str:
    return revision_id(SpeculativeDeploymentSpec.model_validate(spec))


def with_k(k: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = copy.deepcopy(base or BASE)
    spec["speculation"] = {**spec["speculation"], "numSpeculativeTokens": k}
    return spec


def reasons(world: World, start: int = 0) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for e in world.events[start:]]


# ----------------------------------------------------------------------------------------- real validator reports
@dataclass(frozen=True)
class Report:
    exit_code: int
    report: dict[str, Any]


@dataclass(frozen=True)
class Reports:
    compatible: Report
    incompatible: Report
    unreachable: Report


def _validate(target: Path, draft: Path, report_file: Path) -> Report:
    """Run ``specdeploy validate`` as the Job's container does and read back its termination message."""
    with contextlib.redirect_stdout(io.StringIO()):
        code = validate_main(
            ["--target", str(target), "--draft", str(draft), "--output", "json", "--report-file", str(report_file)]
        )
    text = report_file.read_text(encoding="utf-8")
    assert len(text.encode()) <= 4096, "the report must fit a termination message"
    return Report(code, json.loads(text))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    root = tmp_path_factory.mktemp("plan-models")
    v01 = zoo.mistral(root / "mistral-7b-v0.1", zoo.MISTRAL_7B_V01, tokenizer="spm-v1")
    v03 = zoo.mistral(root / "mistral-7b-v0.3", zoo.MISTRAL_7B_V03, tokenizer="spm-v3")
    out = Reports(
        compatible=_validate(v01, v01, root / "ok.json"),
        incompatible=_validate(v01, v03, root / "bad.json"),
        unreachable=_validate(v01, root / "not-there", root / "err.json"),
    )
    assert (out.compatible.exit_code, out.incompatible.exit_code, out.unreachable.exit_code) == (0, 1, 2)
    return out


def validated(world: World, report: Report) -> World:
    """Run the world through its validation Job with ``report`` and settle (the Deployment rolled out if any)."""
    world.step()
    assert world.job is not None, "a validation Job should have been created"
    world.finish_job(report.exit_code, report.report)
    world.step()
    if world.deployment is not None:
        world.roll_out()
    world.settle()
    return world


def serving_world(reports: Reports, spec: dict[str, Any] | None = None) -> World:
    """A world whose first revision validated, rolled out and is Ready."""
    world = validated(World(spec=copy.deepcopy(spec or BASE)), reports.compatible)
    assert world.condition("Ready")["status"] == "True"
    return world


def stable_world(reports: Reports) -> World:
    """A world whose first revision stayed healthy and became stable."""
    world = serving_world(reports)
    world.monitor = monitor_finding(world, [0.8, 0.82, 0.79])
    world.settle()
    world.monitor = None
    assert world.status["revision"]["stable"] == rev(BASE)
    return world


def next_revision(world: World, report: Report, spec: dict[str, Any]) -> World:
    """The user applies ``spec``; its validation Job reports ``report``; the result is settled."""
    world.spec = copy.deepcopy(spec)
    world.generation += 1
    return validated(world, report)


# ----------------------------------------------------------------------------------------- 1. revisions
def test_first_sight_of_a_spec_records_a_controller_revision_with_its_serving_snapshot() -> None:
    world = World(spec=copy.deepcopy(BASE))
    p = world.step()
    rid = rev(BASE)
    cr = p.record_revision
    assert cr is not None
    assert cr["kind"] == "ControllerRevision" and cr["apiVersion"] == "apps/v1"
    assert cr["metadata"]["name"] == f"coder-{rid}"
    assert cr["metadata"]["labels"][LABEL_NAME] == "coder"
    assert cr["metadata"]["labels"][LABEL_REVISION] == rid
    owner = cr["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "SpeculativeDeployment",
        "coder",
        world.uid,
        True,
    )
    assert cr["revision"] == 1
    assert cr["data"]["spec"] == serving_snapshot(SpeculativeDeploymentSpec.model_validate(BASE))
    # read back as the operator does after a restart
    (read,) = from_controller_revisions([cr]).revisions
    assert (read.id, read.number) == (rid, 1)
    # seen again: nothing new to record
    assert world.step().record_revision is None


def test_a_new_spec_gets_the_next_revision_number_and_scaling_gets_none(reports: Reports) -> None:
    world = serving_world(reports)
    world.change_spec(replicas=3)
    p = world.step()
    assert p.record_revision is None and p.create_job is None
    assert world.status["ready"] == "1/3"
    world.change_spec(speculation={"numSpeculativeTokens": 6})
    p = world.step()
    assert p.record_revision is not None and p.record_revision["revision"] == 2


# ----------------------------------------------------------------------------------------- 2. validation
def test_enforce_runs_a_validation_job_and_serves_nothing_until_the_report_says_compatible(reports: Reports) -> None:
    world = World(spec=copy.deepcopy(BASE))
    rid = rev(BASE)
    p = world.step()
    assert p.create_job is not None
    assert p.create_job["kind"] == "Job" and p.create_job["metadata"]["name"] == f"coder-validate-{rid}"
    assert p.deployment is None and world.deployment is None
    assert reasons(world) == [("Normal", "ValidationStarted")]
    assert world.condition("Validated")["status"] == "Unknown"
    assert world.status["phase"] == "Validating"
    assert "serving" not in world.status["revision"]  # null is not stored

    # the Job is still running: nothing changes, no second Job, no second Event
    p = world.step()
    assert p.create_job is None and p.deployment is None and reasons(world) == [("Normal", "ValidationStarted")]

    world.finish_job(reports.compatible.exit_code, reports.compatible.report)
    p = world.step()
    assert p.deployment is not None and template_revision(p.deployment) == rid
    config = speculative_config(p.deployment)
    assert config is not None and config["model"] == "org/draft-7b" and config["num_speculative_tokens"] == 4
    assert world.condition("Validated")["status"] == "True"
    assert world.condition("Validated")["message"] == "compatible; warnings: parameter_ratio"
    assert ("Normal", "ValidationSucceeded") in reasons(world)
    assert world.status["validation"]["compatible"] is True and world.status["validation"]["exitCode"] == 0
    [ratio_check] = [c for c in reports.compatible.report["checks"] if c["name"] == "parameter_ratio"]
    assert world.status["validation"]["parameterRatio"] == ratio_check["details"]["ratio"] > 0
    assert world.status["phase"] == "Progressing"

    world.roll_out()
    world.settle()
    assert world.status["phase"] == "Ready" and world.status["ready"] == "1/1"
    assert reasons(world).count(("Normal", "Ready")) == 1


def test_a_job_the_index_does_not_show_yet_is_asked_for_again_but_not_announced_again() -> None:
    world = World(spec=copy.deepcopy(BASE))
    world.step()
    world.job = None  # the Job exists, but the watch has not delivered it: the create will get a 409
    p = world.step()
    assert p.create_job is not None
    assert reasons(world) == [("Normal", "ValidationStarted")]


def test_a_damaged_report_still_gives_a_status_the_api_server_accepts() -> None:
    world = World(spec={**copy.deepcopy(BASE), "validation": {"policy": "Warn"}})
    world.step()
    report = {
        "compatible": False,
        "checks": [
            {"name": "vocabulary", "status": "fail", "message": "32000 vs 32768"},
            {"name": "memory", "status": "n/a"},
            {"status": "pass"},
            "not a check",
            {"name": "dtype", "status": "warn", "message": "m" * 5000},
            {"name": "parameter_ratio", "status": "pass", "details": {"ratio": float("nan")}},
        ],
    }
    world.finish_job(1, report)
    world.step()  # asserts the status fits the schema
    assert "parameterRatio" not in world.status["validation"]
    checks = world.status["validation"]["checks"]
    assert [(c["name"], c["status"]) for c in checks] == [
        ("vocabulary", "fail"),
        ("dtype", "warn"),
        ("parameter_ratio", "pass"),
    ]
    assert len(checks[1]["message"]) == 300


def test_a_validation_verdict_is_kept_on_the_revision_so_a_vanished_job_is_not_rerun(reports: Reports) -> None:
    world = serving_world(reports)
    assert json.loads(world.annotations(rev(BASE))[ANNOTATION_VALIDATION])["exitCode"] == 0
    world.job = None  # ttlSecondsAfterFinished removed it, or the operator restarted
    p = world.settle()
    assert p.create_job is None and world.condition("Validated")["status"] == "True"


def test_enforce_and_incompatible_keeps_the_previous_revision_serving_and_says_why(reports: Reports) -> None:
    world = serving_world(reports)
    first = rev(BASE)
    bad_spec = {**copy.deepcopy(BASE), "draft": {"model": "org/other-family-1b"}}
    bad = rev(bad_spec)
    mark = len(world.events)
    next_revision(world, reports.incompatible, bad_spec)

    assert world.serving() == first, "the previous revision keeps serving"
    assert world.annotations(bad)[ANNOTATION_STATE] == "failed"
    assert world.annotations(bad)[ANNOTATION_REASON] == VALIDATION_FAILED
    validated_c, degraded = world.condition("Validated"), world.condition("Degraded")
    assert (validated_c["status"], validated_c["reason"]) == ("False", VALIDATION_FAILED)
    assert "vocabulary" in validated_c["message"] and "token_ids" in validated_c["message"]
    assert (degraded["status"], degraded["reason"]) == ("True", VALIDATION_FAILED)
    assert f"revision {first} serves instead" in degraded["message"]
    warnings = [e for e in world.events[mark:] if e.type == "Warning"]
    assert [e.reason for e in warnings] == [VALIDATION_FAILED]
    assert "vocab_size differs: target 32000, draft 32768" in warnings[0].message
    revision = world.status["revision"]
    assert (revision["current"], revision["serving"]) == (bad, first)
    assert [(f["id"], f["reason"]) for f in revision["failed"]] == [(bad, VALIDATION_FAILED)]
    assert world.status["validation"]["revision"] == bad and world.status["validation"]["compatible"] is False
    assert {c["name"]: c["status"] for c in world.status["validation"]["checks"]}["vocabulary"] == "fail"
    assert world.status["phase"] == "Degraded"
    assert world.condition("Ready")["status"] == "True"


def test_enforce_and_incompatible_with_nothing_serving_is_failed(reports: Reports) -> None:
    world = validated(World(spec=copy.deepcopy(BASE)), reports.incompatible)
    assert world.deployment is None
    assert world.status["phase"] == "Failed"
    assert world.condition("Degraded")["message"].endswith("nothing is deployed")
    assert world.status["revision"]["failed"][0]["id"] == rev(BASE)


def test_warn_serves_an_incompatible_draft_with_the_findings_in_status(reports: Reports) -> None:
    spec = {**copy.deepcopy(BASE), "validation": {"policy": "Warn"}}
    world = World(spec=spec)
    world.step()
    world.finish_job(reports.incompatible.exit_code, reports.incompatible.report)
    world.step()
    assert world.serving() == rev(spec)
    assert world.status["phase"] == "Progressing", "Warn rolls out: the STATUS column must not say Failed"
    world.roll_out()
    world.settle()
    assert world.status["phase"] == "Ready"
    assert world.condition("Validated")["status"] == "False"
    assert world.condition("Degraded")["status"] == "False"
    assert world.status["revision"]["failed"] == []
    assert world.status["validation"]["policy"] == "Warn"
    assert world.status["validation"]["summary"] == "incompatible: vocabulary, token_ids"
    assert ("Warning", VALIDATION_FAILED) in reasons(world)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({**BASE, "validation": {"policy": "Skip"}}, "ValidationSkipped"),
        (
            {"target": BASE["target"], "speculation": {"method": "ngram", "numSpeculativeTokens": 3}},
            "NothingToValidate",
        ),
    ],
    ids=["policy-skip", "ngram"],
)
def test_skip_and_ngram_need_no_job_and_serve_at_once(spec: dict[str, Any], reason: str) -> None:
    world = World(spec=copy.deepcopy(spec))
    p = world.step()
    assert p.create_job is None and world.job is None
    assert world.serving() == rev(spec)
    assert (world.condition("Validated")["status"], world.condition("Validated")["reason"]) == ("True", reason)
    world.roll_out()
    world.settle()
    assert world.status["phase"] == "Ready"
    assert reasons(world) == [("Normal", "Ready")]


def test_could_not_check_neither_serves_nor_fails_and_the_job_is_retried_later(reports: Reports) -> None:
    world = World(spec=copy.deepcopy(BASE))
    world.step()
    first_job = world.job
    world.finish_job(reports.unreachable.exit_code, reports.unreachable.report)
    mark = len(world.events)
    p = world.step()
    assert p.deployment is None and p.delete_job is None
    assert ANNOTATION_STATE not in world.annotations(rev(BASE)), "not marked failed: it was never judged"
    assert world.status["revision"]["failed"] == []
    validated_c = world.condition("Validated")
    assert (validated_c["status"], validated_c["reason"]) == ("False", VALIDATION_ERROR)
    assert "does not exist" in validated_c["message"] and "{" not in validated_c["message"]
    assert world.condition("Degraded")["reason"] == VALIDATION_ERROR
    assert reasons(world, mark) == [("Warning", VALIDATION_ERROR)]
    assert world.status["phase"] == "Failed"

    world.now += VALIDATION_RETRY_SECONDS - 1
    assert world.step().delete_job is None
    world.now += 2
    p = world.step()
    assert first_job is not None and p.delete_job == first_job.name
    assert world.job is None
    p = world.step()
    assert p.create_job is not None and world.job is not None
    assert reasons(world, mark).count(("Normal", "ValidationStarted")) == 1
    world.finish_job(reports.compatible.exit_code, reports.compatible.report)
    world.step()
    assert world.serving() == rev(BASE)


# ----------------------------------------------------------------------------------------- 3. rollback
def test_trip_marks_the_revision_failed_and_serves_the_last_stable_one(reports: Reports) -> None:
    world = stable_world(reports)
    good = rev(BASE)
    bad_spec = with_k(7)
    bad = rev(bad_spec)
    next_revision(world, reports.compatible, bad_spec)
    assert world.serving() == bad
    mark = len(world.events)

    world.monitor = monitor_finding(world, [0.31, 0.29, 0.3])
    assert world.monitor is not None and world.monitor.trip
    p = world.step()
    assert world.annotations(bad)[ANNOTATION_STATE] == "failed"
    assert world.annotations(bad)[ANNOTATION_REASON] == ACCEPTANCE_LOW
    assert p.deployment is not None and world.serving() == good
    config = speculative_config(p.deployment)
    assert config is not None and config["num_speculative_tokens"] == 4, "the stable revision's k is back"
    rolled = world.condition("RolledBack")
    assert (rolled["status"], rolled["reason"]) == ("True", ACCEPTANCE_LOW)
    assert f"revision {bad} rolled back to {good}" in rolled["message"]
    assert "0.300 is below the threshold 0.500 in 3 consecutive" in rolled["message"]
    events = [e for e in world.events[mark:] if e.type == "Warning"]
    assert [e.reason for e in events] == ["RolledBack"], "one Warning, not one per condition"
    assert "0.300" in events[0].message and "of 12,000 draft tokens accepted" in events[0].message
    assert world.status["phase"] == "RolledBack"
    revision = world.status["revision"]
    assert (revision["current"], revision["serving"], revision["stable"]) == (bad, good, good)
    [failed] = revision["failed"]
    assert (failed["id"], failed["reason"]) == (bad, ACCEPTANCE_LOW)
    assert "below the threshold" in failed["message"]
    # the same verdict again (the tracker has not moved on): nothing new
    mark = len(world.events)
    world.roll_out()
    p = world.settle()
    assert not p.verdicts and reasons(world, mark) == [("Normal", "Ready")]


def test_trip_without_a_stable_revision_disables_speculation_for_the_same_target(reports: Reports) -> None:
    world = serving_world(reports)
    rid = rev(BASE)
    world.monitor = monitor_finding(world, [0.2, 0.25, 0.22])
    p = world.step()
    assert p.deployment is not None and world.serving() == f"{rid}-nospec"
    assert speculative_config(p.deployment) is None
    assert vllm_args(p.deployment)[0] == "org/target-70b"
    assert world.status["revision"]["serving"] == f"{rid}-nospec"
    assert world.condition("RolledBack")["status"] == "True"
    assert p.serving is not None and not p.serving.speculation
    world.roll_out()
    world.settle()
    assert world.condition("Ready")["message"].endswith("(speculation disabled)")


def test_action_disable_speculation_does_not_go_back_to_the_stable_revision(reports: Reports) -> None:
    world = stable_world(reports)
    spec = with_k(7)
    spec["rollback"] = {"action": "DisableSpeculation"}
    next_revision(world, reports.compatible, spec)
    world.monitor = monitor_finding(world, [0.1, 0.1, 0.1])
    world.step()
    assert world.serving() == f"{rev(spec)}-nospec"


def test_action_none_keeps_serving_and_reports_degraded(reports: Reports) -> None:
    spec = {**copy.deepcopy(BASE), "rollback": {"action": "None"}}
    world = serving_world(reports, spec)
    rid = rev(spec)
    mark = len(world.events)
    world.monitor = monitor_finding(world, [0.2, 0.2, 0.2])
    p = world.step()
    assert world.serving() == rid and p.deployment is not None and speculative_config(p.deployment) is not None
    assert world.annotations(rid)[ANNOTATION_STATE] == "failed", "the verdict is recorded"
    degraded = world.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", ACCEPTANCE_LOW)
    assert "rollback action None" in degraded["message"] and "0.200" in degraded["message"]
    assert world.condition("RolledBack")["status"] == "False"
    assert reasons(world, mark) == [("Warning", "Degraded")]
    assert world.status["phase"] == "Degraded"
    assert world.settle().verdicts == []


def test_a_healthy_run_promotes_the_revision_to_stable_once(reports: Reports) -> None:
    world = serving_world(reports)
    rid = rev(BASE)
    world.monitor = monitor_finding(world, [0.6, 0.7])  # 2 of 3 windows: still collecting
    assert world.monitor is not None and not world.monitor.healthy
    world.step()
    assert ANNOTATION_STATE not in world.annotations(rid)

    world.monitor = monitor_finding(world, [0.6, 0.7, 0.65])
    mark = len(world.events)
    p = world.step()
    assert p.verdicts and world.annotations(rid)[ANNOTATION_STATE] == "stable"
    assert world.status["revision"]["stable"] == rid
    assert reasons(world, mark) == [("Normal", "RevisionStable")]
    assert world.status["acceptance"]["rate"] == pytest.approx(0.65, abs=0.001)
    # still healthy on later passes: no duplicate verdict, no duplicate Event
    for _ in range(3):
        p = world.step()
        assert p.verdicts == []
    assert reasons(world, mark) == [("Normal", "RevisionStable")]


def test_a_failed_revision_is_not_retried_until_the_spec_changes(reports: Reports) -> None:
    world = stable_world(reports)
    good = rev(BASE)
    bad_spec = with_k(7)
    next_revision(world, reports.compatible, bad_spec)
    world.monitor = monitor_finding(world, [0.3, 0.3, 0.3])
    world.step()
    world.monitor = None
    world.roll_out()
    world.settle()
    assert world.serving() == good

    # the operator restarts (no verdict in memory) and the Job is gone: still not retried, no new Job
    world.job = None
    p = world.settle()
    assert world.serving() == good and p.create_job is None

    # GitOps re-applies the same bad spec (generation bump, same revision): still not retried
    world.generation += 1
    world.settle()
    assert world.serving() == good and world.status["observedGeneration"] == world.generation

    # a real change is a new revision: validated and served
    fixed = with_k(5)
    next_revision(world, reports.compatible, fixed)
    assert world.serving() == rev(fixed)
    assert world.condition("RolledBack")["status"] == "False"
    assert world.condition("Degraded")["status"] == "False"
    assert ("Normal", "Recovered") in reasons(world)


def test_when_the_stable_revision_fails_too_the_second_rollback_is_reported(reports: Reports) -> None:
    world = stable_world(reports)
    older = rev(BASE)
    # a second stable revision on top of the first
    mid_spec = with_k(5)
    next_revision(world, reports.compatible, mid_spec)
    world.monitor = monitor_finding(world, [0.8, 0.8, 0.8])
    world.settle()
    mid = rev(mid_spec)
    assert world.status["revision"]["stable"] == mid
    # a bad third revision rolls back to the second one
    bad_spec = with_k(7)
    next_revision(world, reports.compatible, bad_spec)
    world.monitor = monitor_finding(world, [0.3, 0.3, 0.3])
    world.step()
    assert world.serving() == mid
    world.roll_out()
    world.settle()
    # now the second one degrades as well (traffic changed): the next rollback goes to the first
    mark = len(world.events)
    world.monitor = monitor_finding(world, [0.4, 0.35, 0.3])
    world.step()
    assert world.serving() == older
    assert world.status["revision"]["stable"] == older
    assert {f["id"] for f in world.status["revision"]["failed"]} == {rev(bad_spec), mid}
    rolled_back = [e for e in world.events[mark:] if e.reason == "RolledBack"]
    assert len(rolled_back) == 1 and f"revision {mid} rolled back to {older}" in rolled_back[0].message


def test_a_trip_while_a_new_revision_validates_never_serves_the_unvalidated_revision(reports: Reports) -> None:
    world = serving_world(reports)
    first = rev(BASE)
    new_spec = with_k(6)
    world.spec = new_spec
    world.generation += 1
    world.step()
    assert world.job is not None and not world.job.finished and world.serving() == first
    # the Job is still running when the old revision's acceptance trips
    world.monitor = monitor_finding(world, [0.2, 0.2, 0.2])
    world.step()
    assert world.serving() == f"{first}-nospec", "falls back from the tripped revision, not to the unvalidated one"
    assert world.annotations(first)[ANNOTATION_STATE] == "failed"
    assert any(e.reason == "RolledBack" for e in world.events)
    world.monitor = None
    world.roll_out()
    world.settle()
    assert world.serving() == f"{first}-nospec"
    # validation passes: the new revision serves
    world.finish_job(reports.compatible.exit_code, reports.compatible.report)
    world.step()
    assert world.serving() == rev(new_spec)


def test_rolling_back_from_a_draft_model_to_an_ngram_revision_renders_without_the_draft(reports: Reports) -> None:
    ngram = {
        "target": BASE["target"],
        "speculation": {"method": "ngram", "numSpeculativeTokens": 3},
        "rollback": {"stableAfterSeconds": 0},
    }
    world = World(spec=copy.deepcopy(ngram))
    world.step()
    world.roll_out()
    world.settle()
    world.monitor = monitor_finding(world, [0.7, 0.7, 0.7])
    world.settle()
    world.monitor = None
    assert world.status["revision"]["stable"] == rev(ngram)
    next_revision(world, reports.compatible, copy.deepcopy(BASE))
    world.monitor = monitor_finding(world, [0.1, 0.1, 0.1])
    p = world.step()
    assert world.serving() == rev(ngram)
    config = speculative_config(p.deployment or {})
    assert config is not None and config["method"] == "ngram" and "model" not in config


def test_spec_for_takes_serving_sections_from_the_snapshot_and_the_rest_from_today() -> None:
    old = SpeculativeDeploymentSpec.model_validate(with_k(3))
    today = SpeculativeDeploymentSpec.model_validate(
        {**with_k(7), "replicas": 4, "rollback": {"minAcceptanceRate": 0.6}}
    )
    from specdeploy.rollout.history import RevisionRecord, ServingChoice

    merged = spec_for(
        ServingChoice(RevisionRecord(id=rev(with_k(3)), number=1, spec=serving_snapshot(old)), True), today
    )
    assert merged.speculation.num_speculative_tokens == 3
    assert merged.replicas == 4 and merged.rollback.min_acceptance_rate == 0.6
    assert revision_id(merged) == rev(with_k(3))


# ----------------------------------------------------------------------------------------- 4. status and events
def test_status_reports_generation_replicas_and_at_most_ten_failed_revisions_newest_first(reports: Reports) -> None:
    world = serving_world(reports)
    failed_ids = []
    for k in range(1, 13):  # twelve revisions in a row, each rejected by validation
        spec = with_k(k if k < 4 else k + 1)
        next_revision(world, reports.incompatible, spec)
        failed_ids.append(rev(spec))
    status = world.status
    assert status["observedGeneration"] == world.generation == 13
    assert all(c["observedGeneration"] == 13 for c in status["conditions"])
    assert status["ready"] == "1/1" and status["readyReplicas"] == 1 and status["replicas"] == 1
    failed = status["revision"]["failed"]
    assert len(failed) == MAX_FAILED_REVISIONS
    assert [f["id"] for f in failed] == failed_ids[::-1][:MAX_FAILED_REVISIONS]
    assert status["endpoint"] == "http://coder.llm.svc:8000"


def test_an_unchanged_world_gets_no_writes_and_no_events(reports: Reports) -> None:
    world = stable_world(reports)
    writes, children, events = world.status_writes, world.child_writes, world.event_posts
    for _ in range(5):
        world.now += 15
        p = world.step()
        assert not (p.verdicts or p.record_revision or p.create_job or p.delete_job or p.prune)
    assert (world.status_writes, world.child_writes, world.event_posts) == (writes, children, events)


def test_last_transition_time_moves_only_when_a_condition_flips(reports: Reports) -> None:
    world = serving_world(reports)
    ready_since = world.condition("Ready")["lastTransitionTime"]
    validated_since = world.condition("Validated")["lastTransitionTime"]
    world.now += 600
    world.change_spec(replicas=2)  # Ready flips to False while the second pod starts, Validated does not
    world.step()
    assert world.condition("Ready")["status"] == "False"
    assert world.condition("Ready")["lastTransitionTime"] != ready_since
    assert world.condition("Validated")["lastTransitionTime"] == validated_since


def test_after_a_restart_between_recording_a_rollback_and_saying_so_it_is_said_once(reports: Reports) -> None:
    world = serving_world(reports)
    rid = rev(BASE)
    world.monitor = monitor_finding(world, [0.2, 0.2, 0.2])
    crashed = plan(world.observe())
    # only the ControllerRevision patch made it before the crash: no Deployment patch, status or Event
    for rev_id, verdict in crashed.verdicts:
        world.annotations(rev_id).update(verdict)
    assert world.annotations(rid)[ANNOTATION_STATE] == "failed" and world.serving() == rid
    world.monitor = None  # the new operator process has no windows yet
    mark = len(world.events)
    world.step()
    assert world.serving() == f"{rid}-nospec"
    world.roll_out()
    world.settle()
    assert [e.reason for e in world.events[mark:] if e.type == "Warning"] == ["RolledBack"]


def test_old_revisions_beyond_the_limit_are_pruned_but_never_the_serving_or_stable_ones(reports: Reports) -> None:
    world = stable_world(reports)
    stable = rev(BASE)
    spec = BASE
    for i in range(MAX_REVISIONS + 3):
        spec = {**copy.deepcopy(BASE), "draft": {"model": f"org/draft-{i}"}}
        world.spec, world.generation = spec, world.generation + 1
        world.step()
        # nothing validates: each new revision stays pending while the stable one keeps serving
    assert len(world.revisions) <= MAX_REVISIONS
    assert f"coder-{stable}" in world.revisions and f"coder-{rev(spec)}" in world.revisions
    assert world.serving() == stable


def test_a_monitor_finding_for_another_revision_is_ignored(reports: Reports) -> None:
    world = serving_world(reports)
    world.monitor = MonitorFinding(revision="0123456789", trip=True, message="old revision's windows")
    p = world.step()
    assert p.verdicts == [] and world.serving() == rev(BASE)


def test_stable_needs_stable_after_seconds_of_health() -> None:
    """A healthy streak alone is not enough: the revision must stay healthy for spec.rollback.stableAfterSeconds."""
    from specdeploy.rollout.history import History
    from specdeploy.rollout.plan import Observed, Owner

    spec = SpeculativeDeploymentSpec.model_validate(
        {**BASE, "rollback": {"stableAfterSeconds": 300}, "validation": {"policy": "Skip"}}
    )
    rid = revision_id(spec)
    first = plan(
        Observed(Owner("x", "ns", "uid", 1), spec, {}, History(), (), None, None, None, "2026-01-01T00:00:00Z", 0.0)
    )
    assert first.record_revision is not None
    history = from_controller_revisions([first.record_revision])

    def observed(seconds: float) -> Observed:
        verdict = MonitorFinding(revision=rid, healthy=True, healthy_seconds=seconds, message="ok")
        return Observed(
            Owner("x", "ns", "uid", 1),
            spec,
            {},
            history,
            tuple(first.deployments),
            None,
            None,
            verdict,
            "2026-01-01T00:00:00Z",
            0.0,
        )

    assert not [v for v in plan(observed(299.0)).verdicts if v[1].get("specdeploy.io/state") == "stable"]
    assert [v for v in plan(observed(300.0)).verdicts if v[1].get("specdeploy.io/state") == "stable"]


# ----------------------------------------------------------------------------------------- 5. Events across crashes
def lifecycle(reports: Reports, crash: str | None) -> World:
    """Validate, serve, become stable, roll a new revision out, roll it back, scale: with a kill in every step that
    has something to say (``World.crash``), each followed by a restart that has lost the acceptance windows."""
    world = World(spec=copy.deepcopy(BASE), crash=crash)
    validated(world, reports.compatible)
    world.monitor = monitor_finding(world, [0.8, 0.82, 0.79])
    world.settle()
    world.monitor = None
    assert world.status["revision"]["stable"] == rev(BASE)
    next_revision(world, reports.compatible, with_k(7))
    world.monitor = monitor_finding(world, [0.3, 0.3, 0.3])
    world.step()
    world.monitor = None
    world.roll_out()
    world.settle()
    world.change_spec(replicas=2)
    world.step()
    world.roll_out()
    world.settle()
    return world


@pytest.mark.parametrize("crash", ["after-verdicts", "after-events"])
def test_a_kill_around_each_event_neither_loses_nor_repeats_it(reports: Reports, crash: str) -> None:
    calm = lifecycle(reports, crash=None)
    said = [(e.type, e.reason) for e in calm.events]
    assert said == [
        ("Normal", "ValidationStarted"),
        ("Normal", "ValidationSucceeded"),
        ("Normal", "Ready"),
        ("Normal", "RevisionStable"),
        ("Normal", "ValidationStarted"),
        ("Normal", "ValidationSucceeded"),
        ("Normal", "Ready"),
        ("Warning", "RolledBack"),
        ("Normal", "Ready"),
        ("Normal", "Ready"),
    ]
    killed = lifecycle(reports, crash=crash)
    assert killed.crashes >= len(said), "every step that said something was killed once"
    assert [(e.type, e.reason) for e in killed.events] == said
    ids = ("current", "serving", "stable")
    assert [killed.status["revision"][k] for k in ids] == [calm.status["revision"][k] for k in ids]
    failed = [[f["id"] for f in w.status["revision"]["failed"]] for w in (killed, calm)]
    assert failed[0] == failed[1]
    if crash == "after-events":
        # the restarted process asked again for each Event it had created, and the names made those 409s
        assert killed.event_posts - len(killed.events) >= len(said)


def test_event_names_are_one_per_transition_and_new_for_a_genuine_repeat(reports: Reports) -> None:
    world = lifecycle(reports, crash=None)
    names = [e.name for e in world.events]
    assert len(set(names)) == len(names), "three Ready transitions, three names (all within one second)"
    assert all(n.startswith("coder.") and len(n) == len("coder.") + 16 for n in names)
    # the same world planned again by another process names its transitions the same way: nothing to say
    assert plan(world.observe()).events == []


def test_a_rollback_that_only_starts_when_the_action_changes_from_none_is_said_once(reports: Reports) -> None:
    spec = {**copy.deepcopy(BASE), "rollback": {"action": "None", "stableAfterSeconds": 0}}
    world = serving_world(reports, spec)
    world.monitor = monitor_finding(world, [0.2, 0.2, 0.2])
    world.settle()
    world.monitor = None
    mark = len(world.events)
    assert not any(e.reason == "RolledBack" for e in world.events)
    world.change_spec(rollback={"action": "DisableSpeculation"})  # not a serving field: the same revision
    crashed = plan(world.observe())
    world.apply(crashed, crash="after-events")
    world.settle()
    assert world.serving() == f"{rev(BASE)}-nospec"
    assert [e.reason for e in world.events[mark:] if e.type == "Warning"] == ["RolledBack"]


def test_a_restart_between_the_stable_verdict_and_the_status_still_says_it_once(reports: Reports) -> None:
    world = serving_world(reports)
    world.monitor = monitor_finding(world, [0.8, 0.8, 0.8])
    decided = plan(world.observe())
    assert [e.reason for e in decided.events] == ["RevisionStable"]
    world.apply(decided, crash="after-verdicts")  # the verdict is on the ControllerRevision, nothing else
    world.monitor = None
    mark = len(world.events)
    world.settle()
    assert [e.reason for e in world.events[mark:]] == ["RevisionStable"]
    assert world.events[mark].name == decided.events[0].name, "the restarted process uses the deciding pass's name"
    assert world.status["revision"]["stable"] == rev(BASE)

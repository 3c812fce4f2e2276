"""The reconcile plan: from everything observed about one SpeculativeDeployment, what should exist and be said.

A pure function of data, in the style of the Deployment controller and Argo Rollouts: the handler gathers the
observed world (the object, its revision history, its children, the monitor's latest verdict), calls
``plan()``, and carries out the result. Nothing here talks to the API, so every branch — validation gating,
rollback, stable promotion, status and Events — is tested without a cluster, and the operator is level-based:
running the same plan twice on the same world asks for nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from specdeploy import conditions as cond
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.render import owner_for, render_deployment, render_service, render_validation_job
from specdeploy.rollout.history import (
    ANNOTATION_VALIDATION,
    LABEL_NAME,
    LABEL_REVISION,
    MAX_FAILED_IN_STATUS,
    NO_SPECULATION_SUFFIX,
    Action,
    History,
    Revision,
    RevisionState,
    Serving,
    choose_serving,
    controller_revision_name,
    prunable,
    verdict_annotations,
)
from specdeploy.rollout.revision import revision_id, serving_snapshot

# Reasons (CamelCase, a fixed vocabulary) used in conditions, verdicts and Events.
VALIDATION_FAILED = "ValidationFailed"
VALIDATION_ERROR = "ValidationError"
ACCEPTANCE_LOW = "AcceptanceRateLow"
# After a validation Job that could not check (exit 2), retry it after this long.
VALIDATION_RETRY_SECONDS = 300


@dataclass(frozen=True)
class Owner:
    name: str
    namespace: str
    uid: str
    generation: int

    def ref(self) -> dict[str, Any]:
        from specdeploy.api import API_VERSION, KIND

        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class JobOutcome:
    """What became of a validation Job: still running, or finished with an exit code and a report."""

    name: str
    finished: bool
    exit_code: int | None = None
    report: Mapping[str, Any] | None = None
    message: str = ""
    finished_at: float | None = None


@dataclass(frozen=True)
class MonitorVerdict:
    """The monitor's latest word on the serving revision (from ``monitor.decision``), carried in memory."""

    revision: str
    trip: bool = False
    healthy_streak: int = 0
    message: str = ""
    acceptance: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Observed:
    owner: Owner
    spec: SpeculativeDeploymentSpec
    status: Mapping[str, Any]
    history: History
    deployment: Mapping[str, Any] | None
    service: Mapping[str, Any] | None
    job: JobOutcome | None
    monitor: MonitorVerdict | None
    now_iso: str
    now: float


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Plan:
    current: str = ""
    record_revision: dict[str, Any] | None = None
    verdicts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    create_job: dict[str, Any] | None = None
    delete_job: str | None = None
    deployment: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)
    monitor: Serving | None = None


def validation_needed(spec: SpeculativeDeploymentSpec) -> bool:
    """A Job runs unless the policy is Skip or there is no draft to compare (ngram)."""
    return str(spec.validation.policy) != "Skip" and spec.draft is not None


def controller_revision(owner: Owner, rev_id: str, number: int, spec: SpeculativeDeploymentSpec) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": controller_revision_name(owner.name, rev_id),
            "namespace": owner.namespace,
            "labels": {
                LABEL_NAME: owner.name,
                LABEL_REVISION: rev_id,
                "app.kubernetes.io/managed-by": "specdeploy",
            },
            "ownerReferences": [owner.ref()],
        },
        "revision": number,
        "data": {"spec": serving_snapshot(spec)},
    }


def spec_for(serving: Serving, current: SpeculativeDeploymentSpec) -> SpeculativeDeploymentSpec:
    """The spec to render for ``serving``: the revision's snapshot, with today's replicas and policies."""
    merged = current.model_dump(by_alias=True, exclude_none=True)
    merged.update(serving.revision.spec)
    return SpeculativeDeploymentSpec.model_validate(merged)


def _live_serving_id(deployment: Mapping[str, Any] | None) -> str | None:
    if not deployment:
        return None
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}) or {}
    value = labels.get(LABEL_REVISION)
    return str(value) if value else None


def _validation_summary(outcome: JobOutcome) -> dict[str, Any]:
    report = dict(outcome.report or {})
    checks = [
        {"name": str(c.get("name", "")), "status": str(c.get("status", "")), "message": str(c.get("message", ""))[:300]}
        for c in report.get("checks", [])
        if isinstance(c, Mapping)
    ][:16]
    failing = [c["name"] for c in checks if c["status"] == "fail"]
    warning = [c["name"] for c in checks if c["status"] == "warn"]
    if outcome.exit_code == 0:
        summary = "compatible" + (f"; warnings: {', '.join(warning)}" if warning else "")
    elif outcome.exit_code == 1:
        summary = "incompatible: " + ", ".join(failing or ["see checks"])
    else:
        summary = "could not check: " + (str(report.get("error") or outcome.message) or "the validation Job failed")
    return {
        "compatible": outcome.exit_code == 0,
        "exitCode": outcome.exit_code,
        "summary": summary[:500],
        "checks": checks,
        "jobName": outcome.name,
    }


def _failing_words(validation: Mapping[str, Any]) -> str:
    fails = [f"{c['name']}: {c['message']}" for c in validation.get("checks", []) if c.get("status") == "fail"]
    return "; ".join(fails)[:800] or str(validation.get("summary", ""))


def plan(obs: Observed) -> Plan:  # noqa: PLR0915 - one linear pass over the pipeline, step by step
    spec, owner = obs.spec, obs.owner
    out = Plan()
    current_id = revision_id(spec)
    out.current = current_id
    history = obs.history
    current = history.get(current_id)

    # 1. Revision: record the current spec as a ControllerRevision the first time it is seen.
    if current is None:
        number = history.next_number()
        out.record_revision = controller_revision(owner, current_id, number, spec)
        current = Revision(id=current_id, number=number, spec=serving_snapshot(spec))
        history = History((*history.revisions, current))

    policy = str(spec.validation.policy)
    action = Action(str(spec.rollback.action))
    old_conditions: Sequence[Mapping[str, Any]] = obs.status.get("conditions") or []
    wanted: list[cond.Condition] = []

    # 2. Validate.
    validation: dict[str, Any] | None = dict(current.validation) if current.validation else None
    validation_state = "passed"  # passed | running | failed | error | skipped
    if not validation_needed(spec):
        validation_state = "skipped"
        reason = "ValidationSkipped" if policy == "Skip" else "NothingToValidate"
        msg = "validation policy is Skip" if policy == "Skip" else "method ngram uses no draft model"
        wanted.append(cond.Condition(cond.VALIDATED, cond.TRUE, reason, msg))
    else:
        if validation is None and obs.job is not None and obs.job.finished:
            validation = _validation_summary(obs.job)
            if obs.job.exit_code in (0, 1):
                ann = {ANNOTATION_VALIDATION: json.dumps(validation, separators=(",", ":"))}
                out.verdicts.append((current_id, ann))
        if validation is None:
            validation_state = "running"
            if obs.job is None:
                out.create_job = render_validation_job(
                    owner.name, owner.namespace, spec, current_id, owner=owner_for(owner.name, owner.uid)
                )
                out.events.append(
                    Event("Normal", "ValidationStarted", f"Checking draft {_draft(spec)} against target {spec.target.model}")
                )
            wanted.append(
                cond.Condition(cond.VALIDATED, cond.UNKNOWN, "ValidationRunning", f"validation Job for revision {current_id} is running")
            )
        elif validation.get("exitCode") == 0:
            wanted.append(cond.Condition(cond.VALIDATED, cond.TRUE, "ValidationSucceeded", str(validation["summary"])))
        elif validation.get("exitCode") == 1:
            validation_state = "failed" if policy == "Enforce" else "passed"
            status = cond.FALSE
            words = _failing_words(validation)
            wanted.append(cond.Condition(cond.VALIDATED, status, VALIDATION_FAILED, f"draft is incompatible: {words}"))
            if policy == "Enforce" and current.state is not RevisionState.FAILED:
                out.verdicts.append(
                    (current_id, verdict_annotations(RevisionState.FAILED, VALIDATION_FAILED, words, obs.now_iso))
                )
                current = Revision(**{**current.__dict__, "state": RevisionState.FAILED, "reason": VALIDATION_FAILED})
        else:
            validation_state = "error" if policy == "Enforce" else "passed"
            wanted.append(cond.Condition(cond.VALIDATED, cond.FALSE, VALIDATION_ERROR, str(validation["summary"])))
            if obs.job is not None and obs.job.finished_at and obs.now - obs.job.finished_at > VALIDATION_RETRY_SECONDS:
                out.delete_job = obs.job.name

    # 3. Serve: which revision runs. Validation failures keep what already serves; acceptance failures roll back.
    live_id = _live_serving_id(obs.deployment)
    serving: Serving | None
    if validation_state in ("running", "failed", "error") or (
        current.state is RevisionState.FAILED and current.reason == VALIDATION_FAILED
    ):
        serving = _keep_live(history, live_id)
    else:
        serving = choose_serving(history, current, action)

    # 4. The monitor's verdict on what serves: trip -> mark failed (durably, once) and re-choose.
    rolled_back_now = False
    mon = obs.monitor
    if serving is not None and mon is not None and mon.revision == serving.id and serving.speculation:
        target_rev = serving.revision
        if mon.trip and target_rev.state is not RevisionState.FAILED and action is not Action.NONE:
            out.verdicts.append(
                (target_rev.id, verdict_annotations(RevisionState.FAILED, ACCEPTANCE_LOW, mon.message, obs.now_iso))
            )
            failed = Revision(**{**target_rev.__dict__, "state": RevisionState.FAILED, "reason": ACCEPTANCE_LOW})
            history = History(tuple(failed if r.id == failed.id else r for r in history.revisions))
            if failed.id == current_id:
                current = failed
            serving = choose_serving(history, current, action)
            rolled_back_now = True
        elif (
            not mon.trip
            and target_rev.state is RevisionState.NEW
            and mon.healthy_streak >= spec.rollback.consecutive_windows
        ):
            out.verdicts.append(
                (target_rev.id, verdict_annotations(RevisionState.STABLE, "Healthy", mon.message, obs.now_iso))
            )
            stable = Revision(**{**target_rev.__dict__, "state": RevisionState.STABLE})
            history = History(tuple(stable if r.id == stable.id else r for r in history.revisions))
            out.events.append(Event("Normal", "RevisionStable", f"Revision {stable.id} is stable: {mon.message}"))

    # 5. Children.
    if serving is not None:
        render_spec = spec_for(serving, spec)
        out.deployment = render_deployment(
            owner.name,
            owner.namespace,
            render_spec,
            serving.id,
            owner=owner_for(owner.name, owner.uid),
            speculation_enabled=serving.speculation,
        )
        out.monitor = serving
    out.service = render_service(
        owner.name, owner.namespace, spec, serving.id if serving else current_id, owner=owner_for(owner.name, owner.uid)
    )

    # 6. Status.
    dep_status = (obs.deployment or {}).get("status", {}) if obs.deployment else {}
    replicas = int(spec.replicas)
    ready = int(dep_status.get("readyReplicas") or 0)
    updated = int(dep_status.get("updatedReplicas") or 0)
    dep_gen_ok = bool(obs.deployment) and int(dep_status.get("observedGeneration") or 0) >= int(
        (obs.deployment or {}).get("metadata", {}).get("generation") or 0
    )
    rolled_out = (
        serving is not None
        and live_id == serving.id
        and dep_gen_ok
        and updated >= replicas
        and ready >= replicas
        and int(dep_status.get("replicas") or 0) == replicas
    )
    current_failed = current.state is RevisionState.FAILED
    rolled_back = current_failed and current.reason == ACCEPTANCE_LOW and action is not Action.NONE

    if serving is None:
        ready_cond = cond.Condition(cond.READY, cond.FALSE, "NotServing", "no revision can serve yet")
    elif rolled_out:
        what = f"revision {serving.id}" + ("" if serving.speculation else " (speculation disabled)")
        ready_cond = cond.Condition(cond.READY, cond.TRUE, "Serving", f"{ready}/{replicas} replicas ready, {what}")
    else:
        ready_cond = cond.Condition(
            cond.READY, cond.FALSE, "RollingOut", f"{ready}/{replicas} replicas ready for revision {serving.id}"
        )
    wanted.append(ready_cond)

    progressing = validation_state == "running" or (serving is not None and not rolled_out)
    wanted.append(
        cond.Condition(
            cond.PROGRESSING,
            cond.TRUE if progressing else cond.FALSE,
            "Validating" if validation_state == "running" else ("RollingOut" if progressing else "Complete"),
            "validation Job running"
            if validation_state == "running"
            else (f"rolling out revision {serving.id}" if progressing and serving else "nothing in progress"),
        )
    )

    if rolled_back:
        msg = current.message or mon.message if mon else current.message
        target = serving.id if serving else "nothing"
        wanted.append(
            cond.Condition(
                cond.ROLLED_BACK,
                cond.TRUE,
                ACCEPTANCE_LOW,
                f"revision {current_id} rolled back to {target}: {msg or 'acceptance rate below threshold'}",
            )
        )
    else:
        wanted.append(cond.Condition(cond.ROLLED_BACK, cond.FALSE, "NotRolledBack", "the current spec is serving"))

    if validation_state == "failed":
        keep = f"; revision {live_id} keeps serving" if live_id else "; nothing is deployed"
        wanted.append(cond.Condition(cond.DEGRADED, cond.TRUE, VALIDATION_FAILED, f"draft rejected by validation{keep}"))
    elif validation_state == "error":
        wanted.append(cond.Condition(cond.DEGRADED, cond.TRUE, VALIDATION_ERROR, "validation could not run; see Validated"))
    elif rolled_back:
        wanted.append(
            cond.Condition(cond.DEGRADED, cond.TRUE, ACCEPTANCE_LOW, "draft acceptance rate stayed below the threshold")
        )
    elif current_failed and action is Action.NONE:
        wanted.append(
            cond.Condition(cond.DEGRADED, cond.TRUE, ACCEPTANCE_LOW, "acceptance below threshold (rollback action None)")
        )
    else:
        wanted.append(cond.Condition(cond.DEGRADED, cond.FALSE, "AsExpected", "no problem detected"))

    new_conditions = cond.set_conditions(old_conditions, wanted, obs.now_iso, owner.generation)
    old_status = dict(obs.status)
    status: dict[str, Any] = {
        "observedGeneration": owner.generation,
        "conditions": new_conditions,
        "phase": cond.phase(new_conditions),
        "replicas": replicas,
        "readyReplicas": ready,
        "ready": f"{ready}/{replicas}",
        "revision": {
            "current": current_id,
            "serving": serving.id if serving else None,
            "stable": history.stable.id if history.stable else None,
            "failed": [
                {"id": r.id, "reason": r.reason or ACCEPTANCE_LOW, "at": r.at or obs.now_iso}
                for r in history.failed[:MAX_FAILED_IN_STATUS]
            ],
        },
        "endpoint": f"http://{owner.name}.{owner.namespace}.svc:{spec.serving.port}",
    }
    if validation is not None:
        status["validation"] = {"revision": current_id, "policy": policy, **validation}
    elif "validation" in old_status:
        status["validation"] = old_status["validation"]
    acceptance = (mon.acceptance if mon and mon.acceptance else None) or old_status.get("acceptance")
    if acceptance:
        status["acceptance"] = dict(acceptance)
    out.status = status

    # 7. Events on transitions only (at most one per transition).
    out.events.extend(_transition_events(old_conditions, new_conditions, rolled_back_now))

    keep_ids = {current_id}
    if serving:
        keep_ids.add(serving.revision.id)
    if history.stable:
        keep_ids.add(history.stable.id)
    out.prune = [controller_revision_name(owner.name, r.id) for r in prunable(history, keep_ids)]
    return out


def _keep_live(history: History, live_id: str | None) -> Serving | None:
    """Keep serving what the Deployment runs now (validation pending or failed)."""
    if not live_id:
        return None
    base = live_id.removesuffix(NO_SPECULATION_SUFFIX)
    rev = history.get(base)
    if rev is None:
        return None
    return Serving(rev, speculation=not live_id.endswith(NO_SPECULATION_SUFFIX), why="kept while validating")


def _draft(spec: SpeculativeDeploymentSpec) -> str:
    return spec.draft.model if spec.draft is not None else "(none)"


_EVENT_FOR: dict[tuple[str, str], tuple[str, str]] = {
    # (condition type, new status) -> (event type, event reason); the message is the condition's.
    (cond.VALIDATED, cond.TRUE): ("Normal", "ValidationSucceeded"),
    (cond.VALIDATED, cond.FALSE): ("Warning", "ValidationFailed"),
    (cond.READY, cond.TRUE): ("Normal", "Ready"),
    (cond.ROLLED_BACK, cond.TRUE): ("Warning", "RolledBack"),
    (cond.DEGRADED, cond.TRUE): ("Warning", "Degraded"),
    (cond.DEGRADED, cond.FALSE): ("Normal", "Recovered"),
}


def _transition_events(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], rolled_back_now: bool
) -> list[Event]:
    events = []
    for c in new:
        before = cond.get(old, c["type"])
        changed = before is None or before.get("status") != c["status"] or before.get("reason") != c["reason"]
        if not changed:
            continue
        key = (c["type"], c["status"])
        if key not in _EVENT_FOR:
            continue
        if key == (cond.DEGRADED, cond.FALSE) and (before is None or before.get("status") != cond.TRUE):
            continue  # "Recovered" only after a real degradation
        if key == (cond.VALIDATED, cond.TRUE) and c["reason"] in ("ValidationSkipped", "NothingToValidate"):
            continue
        etype, reason = _EVENT_FOR[key]
        if key == (cond.DEGRADED, cond.TRUE) and c["reason"] in (ACCEPTANCE_LOW, VALIDATION_FAILED):
            continue  # the RolledBack / ValidationFailed event already says it
        events.append(Event(etype, reason, str(c["message"])))
    del rolled_back_now
    return events

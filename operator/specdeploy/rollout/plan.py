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
from dataclasses import dataclass, field, replace
from typing import Any

from specdeploy import conditions as cond
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.policy import AdminPolicy, check
from specdeploy.render import owner_for, render_deployment, render_service, render_validation_job
from specdeploy.render.ecosystem import render_optional  # issue 15
from specdeploy.render.labels import selector_string  # issue 15
from specdeploy.rollout.events import Event, condition_facts, event_name
from specdeploy.rollout.history import (
    ANNOTATION_MESSAGE,
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
from specdeploy.rollout.refusal import refuse
from specdeploy.rollout.revision import SERVING_FIELDS, revision_id, serving_snapshot

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
    healthy_seconds: float = 0.0  # how long the verdict has been Healthy without a break
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
    policy: AdminPolicy = field(default_factory=AdminPolicy)  # the admin's allow-lists (specdeploy.policy)


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
    optional: list[dict[str, Any]] | None = None  # issue 15: PDB, InferencePool wanted; None: leave them be


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
    merged = {
        key: value
        for key, value in current.model_dump(by_alias=True, exclude_none=True).items()
        if key not in SERVING_FIELDS  # a section the snapshot lacks (no draft for ngram) must not leak in
    }
    merged.update(serving.revision.spec)
    return SpeculativeDeploymentSpec.model_validate(merged)


def _live_serving_id(deployment: Mapping[str, Any] | None) -> str | None:
    if not deployment:
        return None
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}) or {}
    value = labels.get(LABEL_REVISION)
    return str(value) if value else None


def _error_words(error: object) -> str:
    """The validator reports a could-not-check error as ``{"kind", "message"}``; older reports as a string."""
    if isinstance(error, Mapping):
        kind, message = str(error.get("kind") or ""), str(error.get("message") or "")
        return f"{kind}: {message}" if kind and message else kind or message
    return str(error) if error else ""


def _schema_word(value: object) -> bool:
    """A check status the status schema accepts (letters only: pass, warn, fail, skip)."""
    return isinstance(value, str) and value.isascii() and value.isalpha()


def _validation_summary(outcome: JobOutcome) -> dict[str, Any]:
    report = dict(outcome.report or {})
    checks = [
        {"name": str(c["name"])[:128], "status": str(c["status"]), "message": str(c.get("message", ""))[:300]}
        for c in report.get("checks", [])
        if isinstance(c, Mapping) and c.get("name") and _schema_word(c.get("status"))
    ][:16]
    failing = [c["name"] for c in checks if c["status"] == "fail"]
    warning = [c["name"] for c in checks if c["status"] == "warn"]
    if outcome.exit_code == 0:
        summary = "compatible" + (f"; warnings: {', '.join(warning)}" if warning else "")
    elif outcome.exit_code == 1:
        summary = "incompatible: " + ", ".join(failing or ["see checks"])
    else:
        summary = "could not check: " + (
            _error_words(report.get("error")) or outcome.message or "the validation Job failed"
        )
    out: dict[str, Any] = {
        "compatible": outcome.exit_code == 0,
        "exitCode": outcome.exit_code,
        "summary": summary[:500],
        "checks": checks,
        "jobName": outcome.name,
    }
    ratio = _parameter_ratio(report)
    if ratio is not None:
        out["parameterRatio"] = ratio
    return out


def _parameter_ratio(report: Mapping[str, Any]) -> float | None:
    """The validator's draft/target parameter ratio (``parameter_ratio`` check details), when it is a sane number."""
    for c in report.get("checks", []):
        if isinstance(c, Mapping) and c.get("name") == "parameter_ratio" and isinstance(c.get("details"), Mapping):
            ratio = c["details"].get("ratio")
            if isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 < ratio <= 1000:
                return round(float(ratio), 4)
    return None


def _failing_words(validation: Mapping[str, Any]) -> str:
    fails = [f"{c['name']}: {c['message']}" for c in validation.get("checks", []) if c.get("status") == "fail"]
    return "; ".join(fails)[:800] or str(validation.get("summary", ""))


def _with_verdict(rev: Revision, state: RevisionState, reason: str, message: str, at: str) -> Revision:
    """``rev`` as it reads back once the verdict is on its ControllerRevision (same cut as the annotation)."""
    ann = verdict_annotations(state, reason, message, at)
    return replace(rev, state=state, reason=reason, message=ann[ANNOTATION_MESSAGE], at=at)


def _replaced(history: History, rev: Revision) -> History:
    return History(tuple(rev if r.id == rev.id else r for r in history.revisions))


def plan(obs: Observed) -> Plan:  # noqa: PLR0915 - one linear pass over the pipeline, step by step
    """What to create, patch, record and say for the observed world (see the module docstring)."""
    spec, owner = obs.spec, obs.owner
    out = Plan()
    current_id = revision_id(spec)
    out.current = current_id

    # 0. Admin policy (specdeploy.policy): a refused spec changes no child; what serves keeps serving.
    violations = check(spec, obs.policy)
    if violations:
        refused = refuse(owner.name, owner.uid, owner.generation, obs.status, violations, now_iso=obs.now_iso)
        return Plan(current=current_id, status=refused.status, events=list(refused.events))

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
            running = f"validation Job for revision {current_id} is running"
            if obs.job is None:
                out.create_job = render_validation_job(
                    owner.name, owner.namespace, spec, current_id, owner=owner_for(owner.name, owner.uid)
                )
            # Tied to the status saying so, not to creating the Job: if the status write that follows the create
            # is refused (409), the next loop still announces it, once (the same name: see rollout.events).
            if not _says(old_conditions, cond.VALIDATED, cond.UNKNOWN, running):
                facts = (*condition_facts(old_conditions, cond.VALIDATED), current_id)
                out.events.append(
                    Event(
                        "Normal",
                        "ValidationStarted",
                        f"Checking draft {_draft(spec)} against target {spec.target.model}",
                        event_name(owner.name, owner.uid, "ValidationStarted", facts),
                    )
                )
            wanted.append(cond.Condition(cond.VALIDATED, cond.UNKNOWN, "ValidationRunning", running))
        elif validation.get("exitCode") == 0:
            wanted.append(cond.Condition(cond.VALIDATED, cond.TRUE, "ValidationSucceeded", str(validation["summary"])))
        elif validation.get("exitCode") == 1:
            validation_state = "failed" if policy == "Enforce" else "passed"
            words = _failing_words(validation)
            wanted.append(
                cond.Condition(cond.VALIDATED, cond.FALSE, VALIDATION_FAILED, f"draft is incompatible: {words}")
            )
            if policy == "Enforce" and current.state is not RevisionState.FAILED:
                out.verdicts.append(
                    (current_id, verdict_annotations(RevisionState.FAILED, VALIDATION_FAILED, words, obs.now_iso))
                )
                current = _with_verdict(current, RevisionState.FAILED, VALIDATION_FAILED, words, obs.now_iso)
                history = _replaced(history, current)
        else:
            validation_state = "error" if policy == "Enforce" else "passed"
            wanted.append(cond.Condition(cond.VALIDATED, cond.FALSE, VALIDATION_ERROR, str(validation["summary"])))
            if obs.job is not None and obs.job.finished_at and obs.now - obs.job.finished_at > VALIDATION_RETRY_SECONDS:
                out.delete_job = obs.job.name

    # 3. Serve: which revision runs. While the current revision is not cleared by validation, what already serves
    # keeps serving; acceptance failures fall back to the last stable revision or to no speculation.
    live_id = _live_serving_id(obs.deployment)
    gated = validation_state in ("running", "failed", "error") or (
        current.state is RevisionState.FAILED and current.reason == VALIDATION_FAILED
    )
    serving, rolled_back_from = _select(history, current, action, gated, live_id)

    # 4. The monitor's verdict on what serves: trip -> mark failed (durably, once) and re-choose.
    rolled_back_now: Revision | None = None
    mon = obs.monitor
    if serving is not None and mon is not None and mon.revision == serving.id and serving.speculation:
        target_rev = serving.revision
        if mon.trip and target_rev.state is not RevisionState.FAILED:
            out.verdicts.append(
                (target_rev.id, verdict_annotations(RevisionState.FAILED, ACCEPTANCE_LOW, mon.message, obs.now_iso))
            )
            failed = _with_verdict(target_rev, RevisionState.FAILED, ACCEPTANCE_LOW, mon.message, obs.now_iso)
            history = _replaced(history, failed)
            if failed.id == current_id:
                current = failed
            serving, rolled_back_from = _select(history, current, action, gated, live_id)
            if action is not Action.NONE:
                rolled_back_now = failed
        elif (
            not mon.trip
            and target_rev.state is RevisionState.NEW
            and mon.healthy_streak >= spec.rollback.consecutive_windows
            and mon.healthy_seconds >= spec.rollback.stable_after_seconds
        ):
            out.verdicts.append(
                (target_rev.id, verdict_annotations(RevisionState.STABLE, "Healthy", mon.message, obs.now_iso))
            )
            stable = _with_verdict(target_rev, RevisionState.STABLE, "Healthy", mon.message, obs.now_iso)
            history = _replaced(history, stable)
            if stable.id == current_id:
                current = stable
            if serving.revision.id == stable.id:
                serving = replace(serving, revision=stable)
            out.events.append(_stable_event(owner, stable))

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
    # Issue 15: the optional children (render.ecosystem); the handler deletes those no longer wanted.
    out.optional = render_optional(
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
    rolled_back = rolled_back_from is not None
    reports_only = (
        action is Action.NONE
        and serving is not None
        and serving.revision.state is RevisionState.FAILED
        and serving.revision.reason == ACCEPTANCE_LOW
    )

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

    if rolled_back_from is not None:
        target = serving.id if serving else "nothing"
        wanted.append(
            cond.Condition(
                cond.ROLLED_BACK,
                cond.TRUE,
                ACCEPTANCE_LOW,
                f"revision {rolled_back_from.id} rolled back to {target}: "
                f"{rolled_back_from.message or 'acceptance rate below threshold'}",
            )
        )
    else:
        wanted.append(cond.Condition(cond.ROLLED_BACK, cond.FALSE, "NotRolledBack", "no rollback is in effect"))

    if validation_state == "failed":
        keep = f"; revision {serving.id} serves instead" if serving else "; nothing is deployed"
        wanted.append(
            cond.Condition(cond.DEGRADED, cond.TRUE, VALIDATION_FAILED, f"draft rejected by validation{keep}")
        )
    elif validation_state == "error":
        wanted.append(
            cond.Condition(cond.DEGRADED, cond.TRUE, VALIDATION_ERROR, "validation could not run; see Validated")
        )
    elif rolled_back:
        wanted.append(
            cond.Condition(cond.DEGRADED, cond.TRUE, ACCEPTANCE_LOW, "draft acceptance rate stayed below the threshold")
        )
    elif reports_only and serving is not None:
        wanted.append(
            cond.Condition(
                cond.DEGRADED,
                cond.TRUE,
                ACCEPTANCE_LOW,
                f"revision {serving.revision.id} keeps serving (rollback action None) although its draft acceptance "
                f"rate stayed below the threshold: {serving.revision.message or 'see status.acceptance'}",
            )
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
        "selector": selector_string(owner.name),  # issue 15: the scale subresource's labelSelectorPath
        "revision": {
            "current": current_id,
            "serving": serving.id if serving else None,
            "stable": history.stable.id if history.stable else None,
            "failed": [
                {
                    "id": r.id,
                    "reason": r.reason or ACCEPTANCE_LOW,
                    **({"message": r.message} if r.message else {}),
                    "at": r.at or obs.now_iso,
                }
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

    # 7. Events on transitions only, exactly one per transition: each is named after the transition from what is
    # persisted (rollout.events), and the handler creates it before the status write that records the transition.
    old_revision: Mapping[str, Any] = old_status.get("revision") or {}
    rollbacks = _rollback_events(
        owner, status["revision"]["failed"], old_revision=old_revision, history=history, action=action, serving=serving
    )
    if rolled_back_now is not None:
        rollbacks.append(_rollback_event(owner, rolled_back_now, serving))
    said = _transition_events(owner, old_conditions, new_conditions, rollback_said=bool(rollbacks))
    said += rollbacks
    newly_stable = _newly_stable(history, old_revision)
    if newly_stable is not None:
        said.append(_stable_event(owner, newly_stable))
    for ev in said:
        if all(ev.name != e.name for e in out.events):
            out.events.append(ev)

    keep_ids = {current_id}
    if serving:
        keep_ids.add(serving.revision.id)
    if history.stable:
        keep_ids.add(history.stable.id)
    out.prune = [controller_revision_name(owner.name, r.id) for r in prunable(history, keep_ids)]
    return out


def _select(
    history: History, current: Revision, action: Action, gated: bool, live_id: str | None
) -> tuple[Serving | None, Revision | None]:
    """What serves, and the failed current revision it stands in for (the RolledBack condition), if any.

    Gated (the current revision is not cleared by validation): what the Deployment runs keeps running, unless it
    failed on acceptance itself; then it falls back as a failed current revision would, never to the gated one.
    That fallback is news (an Event) but not a rollback of the current spec, so it returns no replaced revision.
    """
    if not gated:
        serving = choose_serving(history, current, action)
        replaced = current if current.state is RevisionState.FAILED and action is not Action.NONE else None
        return serving, replaced
    kept = _keep_live(history, live_id)
    if kept is None:
        return None, None
    rev = kept.revision
    if kept.speculation and rev.state is RevisionState.FAILED and action is not Action.NONE:
        return choose_serving(history, rev, action), None
    return kept, None


def _keep_live(history: History, live_id: str | None) -> Serving | None:
    """Keep serving what the Deployment runs now (validation pending or failed)."""
    if not live_id:
        return None
    base = live_id.removesuffix(NO_SPECULATION_SUFFIX)
    rev = history.get(base)
    if rev is None:
        return None
    return Serving(rev, speculation=not live_id.endswith(NO_SPECULATION_SUFFIX), why="kept while validating")


def _says(conditions: Sequence[Mapping[str, Any]], type_: str, status: str, message: str) -> bool:
    before = cond.get(conditions, type_)
    return before is not None and before.get("status") == status and before.get("message") == message


def _draft(spec: SpeculativeDeploymentSpec) -> str:
    return spec.draft.model if spec.draft is not None else "(none)"


_EVENT_FOR: dict[tuple[str, str], tuple[str, str]] = {
    # (condition type, new status) -> (event type, event reason); the message is the condition's.
    (cond.VALIDATED, cond.TRUE): ("Normal", "ValidationSucceeded"),
    (cond.VALIDATED, cond.FALSE): ("Warning", VALIDATION_FAILED),  # or ValidationError: the condition's reason
    (cond.READY, cond.TRUE): ("Normal", "Ready"),
    (cond.ROLLED_BACK, cond.TRUE): ("Warning", "RolledBack"),
    (cond.DEGRADED, cond.TRUE): ("Warning", "Degraded"),
    (cond.DEGRADED, cond.FALSE): ("Normal", "Recovered"),
}


def _rollback_event(owner: Owner, failed: Revision, serving: Serving | None) -> Event:
    """The Warning for a rollback away from ``failed``, named after its verdict (revision id and verdict time)."""
    target = serving.id if serving else "nothing"
    return Event(
        "Warning",
        "RolledBack",
        f"revision {failed.id} rolled back to {target}: {failed.message}"[: cond.MAX_MESSAGE],
        event_name(owner.name, owner.uid, "RolledBack", ("verdict", failed.id, failed.at)),
    )


def _rollback_events(
    owner: Owner,
    failed_now: Sequence[Mapping[str, Any]],
    *,
    old_revision: Mapping[str, Any],
    history: History,
    action: Action,
    serving: Serving | None,
) -> list[Event]:
    """A RolledBack Event for each acceptance failure that this status write lists and the observed one did not.

    The verdict on the ControllerRevision is written first; if the operator dies before the status records the
    failure, the next pass (another process, perhaps) sees the same verdict not yet in status and says it, under
    the same name as the pass that decided it. With action None nothing is rolled back, so nothing is said here.
    """
    if action is Action.NONE:
        return []
    listed = {str(f.get("id")): str(f.get("at") or "") for f in old_revision.get("failed") or []}
    events = []
    for entry in failed_now:
        rev = history.get(str(entry["id"]))
        if rev is None or rev.reason != ACCEPTANCE_LOW:
            continue
        if rev.id in listed and (listed[rev.id] == rev.at or not rev.at):
            continue  # recorded, and so said, before
        events.append(_rollback_event(owner, rev, serving))
    return events


def _stable_event(owner: Owner, stable: Revision) -> Event:
    return Event(
        "Normal",
        "RevisionStable",
        f"Revision {stable.id} is stable: {stable.message}"[: cond.MAX_MESSAGE],
        event_name(owner.name, owner.uid, "RevisionStable", ("verdict", stable.id, stable.at)),
    )


def _newly_stable(history: History, old_revision: Mapping[str, Any]) -> Revision | None:
    """The stable revision this status write names for the first time, if it is newer than the one it replaces.

    Covers a restart between the stable verdict and the status write; falling back to an older stable revision
    (the newer one failed) is no news.
    """
    stable = history.stable
    old_id = old_revision.get("stable")
    if stable is None or stable.id == old_id:
        return None
    old = history.get(str(old_id)) if old_id else None
    return stable if old is None or stable.number > old.number else None


def _transition_events(
    owner: Owner, old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], *, rollback_said: bool
) -> list[Event]:
    """One Event per condition that changed status or reason, named after the state it changed from.

    A rollback decided or newly recorded in this pass has its own Event (``_rollback_events``); the RolledBack
    condition's own transition speaks only when there is none (the rollback action changed from None, so a
    failure recorded earlier is rolled back only now).
    """
    events = []
    rolled_back = cond.is_true(new, cond.ROLLED_BACK)
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
        if key == (cond.DEGRADED, cond.TRUE) and (
            c["reason"] in (VALIDATION_FAILED, VALIDATION_ERROR)
            or (c["reason"] == ACCEPTANCE_LOW and (rolled_back or rollback_said))
        ):
            continue  # the ValidationFailed / ValidationError / RolledBack event already says it
        if key == (cond.ROLLED_BACK, cond.TRUE) and rollback_said:
            continue  # said by the rollback's own Event
        etype, reason = _EVENT_FOR[key]
        if key == (cond.VALIDATED, cond.FALSE):
            reason = str(c["reason"])
        facts = (*condition_facts(old, c["type"]), str(c["status"]), str(c["reason"]))
        events.append(Event(etype, reason, str(c["message"]), event_name(owner.name, owner.uid, reason, facts)))
    return events

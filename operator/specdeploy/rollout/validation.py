"""Step 2 of the plan: the validation state machine of the current revision, and the validation Job's outcome.

A revision that needs checking (``render.needs_validation_job``) goes ``RUNNING`` (its Job is created and awaited),
then ``PASSED`` (compatible, or incompatible under policy Warn), ``FAILED`` (incompatible under Enforce: recorded
durably on the revision, and the revision does not roll out) or ``ERROR`` (the validator could not check; the Job
is deleted and retried after ``VALIDATION_RETRY_SECONDS``). ``SKIPPED`` when there is nothing to check. The Job's
outcome is read here too (``job_outcome``), from the indexed Job and its pod's termination message, so the
handler only gathers the objects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from specdeploy import conditions as cond
from specdeploy.api import SpeculativeDeploymentSpec, ValidationPolicy
from specdeploy.render import needs_validation_job, render_validation_job
from specdeploy.render.meta import OwnerRef
from specdeploy.rollout import ownership
from specdeploy.rollout.events import Event, condition_facts, event_name
from specdeploy.rollout.history import (
    ANNOTATION_MESSAGE,
    ANNOTATION_VALIDATION,
    RevisionRecord,
    RevisionState,
    verdict_annotations,
)

# Reasons (CamelCase, a fixed vocabulary) used in conditions, verdicts and Events.
VALIDATION_FAILED = "ValidationFailed"
VALIDATION_ERROR = "ValidationError"
# After a validation Job that could not check (exit 2), retry it after this long.
VALIDATION_RETRY_SECONDS = 300
# The validator's exit codes (``specdeploy validate``): 0 compatible, 1 incompatible, 2 could not check.
EXIT_COMPATIBLE, EXIT_INCOMPATIBLE, EXIT_ERROR = 0, 1, 2


class ValidationState(StrEnum):
    """Where the current revision stands with validation."""

    PASSED = "passed"  # compatible, or incompatible under policy Warn: it may roll out
    RUNNING = "running"  # the Job is being created or runs
    FAILED = "failed"  # incompatible under Enforce
    ERROR = "error"  # could not check under Enforce
    SKIPPED = "skipped"  # policy Skip, or no draft (ngram)

    @property
    def holds_rollout(self) -> bool:
        """The current revision may not replace what serves now."""
        return self in (ValidationState.RUNNING, ValidationState.FAILED, ValidationState.ERROR)


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
class ValidationStep:
    """The outcome of step 2: the state, the Validated condition, and what to write or say for it."""

    state: ValidationState
    condition: cond.Condition
    current: RevisionRecord  # the current revision, with a FAILED verdict when this step just gave one
    summary: dict[str, Any] | None = None  # for status.validation (without revision and policy)
    verdicts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    create_job: dict[str, Any] | None = None
    delete_job: str | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationInput:
    """What step 2 reads of the observed world."""

    owner: OwnerRef
    namespace: str
    spec: SpeculativeDeploymentSpec
    current: RevisionRecord
    job: JobOutcome | None
    conditions: Sequence[Mapping[str, Any]]  # the observed status' conditions
    now: float
    now_iso: str


def validate_step(given: ValidationInput) -> ValidationStep:
    """Step 2: advance the current revision's validation by what the observed world shows."""
    spec, current, job = given.spec, given.current, given.job
    policy = spec.validation.policy
    # A report recorded on the revision stays shown, also once the policy became Skip (the policy is not part of
    # the revision: the same revision keeps its report).
    summary = dict(current.validation) if current.validation else None
    if not needs_validation_job(spec):
        skip = policy == ValidationPolicy.SKIP
        reason = "ValidationSkipped" if skip else "NothingToValidate"
        msg = "validation policy is Skip" if skip else "method ngram uses no draft model"
        skipped = cond.Condition(cond.VALIDATED, cond.TRUE, reason, msg)
        return ValidationStep(ValidationState.SKIPPED, skipped, current, summary)
    verdicts: list[tuple[str, dict[str, str]]] = []
    if summary is None and job is not None and job.finished:
        summary = validation_summary(job)
        if job.exit_code in (EXIT_COMPATIBLE, EXIT_INCOMPATIBLE):
            verdicts.append((current.id, {ANNOTATION_VALIDATION: json.dumps(summary, separators=(",", ":"))}))
    if summary is None:
        return _running(given, verdicts)
    enforce = policy == ValidationPolicy.ENFORCE
    if summary.get("exitCode") == EXIT_COMPATIBLE:
        passed = cond.Condition(cond.VALIDATED, cond.TRUE, "ValidationSucceeded", str(summary["summary"]))
        return ValidationStep(ValidationState.PASSED, passed, current, summary, verdicts)
    if summary.get("exitCode") == EXIT_INCOMPATIBLE:
        words = failing_words(summary)
        failed = cond.Condition(cond.VALIDATED, cond.FALSE, VALIDATION_FAILED, f"draft is incompatible: {words}")
        if enforce and current.state is not RevisionState.FAILED:
            verdicts.append(
                (current.id, verdict_annotations(RevisionState.FAILED, VALIDATION_FAILED, words, given.now_iso))
            )
            current = with_verdict(current, RevisionState.FAILED, VALIDATION_FAILED, words, given.now_iso)
        state = ValidationState.FAILED if enforce else ValidationState.PASSED
        return ValidationStep(state, failed, current, summary, verdicts)
    error = cond.Condition(cond.VALIDATED, cond.FALSE, VALIDATION_ERROR, str(summary["summary"]))
    retry = job is not None and job.finished_at and given.now - job.finished_at > VALIDATION_RETRY_SECONDS
    state = ValidationState.ERROR if enforce else ValidationState.PASSED
    return ValidationStep(state, error, current, summary, verdicts, delete_job=job.name if retry and job else None)


def holds_rollout(state: ValidationState, current: RevisionRecord) -> bool:
    """The current revision may not replace what serves: validation has not cleared it, or refused it before."""
    refused = current.state is RevisionState.FAILED and current.reason == VALIDATION_FAILED
    return state.holds_rollout or refused


def _running(given: ValidationInput, verdicts: list[tuple[str, dict[str, str]]]) -> ValidationStep:
    """The Job runs (or is created now); the start is announced once, tied to the status saying so."""
    spec, current = given.spec, given.current
    running = f"validation Job for revision {current.id} is running"
    create_job = None
    if given.job is None:
        create_job = render_validation_job(given.owner["name"], given.namespace, spec, current.id, owner=given.owner)
    events = []
    # Tied to the status saying so, not to creating the Job: if the status write that follows the create is
    # refused (409), the next loop still announces it, once (the same name: see rollout.events).
    if not _says(given.conditions, cond.VALIDATED, cond.UNKNOWN, running):
        facts = (*condition_facts(given.conditions, cond.VALIDATED), current.id)
        draft = spec.draft.model if spec.draft is not None else "(none)"
        events.append(
            Event(
                "Normal",
                "ValidationStarted",
                f"Checking draft {draft} against target {spec.target.model}",
                event_name(given.owner["name"], given.owner["uid"], "ValidationStarted", facts),
            )
        )
    condition = cond.Condition(cond.VALIDATED, cond.UNKNOWN, "ValidationRunning", running)
    return ValidationStep(
        ValidationState.RUNNING, condition, current, None, verdicts, create_job=create_job, events=events
    )


def _says(conditions: Sequence[Mapping[str, Any]], type_: str, status: str, message: str) -> bool:
    before = cond.get(conditions, type_)
    return before is not None and before.get("status") == status and before.get("message") == message


def with_verdict(rev: RevisionRecord, state: RevisionState, reason: str, message: str, at: str) -> RevisionRecord:
    """``rev`` as it reads back once the verdict is on its ControllerRevision (same cut as the annotation)."""
    ann = verdict_annotations(state, reason, message, at)
    return replace(rev, state=state, reason=reason, message=ann[ANNOTATION_MESSAGE], at=at)


# ----------------------------------------------------------------------------------------- the Job's report
def job_outcome(jobs: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], name: str) -> JobOutcome | None:
    """The outcome of the validation Job ``name`` from the indexed Jobs and pods (see ``handlers.jobs_idx`` and
    ``handlers.pods_idx`` for their shape): the exit code and JSON report of its terminated pod, or why it has none.
    An exit code outside the validator's vocabulary (a crash, OOM kill) counts as could-not-check."""
    job = next((j for j in jobs if j["name"] == name), None)
    if job is None:
        return None
    done = next(
        (c for c in job["conditions"] if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"), None
    )
    if done is None:
        return JobOutcome(name=name, finished=False)
    finished_at = None
    if done.get("lastTransitionTime"):
        finished_at = dt.datetime.fromisoformat(done["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
    pod = ownership.reporting_pod(job, pods)  # by the Job's uid, never by a label anyone can set
    if pod is None:
        reason = done.get("reason") or done.get("type")
        return JobOutcome(
            name=name,
            finished=True,
            exit_code=None,
            message=f"Job {done['type']}: {reason} {done.get('message', '')}".strip(),
            finished_at=finished_at,
        )
    term = pod["terminated"]
    report: dict[str, Any] | None = None
    try:
        parsed = json.loads(term["message"]) if term["message"] else None
        report = parsed if isinstance(parsed, dict) else None
    except ValueError:
        report = None
    exit_code = term.get("exitCode")
    if exit_code not in (EXIT_COMPATIBLE, EXIT_INCOMPATIBLE, EXIT_ERROR):
        exit_code = EXIT_ERROR
    return JobOutcome(
        name=name,
        finished=True,
        exit_code=exit_code,
        report=report,
        message=(term["message"] or "")[:500] if report is None else "",
        finished_at=finished_at,
    )


def _error_words(error: object) -> str:
    """The validator reports a could-not-check error as ``{"kind", "message"}``; older reports as a string."""
    if isinstance(error, Mapping):
        kind, message = str(error.get("kind") or ""), str(error.get("message") or "")
        return f"{kind}: {message}" if kind and message else kind or message
    return str(error) if error else ""


def _schema_word(value: object) -> bool:
    """A check status the status schema accepts (letters only: pass, warn, fail, skip)."""
    return isinstance(value, str) and value.isascii() and value.isalpha()


def validation_summary(outcome: JobOutcome) -> dict[str, Any]:
    """The finished Job's report as status.validation shows it (bounded: 16 checks, cut messages)."""
    report = dict(outcome.report or {})
    checks = [
        {"name": str(c["name"])[:128], "status": str(c["status"]), "message": str(c.get("message", ""))[:300]}
        for c in report.get("checks", [])
        if isinstance(c, Mapping) and c.get("name") and _schema_word(c.get("status"))
    ][:16]
    failing = [c["name"] for c in checks if c["status"] == "fail"]
    warning = [c["name"] for c in checks if c["status"] == "warn"]
    if outcome.exit_code == EXIT_COMPATIBLE:
        summary = "compatible" + (f"; warnings: {', '.join(warning)}" if warning else "")
    elif outcome.exit_code == EXIT_INCOMPATIBLE:
        summary = "incompatible: " + ", ".join(failing or ["see checks"])
    else:
        summary = "could not check: " + (
            _error_words(report.get("error")) or outcome.message or "the validation Job failed"
        )
    out: dict[str, Any] = {
        "compatible": outcome.exit_code == EXIT_COMPATIBLE,
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


def failing_words(summary: Mapping[str, Any]) -> str:
    """The failing checks in one line (what the Validated condition and the FAILED verdict say)."""
    fails = [f"{c['name']}: {c['message']}" for c in summary.get("checks", []) if c.get("status") == "fail"]
    return "; ".join(fails)[:800] or str(summary.get("summary", ""))

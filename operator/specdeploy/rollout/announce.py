"""Step 7 of the plan: the Events that announce this pass's transitions, exactly one per transition.

Each Event is named after the transition from what is persisted (see ``rollout.events``), and the handler creates
it before the status write that records the transition: a rollback, a revision newly stable, and each condition
that changed status or reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from specdeploy import conditions as cond
from specdeploy.api import RollbackAction
from specdeploy.rollout.events import Event, condition_facts, event_name
from specdeploy.rollout.history import History, RevisionRecord, ServingChoice
from specdeploy.rollout.serve import CANARY_ABORTED, LIVE_FAILURES
from specdeploy.rollout.validation import VALIDATION_ERROR, VALIDATION_FAILED


class Subject(NamedTuple):
    """The object Events are about (its name and uid name them)."""

    name: str
    uid: str


@dataclass(frozen=True)
class Transitions:
    """What changed in this pass, as step 7 reads it."""

    old_conditions: Sequence[Mapping[str, Any]]
    new_conditions: Sequence[Mapping[str, Any]]
    old_revision: Mapping[str, Any]  # the observed status.revision
    failed_listed: Sequence[Mapping[str, Any]]  # status.revision.failed as this pass writes it
    history: History
    action: RollbackAction
    serving: ServingChoice | None
    rolled_back_now: RevisionRecord | None  # step 4 rolled back away from it in this pass


def plan_events(subject: Subject, t: Transitions, already: Sequence[Event] = ()) -> list[Event]:
    """The Events of this pass that ``already`` (said by earlier steps) does not name, in the order said."""
    rollbacks = _rollback_events(subject, t)
    if t.rolled_back_now is not None:
        rollbacks.append(rollback_event(subject, t.rolled_back_now, t.serving))
    said = _transition_events(subject, t.old_conditions, t.new_conditions, rollback_said=bool(rollbacks))
    said += rollbacks
    stable = newly_stable(t.history, t.old_revision)
    if stable is not None:
        said.append(stable_event(subject, stable))
    out: list[Event] = []
    for ev in said:
        if all(ev.name != e.name for e in (*already, *out)):
            out.append(ev)
    return out


_EVENT_FOR: dict[tuple[str, str], tuple[str, str]] = {
    # (condition type, new status) -> (event type, event reason); the message is the condition's.
    (cond.VALIDATED, cond.TRUE): ("Normal", "ValidationSucceeded"),
    (cond.VALIDATED, cond.FALSE): ("Warning", VALIDATION_FAILED),  # or ValidationError: the condition's reason
    (cond.READY, cond.TRUE): ("Normal", "Ready"),
    (cond.ROLLED_BACK, cond.TRUE): ("Warning", "RolledBack"),
    (cond.DEGRADED, cond.TRUE): ("Warning", "Degraded"),
    (cond.DEGRADED, cond.FALSE): ("Normal", "Recovered"),
}


def rollback_event(subject: Subject, failed: RevisionRecord, serving: ServingChoice | None) -> Event:
    """The Warning for a rollback away from ``failed``, named after its verdict (revision id and verdict time)."""
    target = serving.id if serving else "nothing"
    return Event(
        "Warning",
        "RolledBack",
        f"revision {failed.id} rolled back to {target}: {failed.message}"[: cond.MAX_MESSAGE],
        event_name(subject.name, subject.uid, "RolledBack", ("verdict", failed.id, failed.at)),
    )


def _rollback_events(subject: Subject, t: Transitions) -> list[Event]:
    """A RolledBack Event for each acceptance failure that this status write lists and the observed one did not.

    The verdict on the ControllerRevision is written first; if the operator dies before the status records the
    failure, the next pass (another process, perhaps) sees the same verdict not yet in status and says it, under
    the same name as the pass that decided it. With action None nothing is rolled back, so nothing is said here.
    """
    if t.action is RollbackAction.NONE:
        return []
    listed = {str(f.get("id")): str(f.get("at") or "") for f in t.old_revision.get("failed") or []}
    events = []
    for entry in t.failed_listed:
        rev = t.history.get(str(entry["id"]))
        if rev is None or rev.reason not in LIVE_FAILURES:
            continue
        if rev.id in listed and (listed[rev.id] == rev.at or not rev.at):
            continue  # recorded, and so said, before
        events.append(rollback_event(subject, rev, t.serving))
    return events


def stable_event(subject: Subject, stable: RevisionRecord) -> Event:
    return Event(
        "Normal",
        "RevisionStable",
        f"Revision {stable.id} is stable: {stable.message}"[: cond.MAX_MESSAGE],
        event_name(subject.name, subject.uid, "RevisionStable", ("verdict", stable.id, stable.at)),
    )


def newly_stable(history: History, old_revision: Mapping[str, Any]) -> RevisionRecord | None:
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
    subject: Subject, old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], *, rollback_said: bool
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
        key = (c["type"], c["status"])
        if not changed or key not in _EVENT_FOR or _said_otherwise(key, c, before, rolled_back, rollback_said):
            continue
        etype, reason = _EVENT_FOR[key]
        if key == (cond.VALIDATED, cond.FALSE):
            reason = str(c["reason"])
        facts = (*condition_facts(old, c["type"]), str(c["status"]), str(c["reason"]))
        events.append(Event(etype, reason, str(c["message"]), event_name(subject.name, subject.uid, reason, facts)))
    return events


def _said_otherwise(
    key: tuple[str, str], c: Mapping[str, Any], before: Mapping[str, Any] | None, rolled_back: bool, rollback_said: bool
) -> bool:
    """A changed condition whose news another Event says, or that is no news."""
    if key == (cond.DEGRADED, cond.FALSE):
        return before is None or before.get("status") != cond.TRUE  # "Recovered" only after a real degradation
    if key == (cond.VALIDATED, cond.TRUE):
        return c["reason"] in ("ValidationSkipped", "NothingToValidate")
    if c["reason"] == CANARY_ABORTED:
        return True  # the CanaryAborted Event (rollout.canary) says it, once
    if key == (cond.DEGRADED, cond.TRUE):
        # the ValidationFailed / ValidationError / RolledBack event already says it
        return c["reason"] in (VALIDATION_FAILED, VALIDATION_ERROR) or (
            c["reason"] in LIVE_FAILURES and (rolled_back or rollback_said)
        )
    if key == (cond.ROLLED_BACK, cond.TRUE):
        return rollback_said  # said by the rollback's own Event
    return False

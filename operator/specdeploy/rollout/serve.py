"""Steps 3 and 4 of the plan: choose what serves, then act on the monitor's finding about it.

What serves follows ``history.choose_serving`` once the current revision is cleared by validation. While it is not
(validation runs, or refused it), what the Deployment runs now keeps running. The monitor's finding about the
serving revision can then mark it failed (durably, once; the choice is made again without it) or stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from specdeploy.api import Rollback, RollbackAction
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.rollout.history import (
    NO_SPECULATION_SUFFIX,
    History,
    RevisionRecord,
    RevisionState,
    ServingChoice,
    choose_serving,
    verdict_annotations,
)
from specdeploy.rollout.validation import with_verdict

ACCEPTANCE_LOW = "AcceptanceRateLow"
CANARY_ABORTED = "CanaryAborted"  # rollout.canary's verdict reason: the incumbent serves on
# Issue 14: spec.rollback.minSpeedup tripped (monitor/payoff.py): slower than the control group. Rolled back exactly
# like a low acceptance rate; LIVE_FAILURES are the monitor's reasons for failing a serving revision.
SLOWER_THAN_CONTROL = "SlowerThanControl"
LIVE_FAILURES = frozenset({ACCEPTANCE_LOW, SLOWER_THAN_CONTROL})
HEALTHY = "Healthy"


@dataclass(frozen=True)
class Selection:
    """What serves, and the failed current revision it stands in for (the RolledBack condition), if any."""

    serving: ServingChoice | None
    replaced: RevisionRecord | None = None


def select(
    history: History, current: RevisionRecord, action: RollbackAction, held: bool, live_id: str | None
) -> Selection:
    """Step 3: what serves.

    A canary aborted (``CanaryAborted``) leaves what served beside it serving (``live_id``), not the fallback.
    Held (the current revision is not cleared by validation): what the Deployment runs keeps running, unless it
    failed on acceptance itself; then it falls back as a failed current revision would, never to the held one.
    That fallback is news (an Event) but not a rollback of the current spec, so it names no replaced revision.
    """
    if not held:
        if current.state is RevisionState.FAILED and current.reason == CANARY_ABORTED:
            kept = keep_live(history, live_id)  # issue 13: an aborted canary leaves the incumbent serving
            if kept is not None and kept.revision.id != current.id:
                return Selection(kept, replaced=current)
        serving = choose_serving(history, current, action)
        replaced = current if current.state is RevisionState.FAILED and action is not RollbackAction.NONE else None
        return Selection(serving, replaced)
    kept = keep_live(history, live_id)
    if kept is None:
        return Selection(None)
    rev = kept.revision
    if kept.speculation and rev.state is RevisionState.FAILED and action is not RollbackAction.NONE:
        return Selection(choose_serving(history, rev, action))
    return Selection(kept)


def keep_live(history: History, live_id: str | None) -> ServingChoice | None:
    """Keep serving what the Deployment runs now (validation pending or failed)."""
    if not live_id:
        return None
    rev = history.get(live_id.removesuffix(NO_SPECULATION_SUFFIX))
    if rev is None:
        return None
    return ServingChoice(rev, speculation=not live_id.endswith(NO_SPECULATION_SUFFIX))


@dataclass(frozen=True)
class MonitorStep:
    """Step 4's outcome: the history and selection after the finding, and the verdicts to record."""

    history: History
    current: RevisionRecord
    selection: Selection
    rolled_back_now: RevisionRecord | None = None  # the revision this step rolled back away from
    newly_stable: RevisionRecord | None = None  # the revision this step marked stable
    verdicts: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def apply_finding(
    finding: MonitorFinding | None,
    *,
    history: History,
    current: RevisionRecord,
    selection: Selection,
    rollback: Rollback,
    held: bool,
    live_id: str | None,
    now_iso: str,
) -> MonitorStep:
    """Step 4: a trip marks the serving revision failed (durably, once) and chooses again; a healthy run as long as
    ``rollback`` asks marks a new revision stable. A finding about another revision, or about a revision served
    without speculation, changes nothing."""
    unchanged = MonitorStep(history, current, selection)
    serving = selection.serving
    if serving is None or finding is None or finding.revision != serving.id or not serving.speculation:
        return unchanged
    rev = serving.revision
    if finding.trip and rev.state is not RevisionState.FAILED:
        reason = finding.trip_reason if finding.trip_reason in LIVE_FAILURES else ACCEPTANCE_LOW  # issue 14
        failed = with_verdict(rev, RevisionState.FAILED, reason, finding.message, now_iso)
        history = history.replaced(failed)
        current = failed if failed.id == current.id else current
        verdict = verdict_annotations(RevisionState.FAILED, reason, finding.message, now_iso)
        action = rollback.action
        return MonitorStep(
            history,
            current,
            select(history, current, action, held, live_id),
            rolled_back_now=failed if action is not RollbackAction.NONE else None,
            verdicts=[(rev.id, verdict)],
        )
    if (
        not finding.trip
        and rev.state is RevisionState.NEW
        and finding.healthy
        and finding.healthy_seconds >= rollback.stable_after_seconds
    ):
        stable = with_verdict(rev, RevisionState.STABLE, HEALTHY, finding.message, now_iso)
        history = history.replaced(stable)
        current = stable if stable.id == current.id else current
        verdict = verdict_annotations(RevisionState.STABLE, HEALTHY, finding.message, now_iso)
        chosen = replace(selection, serving=replace(serving, revision=stable))
        return MonitorStep(history, current, chosen, newly_stable=stable, verdicts=[(rev.id, verdict)])
    return unchanged

"""The adaptive loop's plan step (issue 14 item 3): which schedule is in force, and the spec the plan serves with it.

The spec is never edited. The schedule that ``monitor.payoff.choose_schedule`` picked becomes
``speculation.numSpeculativeTokensPerBatchSize`` of a derived spec (:func:`adapted_spec`), validated by the API's own
rules (vLLM 0.32's: from 1, sorted, non-overlapping, depths within k), whose revision id differs from the spec's: the
plan records and rolls it out like any other revision (through spec.rollout, so a schedule whose canary is slower is
aborted like any canary). A schedule that speculates k everywhere is the spec itself (no new revision, no restart).

:func:`adapt` is the step ``rollout.plan`` calls first. What makes it durable is ``status.adaptive``: the schedule in
force, why, when it changed, the revision it makes and the spec's own revision it was applied to (``base``). After a
restart the step reads the schedule back from there and computes the same revision (no new canary, no flapping). A
new spec revision (the user changed something that is hashed) or ``adaptive.enabled`` turned off drops the schedule.
A proposal from the monitor replaces the schedule in force only when (``next_schedule``) it differs and
``minIntervalSeconds`` passed since the last change, and only when the monitor measured what is in force (a canary
of the schedule in flight is judged before anything else is proposed); after a canary of a schedule was aborted the
same schedule is not proposed again (it is still the one "in force", only its revision is failed) until the
measurements give a different one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from specdeploy.api.revision import revision_id, serving_snapshot
from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.api.status import AdaptiveStatus
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.monitor.payoff import Schedule, ScheduleChoice, next_schedule
from specdeploy.monitor.proposal import revision_schedule
from specdeploy.render.job import needs_validation_job
from specdeploy.rollout.history import History, RevisionRecord, RevisionState


def adapted_spec(spec: SpeculativeDeploymentSpec, schedule: Schedule | None) -> SpeculativeDeploymentSpec:
    """``spec`` with ``schedule`` as its batch-size schedule; raises ValueError (naming the field) for a schedule
    the API refuses. ``None`` or k at every batch size gives ``spec`` unchanged."""
    k = spec.speculation.k
    if schedule is None or all(tokens == k for _, _, tokens in schedule):
        return spec
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["speculation"]["numSpeculativeTokensPerBatchSize"] = [
        {"start": start, "end": end, "tokens": tokens} for start, end, tokens in schedule
    ]
    return SpeculativeDeploymentSpec.model_validate(data)


@dataclass(frozen=True)
class AdaptiveStep:
    """The spec the plan serves this pass (the user's, or with the operator's schedule) and status.adaptive."""

    spec: SpeculativeDeploymentSpec
    status: dict[str, Any] | None  # status.adaptive to write; None: the object has none and gets none
    base: str  # the spec's own revision id
    changed: bool = False  # the schedule in force changed in this pass

    @property
    def written(self) -> dict[str, Any]:
        """What the step adds to the status: ``{"adaptive": ...}``, or nothing."""
        return {} if self.status is None else {"adaptive": self.status}


def _seconds(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _own(schedule: Schedule | None, k: int) -> Schedule:
    """One spelling per meaning: k at every batch size (or no schedule) is the spec's own depth, ``()``."""
    return () if schedule is None or all(tokens == k for _, _, tokens in schedule) else schedule


def _status(schedule: Schedule, reason: str, changed_at: str | None, revision: str, base: str) -> dict[str, Any]:
    model = AdaptiveStatus.model_validate(
        {
            "schedule": [{"start": s, "end": e, "tokens": t} for s, e, t in schedule],
            "reason": reason[:1024],
            "changedAt": changed_at,
            "revision": revision,
            "base": base,
        }
    )
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return out


def adapt(
    spec: SpeculativeDeploymentSpec,
    old: Mapping[str, Any] | None,
    finding: MonitorFinding | None,
    history: History,
    *,
    now: float,
    now_iso: str,
) -> AdaptiveStep:
    """The plan's first step with ``spec.speculation.adaptive``: the schedule in force from ``old``
    (status.adaptive), replaced by the monitor's proposal when it may be, and the spec to plan with."""
    base, k = revision_id(spec), spec.speculation.k
    adaptive = spec.speculation.adaptive
    old = old if isinstance(old, Mapping) else None
    if adaptive is None or not adaptive.enabled:
        if old is None or (not old.get("schedule") and old.get("base") == base):
            return AdaptiveStep(spec, dict(old) if old is not None else None, base)
        why = "spec.speculation.adaptive is off: the spec's own depth serves, the operator's schedule dropped"
        return AdaptiveStep(spec, _status((), why, now_iso, base, base), base, changed=True)
    if old is not None and old.get("base") == base:
        written = {"speculation": {"numSpeculativeTokensPerBatchSize": old.get("schedule")}}
        in_force = _own(revision_schedule(written), k)
        reason, changed_at = str(old.get("reason") or ""), old.get("changedAt")
    elif old is not None and old.get("schedule"):
        in_force, changed_at = (), now_iso
        reason = f"the spec changed (revision {base}): the operator's schedule dropped, the spec's own depth serves"
    else:
        in_force, reason, changed_at = (), "", None
    served = _served(spec, in_force)
    if served is None:  # a schedule the API refuses (status edited by hand): the spec's own depth
        in_force, changed_at = (), now_iso
        reason = "the schedule in status.adaptive is not valid for this spec: the spec's own depth serves"
        served = spec
    changed = False
    proposal = finding.schedule if finding is not None else None
    if proposal is not None and _may_change(history, finding, base, revision_id(served), needs_validation_job(spec)):
        assert finding is not None
        own = ScheduleChoice(_own(proposal.schedule, k), proposal.reason)
        chosen = next_schedule(in_force, own, _seconds(changed_at), now, float(adaptive.min_interval_seconds))
        candidate = _served(spec, chosen.schedule) if chosen is not None else None
        if chosen is not None and candidate is not None:
            in_force, reason, changed_at, served, changed = chosen.schedule, chosen.reason, now_iso, candidate, True
    if old is None and not changed:
        return AdaptiveStep(spec, None, base)  # nothing chosen yet: no status.adaptive
    return AdaptiveStep(served, _status(in_force, reason, changed_at, revision_id(served), base), base, changed)


def _served(spec: SpeculativeDeploymentSpec, schedule: Schedule) -> SpeculativeDeploymentSpec | None:
    try:
        return adapted_spec(spec, schedule)
    except (ValidationError, ValueError):
        return None


def _may_change(history: History, finding: MonitorFinding | None, base: str, in_force_id: str, validated: bool) -> bool:
    """A proposal counts when it measured what is in force, or what serves after the schedule's canary was aborted
    (never a proposal measured on another spec, nor while a new revision is still being rolled out or judged); and
    never for a spec whose own revision failed (its schedule would serve the same failed draft), nor, where the spec
    is validated (``validated``), before its revision has a recorded report for the schedule to share."""
    if finding is None:
        return False
    own = history.get(base)
    if own is not None and own.state is RevisionState.FAILED:
        return False
    if validated and (own is None or own.validation is None):
        return False
    if finding.revision == in_force_id:
        return True
    record = history.get(in_force_id)
    return record is not None and record.state is RevisionState.FAILED


def with_schedule_revision(
    history: History, current: RevisionRecord, spec: SpeculativeDeploymentSpec, base: str
) -> tuple[RevisionRecord, History]:
    """The current revision when it is the operator's schedule on the spec's revision ``base``: its snapshot is
    ``spec`` (the spec with the schedule; the handler fills in only the user's spec's), and it shares ``base``'s
    validation report (same target and draft: the check says the same), so no second validation Job runs."""
    if current.id == base:
        return current, history
    filled = replace(current, spec=current.spec or serving_snapshot(spec))  # the revision index keeps no snapshots
    own = history.get(base)
    if own is not None and own.validation is not None and filled.validation is None:
        filled = replace(filled, validation=own.validation)
    return filled, history.replaced(filled)

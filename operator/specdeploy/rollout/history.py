"""Revision history: which revisions exist, which are stable or failed, and which one should serve.

Each revision of a SpeculativeDeployment (a hash of its serving-relevant spec) is kept in the API as a
ControllerRevision, so an operator restart loses nothing: the revision's spec snapshot is its ``data``, and its
verdicts (validated, stable, failed and why) are annotations on it. This module turns those records into a
decision and back, as plain functions of data; ``handlers`` only reads and writes the objects.

Memory: the operator's revision index keeps each ControllerRevision without its spec snapshot
(:func:`index_entry`: ids, number, verdicts, the validation summary). A snapshot is only needed for a revision that
may serve (:func:`snapshots_needed`): the current spec's own is computed from the spec itself, and the stable or
live one, when it is another, is read from the API server once and kept while it is needed (:func:`with_snapshots`).

The user's ``spec`` is never edited (Argo CD must not fight us). Rolling back means serving an older revision's
snapshot, or the current target with speculation disabled, while ``spec`` still names the failed revision; a
failed revision is not retried until the spec changes to a new revision id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from specdeploy.api import RollbackAction
from specdeploy.render import labels as lbl

ANNOTATION_STATE = "specdeploy.io/state"
ANNOTATION_REASON = "specdeploy.io/reason"
ANNOTATION_MESSAGE = "specdeploy.io/message"
ANNOTATION_AT = "specdeploy.io/at"
ANNOTATION_VALIDATION = "specdeploy.io/validation"
# Suffix of the serving id used when speculation is switched off for a revision: the same target, no draft.
NO_SPECULATION_SUFFIX = "-nospec"
# How many ControllerRevisions to keep per object (oldest non-serving ones are pruned).
MAX_REVISIONS = 20


class RevisionState(StrEnum):
    NEW = ""
    STABLE = "stable"
    FAILED = "failed"


@dataclass(frozen=True)
class RevisionRecord:
    """One revision as recorded in its ControllerRevision."""

    id: str
    number: int
    spec: Mapping[str, Any]
    state: RevisionState = RevisionState.NEW
    reason: str = ""
    message: str = ""
    at: str = ""
    validation: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ServingChoice:
    """What the Deployment should run: a revision's snapshot, with or without speculation.

    (Not ``api.Serving``, the spec's pod settings: this is the choice of which revision the pods run.)
    """

    revision: RevisionRecord
    speculation: bool

    @property
    def id(self) -> str:
        return self.revision.id if self.speculation else self.revision.id + NO_SPECULATION_SUFFIX


@dataclass(frozen=True)
class History:
    revisions: tuple[RevisionRecord, ...] = field(default_factory=tuple)

    def get(self, revision_id: str) -> RevisionRecord | None:
        return next((r for r in self.revisions if r.id == revision_id), None)

    @property
    def stable(self) -> RevisionRecord | None:
        """The newest stable revision that has not failed since."""
        good = [r for r in self.revisions if r.state is RevisionState.STABLE]
        return max(good, key=lambda r: r.number) if good else None

    @property
    def failed(self) -> list[RevisionRecord]:
        return sorted((r for r in self.revisions if r.state is RevisionState.FAILED), key=lambda r: -r.number)

    def next_number(self) -> int:
        return max((r.number for r in self.revisions), default=0) + 1

    def replaced(self, rev: RevisionRecord) -> History:
        """This history with the revision of ``rev``'s id replaced by ``rev`` (a verdict just given)."""
        return History(tuple(rev if r.id == rev.id else r for r in self.revisions))

    def added(self, rev: RevisionRecord) -> History:
        return History((*self.revisions, rev))


def choose_serving(history: History, current: RevisionRecord, action: RollbackAction) -> ServingChoice:
    """Which revision serves, given the current spec's revision and the recorded verdicts.

    A current revision that has not failed serves as written. A failed one is replaced according to the
    rollback action: the newest stable revision (RollbackToLastGood), or the current target without
    speculation (DisableSpeculation, and RollbackToLastGood with no stable revision). Action None only
    reports: the failed revision keeps serving.
    """
    if current.state is not RevisionState.FAILED or action is RollbackAction.NONE:
        return ServingChoice(current, speculation=True)
    if action is RollbackAction.ROLLBACK_TO_LAST_GOOD:
        stable = history.stable
        if stable is not None and stable.id != current.id:
            return ServingChoice(stable, speculation=True)
    return ServingChoice(current, speculation=False)


def from_controller_revisions(objs: Iterable[Mapping[str, Any]]) -> History:
    """Read a History from ControllerRevision objects (as dicts) of one SpeculativeDeployment."""
    revisions = []
    for obj in objs:
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        ann = meta.get("annotations") or {}
        rev_id = labels.get(lbl.SD_REVISION)
        if not rev_id:
            continue
        validation = None
        raw = ann.get(ANNOTATION_VALIDATION)
        if raw:
            try:
                validation = json.loads(raw)
            except ValueError:
                validation = None
        try:
            state = RevisionState(ann.get(ANNOTATION_STATE, ""))
        except ValueError:
            state = RevisionState.NEW
        revisions.append(
            RevisionRecord(
                id=rev_id,
                number=int(obj.get("revision", 0)),
                spec=(obj.get("data") or {}).get("spec", {}),
                state=state,
                reason=ann.get(ANNOTATION_REASON, ""),
                message=ann.get(ANNOTATION_MESSAGE, ""),
                at=ann.get(ANNOTATION_AT, ""),
                validation=validation,
            )
        )
    return History(tuple(sorted(revisions, key=lambda r: r.number)))


def index_entry(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the revision index keeps of a ControllerRevision: everything but its spec snapshot (``data``)."""
    return {k: v for k, v in obj.items() if k != "data"}


def snapshots_needed(history: History, current_id: str, live_id: str | None) -> set[str]:
    """Revisions, other than the current one, whose snapshot the plan may render: the stable one (a rollback
    serves it) and the one the Deployment runs (kept while a new revision validates)."""
    ids = {history.stable.id} if history.stable is not None else set()
    if live_id:
        ids.add(live_id.removesuffix(NO_SPECULATION_SUFFIX))
    ids.discard(current_id)
    return {i for i in ids if history.get(i) is not None}


def with_snapshots(history: History, snapshots: Mapping[str, Mapping[str, Any]]) -> History:
    """The history with the given spec snapshots filled in (revisions read from the index have none)."""
    return History(tuple(replace(r, spec=snapshots[r.id]) if r.id in snapshots else r for r in history.revisions))


def controller_revision_name(sd_name: str, revision_id: str) -> str:
    return f"{sd_name}-{revision_id}"


def verdict_annotations(state: RevisionState, reason: str, message: str, at: str) -> dict[str, str]:
    """The annotations that record a verdict on a revision (merge-patched onto its ControllerRevision)."""
    return {
        ANNOTATION_STATE: state.value,
        ANNOTATION_REASON: reason,
        ANNOTATION_MESSAGE: message[:1024],
        ANNOTATION_AT: at,
    }


def prunable(history: History, keep: set[str], limit: int = MAX_REVISIONS) -> list[RevisionRecord]:
    """Oldest revisions beyond ``limit`` that are not in ``keep`` (serving, current, stable)."""
    extra = len(history.revisions) - limit
    if extra <= 0:
        return []
    candidates = [r for r in history.revisions if r.id not in keep]
    return candidates[:extra]

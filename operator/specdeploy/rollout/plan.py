"""The reconcile plan: from everything observed about one SpeculativeDeployment, what should exist and be said.

A pure function of data, in the style of the Deployment controller and Argo Rollouts: the handler gathers the
observed world (the object, its revision history, its children, the monitor's latest finding), calls
``plan()``, and carries out the result. Nothing here talks to the API, so every branch — validation gating,
rollback, stable promotion, status and Events — is tested without a cluster, and the operator is level-based:
running the same plan twice on the same world asks for nothing new.

``plan()`` is a pipeline of named steps, each a pure function with its own tests:

1. ``record_revision``: record the current spec as a ControllerRevision the first time it is seen;
2. ``validation.validate_step``: the validation state machine of the current revision;
3. ``serve.select``: what serves;
4. ``serve.apply_finding``: the monitor's finding on what serves (failed: roll back; healthy: stable);
5. ``render_children``: the Deployment and Service for what serves;
6. ``status.rollout_conditions`` and ``status.build_status``: conditions and status;
7. ``announce.plan_events`` and ``prunable_names``: Events for the transitions, old revisions to delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specdeploy import conditions as cond
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import NOT_HASHED, SERVING_FIELDS, revision_id, serving_snapshot
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.policy import AdminPolicy, check
from specdeploy.render import labels as lbl
from specdeploy.render import owner_for, render_deployment, render_service
from specdeploy.render.ecosystem import render_optional  # issue 15
from specdeploy.render.meta import OwnerRef, owner_reference
from specdeploy.rollout import progress
from specdeploy.rollout.announce import Subject, Transitions, plan_events, stable_event
from specdeploy.rollout.events import Event
from specdeploy.rollout.history import (
    History,
    RevisionRecord,
    ServingChoice,
    controller_revision_name,
    prunable,
)
from specdeploy.rollout.refusal import refuse
from specdeploy.rollout.serve import apply_finding, select
from specdeploy.rollout.status import Rollout, StatusInput, build_status, rollout_conditions
from specdeploy.rollout.validation import JobOutcome, ValidationInput, holds_rollout, validate_step

__all__ = ["Event", "JobOutcome", "MonitorFinding", "Observed", "Owner", "Plan", "plan"]


@dataclass(frozen=True)
class Owner:
    name: str
    namespace: str
    uid: str
    generation: int

    def ref(self) -> OwnerRef:
        return owner_for(self.name, self.uid)

    @property
    def subject(self) -> Subject:
        return Subject(self.name, self.uid)


@dataclass(frozen=True)
class Observed:
    owner: Owner
    spec: SpeculativeDeploymentSpec
    status: Mapping[str, Any]
    history: History
    deployment: Mapping[str, Any] | None
    service: Mapping[str, Any] | None
    job: JobOutcome | None
    monitor: MonitorFinding | None
    now_iso: str
    now: float
    policy: AdminPolicy = field(default_factory=AdminPolicy)  # the admin's allow-lists (specdeploy.policy)


@dataclass
class Plan:
    record_revision: dict[str, Any] | None = None
    verdicts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    create_job: dict[str, Any] | None = None
    delete_job: str | None = None
    deployment: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)
    serving: ServingChoice | None = None  # what the monitor should follow
    optional: list[dict[str, Any]] | None = None  # issue 15: PDB, InferencePool wanted; None: leave them be


def plan(obs: Observed) -> Plan:
    """What to create, patch, record and say for the observed world (see the module docstring)."""
    spec, owner, action = obs.spec, obs.owner, obs.spec.rollback.action
    # 0. Admin policy (specdeploy.policy): a refused spec changes no child; what serves keeps serving.
    violations = check(spec, obs.policy)
    if violations:
        refused = refuse(owner.name, owner.uid, owner.generation, obs.status, violations, now_iso=obs.now_iso)
        return Plan(status=refused.status, events=list(refused.events))
    out = Plan()
    # 1. Revision.
    current, history, out.record_revision = record_revision(owner, spec, obs.history)
    # 2. Validate.
    old_conditions = obs.status.get("conditions") or []
    checked = validate_step(
        ValidationInput(owner.ref(), owner.namespace, spec, current, obs.job, old_conditions, obs.now, obs.now_iso)
    )
    current, history = checked.current, history.replaced(checked.current)
    out.verdicts, out.create_job, out.delete_job = list(checked.verdicts), checked.create_job, checked.delete_job
    # 3. Serve, and 4. the monitor's finding on what serves.
    live_id = progress.template_revision(obs.deployment)
    held = holds_rollout(checked.state, current)
    found = apply_finding(
        obs.monitor,
        history=history,
        current=current,
        selection=select(history, current, action, held, live_id),
        rollback=spec.rollback,
        held=held,
        live_id=live_id,
        now_iso=obs.now_iso,
    )
    history, out.serving = found.history, found.selection.serving
    out.verdicts += found.verdicts
    # 5. Children.
    out.deployment, out.service = render_children(owner, spec, out.serving, current.id)
    # Issue 15: the optional children (render.ecosystem); the handler deletes those no longer wanted.
    out.optional = render_optional(
        owner.name, owner.namespace, spec, out.serving.id if out.serving else current.id, owner=owner.ref()
    )
    # 6. Status.
    ready = progress.ready_replicas(obs.deployment)
    rolled_out = out.serving is not None and progress.rolled_out(obs.deployment, out.serving.id, spec.replicas)
    rollout = Rollout(checked.state, out.serving, found.selection.replaced, action, rolled_out, ready, spec.replicas)
    conditions = cond.set_conditions(
        old_conditions, [checked.condition, *rollout_conditions(rollout)], obs.now_iso, owner.generation
    )
    facts = StatusInput(owner.name, owner.namespace, owner.generation, spec, current.id, out.serving, history, ready)
    out.status = build_status(
        facts, conditions, validation=checked.summary, finding=obs.monitor, old=obs.status, now_iso=obs.now_iso
    )
    # 7. Events on transitions only, and old revisions to prune.
    said = [*checked.events, *([stable_event(owner.subject, found.newly_stable)] if found.newly_stable else [])]
    old_revision, failed_listed = obs.status.get("revision") or {}, out.status["revision"]["failed"]
    changes = Transitions(
        old_conditions, conditions, old_revision, failed_listed, history, action, out.serving, found.rolled_back_now
    )
    out.events = said + plan_events(owner.subject, changes, already=said)
    out.prune = prunable_names(owner.name, history, current, out.serving)
    return out


def record_revision(
    owner: Owner, spec: SpeculativeDeploymentSpec, history: History
) -> tuple[RevisionRecord, History, dict[str, Any] | None]:
    """Step 1: the current spec's revision, the history with it, and its ControllerRevision when it is new."""
    current_id = revision_id(spec)
    current = history.get(current_id)
    if current is not None:
        return current, history, None
    number = history.next_number()
    current = RevisionRecord(id=current_id, number=number, spec=serving_snapshot(spec))
    return current, history.added(current), controller_revision(owner, current_id, number, spec)


def controller_revision(owner: Owner, rev_id: str, number: int, spec: SpeculativeDeploymentSpec) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": controller_revision_name(owner.name, rev_id),
            "namespace": owner.namespace,
            "labels": {lbl.SD_NAME: owner.name, lbl.SD_REVISION: rev_id, lbl.MANAGED_BY: lbl.MANAGER},
            "ownerReferences": [owner_reference(owner.ref())],
        },
        "revision": number,
        "data": {"spec": serving_snapshot(spec)},
    }


def render_children(
    owner: Owner, spec: SpeculativeDeploymentSpec, serving: ServingChoice | None, current_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Step 5: the Deployment for what serves (none while nothing can), and the Service."""
    deployment = None
    if serving is not None:
        deployment = render_deployment(
            owner.name,
            owner.namespace,
            spec_for(serving, spec),
            serving.id,
            owner=owner.ref(),
            speculation_enabled=serving.speculation,
        )
    service_revision = serving.id if serving else current_id
    return deployment, render_service(owner.name, owner.namespace, spec, service_revision, owner=owner.ref())


def spec_for(serving: ServingChoice, current: SpeculativeDeploymentSpec) -> SpeculativeDeploymentSpec:
    """The spec to render for ``serving``: the revision's snapshot, with today's replicas and policies."""
    merged = {
        key: value
        for key, value in current.model_dump(by_alias=True, exclude_none=True).items()
        if key not in SERVING_FIELDS  # a section the snapshot lacks (no draft for ngram) must not leak in
    }
    merged.update(serving.revision.spec)
    # Issue 14: the parts of speculation a revision leaves out (control group, adaptive settings) are today's.
    kept = current.speculation.model_dump(by_alias=True, exclude_none=True, include=NOT_HASHED["speculation"])
    if kept:
        merged["speculation"] = {**merged.get("speculation", {}), **kept}
    return SpeculativeDeploymentSpec.model_validate(merged)


def prunable_names(name: str, history: History, current: RevisionRecord, serving: ServingChoice | None) -> list[str]:
    """Step 7: ControllerRevisions to delete, beyond the cap, never the current, serving or stable one."""
    keep_ids = {current.id}
    if serving:
        keep_ids.add(serving.revision.id)
    if history.stable:
        keep_ids.add(history.stable.id)
    return [controller_revision_name(name, r.id) for r in prunable(history, keep_ids)]

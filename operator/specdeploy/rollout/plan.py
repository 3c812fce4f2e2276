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
4. ``serve.apply_finding``: the monitor's finding on what serves (failed: roll back; healthy: stable), and
   ``judge_canary``: the monitor's word on a canary beside it (passed: promote; failed: abort);
5. ``canary.layout`` and ``render_children``: the Deployments of the revisions (issue 13) and the Service;
6. ``status.rollout_conditions`` and ``status.build_status``: conditions and status;
7. ``announce.plan_events`` and ``prunable_names``: Events for the transitions, old revisions to delete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from specdeploy import conditions as cond
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import NOT_HASHED, SERVING_FIELDS, revision_id, serving_snapshot
from specdeploy.monitor.finding import CanaryFinding, CanaryVerdict, MonitorFinding
from specdeploy.policy import AdminPolicy, check
from specdeploy.render import labels as lbl
from specdeploy.render import owner_for, render_service
from specdeploy.render.ecosystem import render_optional  # issue 15
from specdeploy.render.meta import OwnerRef, owner_reference
from specdeploy.render.workload import render_workload  # issue 16: Deployment or LeaderWorkerSet
from specdeploy.rollout import adaptive as ad
from specdeploy.rollout import canary as cn
from specdeploy.rollout import progress
from specdeploy.rollout.announce import Subject, Transitions, plan_events, stable_event
from specdeploy.rollout.control import control_child
from specdeploy.rollout.events import Event
from specdeploy.rollout.history import (
    History,
    RevisionRecord,
    RevisionState,
    ServingChoice,
    controller_revision_name,
    prunable,
    verdict_annotations,
)
from specdeploy.rollout.refusal import refuse
from specdeploy.rollout.serve import MonitorStep, Selection, apply_finding, keep_live, select
from specdeploy.rollout.status import Rollout, StatusInput, build_status, rollout_conditions
from specdeploy.rollout.validation import JobOutcome, ValidationInput, holds_rollout, validate_step, with_verdict
from specdeploy.rollout.workloads import LWS_DISABLED, disabled_message

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
    # Every workload of the object (one per revision, issue 13): Deployments, and LeaderWorkerSets (issue 16).
    deployments: tuple[Mapping[str, Any], ...]
    service: Mapping[str, Any] | None
    job: JobOutcome | None
    monitor: MonitorFinding | None
    now_iso: str
    now: float
    policy: AdminPolicy = field(default_factory=AdminPolicy)  # the admin's allow-lists (specdeploy.policy)
    leaderworkerset_enabled: bool = False  # issue 16: the operator runs with LeaderWorkerSet support


@dataclass
class Plan:
    record_revision: dict[str, Any] | None = None
    verdicts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    create_job: dict[str, Any] | None = None
    delete_job: str | None = None
    deployments: list[dict[str, Any]] = field(default_factory=list)  # the target's first, then the others kept
    delete_deployments: list[str] = field(default_factory=list)
    service: dict[str, Any] | None = None
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)
    serving: ServingChoice | None = None  # what the monitor should follow
    optional: list[dict[str, Any]] | None = None  # issue 15: PDB, InferencePool wanted; None: leave them be
    canary: ServingChoice | None = None  # issue 13: the canary the monitor judges beside ``serving``

    @property
    def deployment(self) -> dict[str, Any] | None:
        """The Deployment of the revision the pods move to (the first of ``deployments``)."""
        return self.deployments[0] if self.deployments else None


def plan(obs: Observed) -> Plan:
    """What to create, patch, record and say for the observed world (see the module docstring)."""
    # Issue 14 item 3 (rollout.adaptive): with spec.speculation.adaptive, the operator's schedule in force
    # (status.adaptive) or a new one the monitor proposed is the spec this pass serves (the spec with the schedule:
    # its own revision, rolled out like any, sharing the spec's validation); status.adaptive is written in step 6.
    spec, owner, action = (
        (
            adaptive := ad.adapt(
                obs.spec, obs.status.get("adaptive"), obs.monitor, obs.history, now=obs.now, now_iso=obs.now_iso
            )
        ).spec,
        obs.owner,
        obs.spec.rollback.action,
    )
    # 0. Admin policy (specdeploy.policy): a refused spec changes no child; what serves keeps serving.
    violations = check(spec, obs.policy)
    if violations:
        refused = refuse(owner.name, owner.uid, owner.generation, obs.status, violations, now_iso=obs.now_iso)
        return Plan(status=refused.status, events=list(refused.events))
    # Issue 16: a multi-node spec without LeaderWorkerSet support is refused the same way (rollout.workloads).
    lws_off = None if obs.leaderworkerset_enabled else disabled_message(spec)
    if lws_off is not None:
        refused = refuse(
            owner.name,
            owner.uid,
            owner.generation,
            obs.status,
            [],
            now_iso=obs.now_iso,
            reason=LWS_DISABLED,
            message=lws_off,
        )
        return Plan(status=refused.status, events=list(refused.events))
    out = Plan()
    # 1. Revision (the schedule's revision, with adaptive, shares the spec's validation: rollout.adaptive).
    current, history, out.record_revision = record_revision(owner, spec, obs.history, base=adaptive.base)
    # 2. Validate.
    old_conditions = obs.status.get("conditions") or []
    checked = validate_step(
        ValidationInput(owner.ref(), owner.namespace, spec, current, obs.job, old_conditions, obs.now, obs.now_iso)
    )
    current, history = checked.current, history.replaced(checked.current)
    out.verdicts, out.create_job, out.delete_job = list(checked.verdicts), checked.create_job, checked.delete_job
    # 3. Serve, and 4. the monitor's finding on what serves.
    lives = cn.lives(obs.deployments)
    incumbent = cn.incumbent(lives, current.id)
    live_id = incumbent.serving_id if incumbent else None
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
    out.verdicts += found.verdicts
    # 4b. The canary's verdict (issue 13).
    judged = judge_canary(obs, found, lives, held=held, live_id=live_id)
    history, current, selection = judged.history, judged.current, judged.selection
    out.verdicts += judged.verdicts
    # 5. Children: where the pods of each revision go (rollout.canary), rendered.
    canary_cfg = spec.rollout.canary
    lay = cn.layout(
        selection.serving,
        lives,
        replicas=spec.replicas,
        surge=canary_cfg.replicas,
        strategy=spec.rollout.strategy,
        canary=judged.is_canary,
        keep_live=lambda serving_id: keep_live(history, serving_id),
    )
    out.serving, out.canary = lay.serving, lay.canary
    out.deployments, out.service = render_children(owner, spec, selection.serving, current.id, lay, lives=lives)
    out.delete_deployments = lay.delete
    # Issue 14 (payoff): the control group's Deployment beside what serves (rollout.control); READY counts its pods.
    serving_spec = spec_for(out.serving, spec) if out.serving is not None and out.serving.speculation else None
    control = control_child(
        owner.name,
        owner.namespace,
        serving_spec,
        out.serving.id if out.serving else None,
        obs.deployments,
        owner=owner.ref(),
    )
    out.deployments += [control.deployment] if control.deployment is not None else []
    out.delete_deployments += [control.delete] if control.delete is not None else []
    # Issue 15: the optional children (render.ecosystem); the handler deletes those no longer wanted.
    out.optional = render_optional(
        owner.name, owner.namespace, spec, out.serving.id if out.serving else current.id, owner=owner.ref()
    )
    # 6. Status.
    ready = sum(live.ready for live in lives if live.name not in lay.delete)  # every revision's, but those going
    rolled_out = out.serving is not None and progress.rolled_out(
        progress.for_revision(obs.deployments, out.serving.id), out.serving.id, spec.replicas
    )
    rolled_out = rolled_out and (out.canary is not None or not lay.scale)  # a promotion or fallback is done
    moving = bool(lay.scale) and out.canary is None and ready >= spec.replicas  # stepwise, never below replicas
    in_canary = f"canary revision {out.canary.id} beside {out.serving.id}" if out.canary and out.serving else None
    rollout = Rollout(
        checked.state, out.serving, selection.replaced, action, rolled_out, ready, spec.replicas, in_canary, moving
    )

    conditions = cond.set_conditions(
        old_conditions, [checked.condition, *rollout_conditions(rollout)], obs.now_iso, owner.generation
    )
    facts = StatusInput(
        owner.name,
        owner.namespace,
        owner.generation,
        spec,
        current.id,
        out.serving,
        history,
        ready,
        control=(control.ready, control.replicas),
    )
    out.status = (
        build_status(
            facts, conditions, validation=checked.summary, finding=obs.monitor, old=obs.status, now_iso=obs.now_iso
        )
        | adaptive.written
    )  # issue 14 item 3: status.adaptive (the schedule in force, why, when)
    canary_status, canary_events = cn.report(
        cn.ReportInput(
            owner.subject,
            current,
            selection.serving,
            lay,
            judged.verdict,
            obs.status.get("canary"),
            spec.replicas,
            canary_cfg.replicas,
        )
    )
    if canary_status is not None:
        out.status["canary"] = canary_status
    # 7. Events on transitions only, and old revisions to prune.
    said = [
        *checked.events,
        *canary_events,
        *([stable_event(owner.subject, found.newly_stable)] if found.newly_stable else []),
    ]
    old_revision, failed_listed = obs.status.get("revision") or {}, out.status["revision"]["failed"]
    changes = Transitions(
        old_conditions, conditions, old_revision, failed_listed, history, action, out.serving, found.rolled_back_now
    )
    out.events = said + plan_events(owner.subject, changes, already=said)
    out.prune = prunable_names(owner.name, history, current, out.serving)
    return out


def record_revision(
    owner: Owner, spec: SpeculativeDeploymentSpec, history: History, *, base: str | None = None
) -> tuple[RevisionRecord, History, dict[str, Any] | None]:
    """Step 1: the current spec's revision, the history with it, and its ControllerRevision when it is new.
    ``base``: the user's spec's revision when ``spec`` carries the adaptive loop's schedule (rollout.adaptive)."""
    current_id = revision_id(spec)
    current = history.get(current_id)
    record = None
    if current is None:
        number = history.next_number()
        current = RevisionRecord(id=current_id, number=number, spec=serving_snapshot(spec))
        history, record = history.added(current), controller_revision(owner, current_id, number, spec)
    if base is not None:
        current, history = ad.with_schedule_revision(history, current, spec, base)
    return current, history, record


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


@dataclass(frozen=True)
class CanaryStep:
    """Step 4b's outcome: the history and selection after the canary's verdict, and the verdict to record."""

    history: History
    current: RevisionRecord
    selection: Selection
    is_canary: bool  # the target is judged beside the incumbent in this pass
    verdict: CanaryFinding | None
    verdicts: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def judge_canary(
    obs: Observed, found: MonitorStep, lives: list[cn.Live], *, held: bool, live_id: str | None
) -> CanaryStep:
    """Step 4b: the monitor's word on the canary (the current spec's new revision beside the incumbent). Passed:
    recorded (``CanaryPassed``) and promoted from this pass on. Failed: the revision is recorded failed
    (``CanaryAborted``, the monitor's words) and the incumbent serves; the verdict is written before the canary's
    Deployment is deleted, so a restart finds it."""
    history, current, selection = found.history, found.current, found.selection
    target = selection.serving
    is_canary = found.rolled_back_now is None and cn.judged(target, current, obs.spec.rollout.strategy, lives)
    verdict = cn.verdict_for(obs.monitor.canary if obs.monitor else None, target if is_canary else None)
    if verdict is None or verdict.verdict not in (CanaryVerdict.PASSED, CanaryVerdict.FAILED):
        return CanaryStep(history, current, selection, is_canary, verdict)
    passed = verdict.verdict is CanaryVerdict.PASSED
    state = RevisionState.NEW if passed else RevisionState.FAILED
    reason = cn.CANARY_PASSED if passed else cn.CANARY_ABORTED
    message = verdict.message or ("canary passed" if passed else "canary failed")
    marked = with_verdict(current, state, reason, message, obs.now_iso)
    history = history.replaced(marked)
    annotations = verdict_annotations(state, reason, message, obs.now_iso)
    if passed:
        assert target is not None
        selection = replace(selection, serving=replace(target, revision=marked))
    else:
        selection = select(history, marked, obs.spec.rollback.action, held, live_id)
    return CanaryStep(history, marked, selection, False, verdict, [(current.id, annotations)])


def render_children(
    owner: Owner,
    spec: SpeculativeDeploymentSpec,
    serving: ServingChoice | None,
    current_id: str,
    lay: cn.Layout,
    *,
    lives: Sequence[cn.Live] = (),
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Step 5: the Deployments (the target's, rendered; the others kept, only their replicas) and the Service."""
    deployments: list[dict[str, Any]] = []
    if serving is not None:
        deployments.append(
            render_workload(
                owner.name,
                owner.namespace,
                spec_for(serving, spec),
                serving.id,
                owner=owner.ref(),
                speculation_enabled=serving.speculation,
                replicas=lay.target,
                existing=lay.target_live.body if lay.target_live else None,
            )
        )
    kinds = {live.name: live.body for live in lives}  # issue 16: a kept workload keeps its kind
    deployments += [
        {
            "apiVersion": str(kinds.get(name, {}).get("apiVersion") or "apps/v1"),
            "kind": str(kinds.get(name, {}).get("kind") or "Deployment"),
            "metadata": {"name": name, "namespace": owner.namespace},
            "spec": {"replicas": replicas},
        }
        for name, replicas in sorted(lay.scale.items())
    ]
    service_revision = serving.id if serving else current_id
    return deployments, render_service(owner.name, owner.namespace, spec, service_revision, owner=owner.ref())


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

"""How a plan is carried out, as data: which writes, in which order, and which go at once.

The order is what makes a crash safe, so it is decided here, as a plain function, and both the operator
(``handlers.ObjectReconciler.execute``, which sends each write to the API server) and the unit tests' world
(tests/unit/rollout/world.py, which applies each write to a cluster held as data) carry out the same ``Writes``:

1. ``decisions``, one after another: the revision record, then the verdicts on it. A decision is durable on its
   ControllerRevision before anything acts on it, so a restarted loop finds it instead of taking it again. When
   there is no verdict, nothing acts on a decision and the record goes along with step 2.
2. ``acts``, all at once: the Job, the Service, the Deployments or LeaderWorkerSets (each created, or merge-patched
   only where the live object lacks something; those of revisions no longer wanted deleted: ``rollout.canary``
   only deletes what the ready pods of the others make safe, and an abort's verdict is a decision, written
   first), and the Events. The Deployment, the slow part of getting Ready, starts at the first
   round trip instead of the fourth.
3. ``status``, only after every write of steps 1 and 2 succeeded, and only when it changed. Events are created
   before the status write that records their transitions, each under its transition's name (``rollout.events``):
   a crash in between means the restarted loop plans the same names again and the API server refuses them as
   existing (no duplicate), while a crash before means they are created then (none lost).
4. ``prune``: old ControllerRevisions, last.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from specdeploy.render import labels as lbl
from specdeploy.rollout.drift import is_subset, patch_for
from specdeploy.rollout.events import Event
from specdeploy.rollout.history import controller_revision_name
from specdeploy.rollout.plan import Observed, Plan
from specdeploy.rollout.progress import template_revision


@dataclass(frozen=True)
class Create:
    """Create the object; one that exists already (409) counts as created before, not as a failure."""

    manifest: dict[str, Any]


class Ref(NamedTuple):
    """Which object a patch or a deletion is about."""

    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Patch:
    """A JSON merge patch; ``verdict`` names the revision when it records a verdict on its ControllerRevision."""

    ref: Ref
    patch: dict[str, Any]
    verdict: tuple[str, dict[str, str]] | None = None


@dataclass(frozen=True)
class Delete:
    """Delete the object; one that is gone already (404) is no failure."""

    ref: Ref


@dataclass(frozen=True)
class Say:
    """Create the Event under its transition's name (``rollout.events``); 409 means it was said before."""

    event: Event


Write = Create | Patch | Delete | Say


@dataclass(frozen=True)
class Writes:
    decisions: tuple[Write, ...] = ()
    acts: tuple[Write, ...] = ()
    status: dict[str, Any] | None = None
    prune: tuple[Delete, ...] = ()


def keep_running_template(live: Mapping[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """What to hold a live Deployment to: an upgrade of the operator never restarts serving pods.

    A Deployment whose pods run the desired revision, but whose template another version of the operator rendered
    (its template hash differs or is missing), keeps that template until the revision changes: the rest (replicas,
    labels, the progress deadline) is still held to what is wanted. A template this version rendered and someone
    edited by hand carries this version's hash, so it is put back as before.
    """
    if desired.get("kind") != "Deployment" or template_revision(live) != template_revision(desired):
        return desired
    annotations = dict(desired["metadata"].get("annotations") or {})
    want = annotations.pop(lbl.ANNOTATION_TEMPLATE_HASH, None)
    have = ((live.get("metadata") or {}).get("annotations") or {}).get(lbl.ANNOTATION_TEMPLATE_HASH)
    if want is None or have == want:
        return desired
    spec = {key: value for key, value in desired["spec"].items() if key != "template"}
    return {**desired, "metadata": {**desired["metadata"], "annotations": annotations}, "spec": spec}


def child_write(live: Mapping[str, Any] | None, desired: dict[str, Any] | None) -> Write | None:
    """Create the child, or merge-patch it when the live object lacks something we want; None when it holds all."""
    if desired is None:
        return None
    if live is None:
        return Create(desired)
    desired = keep_running_template(live, desired)
    if is_subset({k: v for k, v in desired.items() if k != "status"}, live):
        return None
    meta = desired["metadata"]
    return Patch(Ref(desired["kind"], meta["namespace"], meta["name"]), patch_for(desired))


def writes_for(p: Plan, observed: Observed) -> Writes:
    """The writes that carry out ``p``, planned on ``observed``."""
    ns, name = observed.owner.namespace, observed.owner.name
    record: tuple[Write, ...] = (Create(p.record_revision),) if p.record_revision is not None else ()
    marks = tuple(
        Patch(
            Ref("ControllerRevision", ns, controller_revision_name(name, rev_id)),
            {"metadata": {"annotations": verdict}},
            verdict=(rev_id, verdict),
        )
        for rev_id, verdict in p.verdicts
    )
    job: list[Write] = []  # never both: a Job is deleted only once it finished, created only while there is none
    if p.delete_job:
        job.append(Delete(Ref("Job", ns, p.delete_job)))
    if p.create_job is not None:
        job.append(Create(p.create_job))
    live = {str(d["metadata"]["name"]): d for d in observed.deployments}
    children = (
        child_write(observed.service, p.service),
        *(child_write(live.get(d["metadata"]["name"]), d) for d in p.deployments),
    )
    # Issue 16: a revision's workload may be a LeaderWorkerSet (render.workload); names are unique across kinds.
    gone = tuple(
        Delete(Ref(str(live[dep].get("kind") or "Deployment"), ns, dep)) for dep in p.delete_deployments if dep in live
    )
    return Writes(
        decisions=(*record, *marks) if marks else (),
        acts=(
            *(() if marks else record),
            *job,
            *(w for w in children if w is not None),
            *gone,
            *map(Say, p.events),
        ),
        status=None if is_subset(p.status, dict(observed.status)) else p.status,
        prune=tuple(Delete(Ref("ControllerRevision", ns, cr_name)) for cr_name in p.prune),
    )

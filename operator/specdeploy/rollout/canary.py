"""How the Deployments of the revisions move: a canary beside the serving one, promoted step by step or aborted.

Issue 13. Each revision runs as its own Deployment (``render.names.revision_deployment_name``). Given what serves
(the plan's target, chosen as before by validation, history and the monitor), the Deployments observed, and the
monitor's word on the canary, this module decides, as plain functions of data:

- which Deployment runs the target and with how many pods, which other Deployments keep how many, which go;
- what the monitor follows: the serving revision (``serving``) and the canary beside it (``canary``);
- the canary's verdicts (``CanaryPassed`` promotes, ``CanaryAborted`` fails the revision), recorded on its
  ControllerRevision before anything acts on them, so a restarted operator finds them;
- ``status.canary`` and the Events of its transitions.

Strategies:

- ``Replace``: the target at ``spec.replicas``, every other revision's Deployment deleted at once (an outage with
  one replica).
- ``Canary``: with nothing else serving (no other Deployment has a ready pod), the target rolls out directly. A new
  revision (the current spec's, validated, never judged) starts as a canary of ``canary.replicas`` pods beside the
  incumbent, which stays at ``spec.replicas``. Every other move (promotion after a passed canary, the fallback of a
  live rollback, going back to the incumbent after an abort) is ``step``: new pods first, never fewer than
  ``spec.replicas`` ready pods in total, never more than ``canary.replicas`` extra pods at once.

The state lives in the cluster: which Deployments exist and their replicas, the verdict annotations, and
``status.canary`` (only for its words; no decision depends on it alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from specdeploy import conditions as cond
from specdeploy.api.rollout import Strategy
from specdeploy.monitor.finding import CanaryFinding
from specdeploy.render.control import is_control
from specdeploy.rollout import progress, serve
from specdeploy.rollout.events import Event, event_name
from specdeploy.rollout.history import NO_SPECULATION_SUFFIX, RevisionRecord, RevisionState, ServingChoice

CANARY_PASSED = "CanaryPassed"  # reason of the verdict that promotes a canary (state stays new until stable)
CANARY_ABORTED = serve.CANARY_ABORTED  # reason of the verdict that fails a canary revision


class Phase(StrEnum):
    STARTING = "Starting"
    ANALYZING = "Analyzing"
    PROMOTING = "Promoting"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"


IN_PROGRESS = (Phase.STARTING, Phase.ANALYZING, Phase.PROMOTING)


@dataclass(frozen=True)
class Live:
    """One observed Deployment of the object, as this module reads it."""

    name: str
    serving_id: str
    replicas: int  # spec.replicas
    existing: int  # pods that may exist: the larger of spec.replicas and status.replicas
    ready: int
    body: Mapping[str, Any]

    @property
    def revision_id(self) -> str:
        return self.serving_id.removesuffix(NO_SPECULATION_SUFFIX)


def lives(deployments: Sequence[Mapping[str, Any]]) -> list[Live]:
    """The observed Deployments that run a revision (their template's revision label), sorted by name."""
    out = []
    for dep in deployments:
        serving_id = progress.template_revision(dep)
        if not serving_id or is_control((dep.get("metadata") or {}).get("labels")):  # issue 14: not a revision's
            continue
        replicas = int((dep.get("spec") or {}).get("replicas") or 0)
        status = dep.get("status") or {}
        out.append(
            Live(
                name=str(dep["metadata"]["name"]),
                serving_id=serving_id,
                replicas=replicas,
                existing=max(replicas, int(status.get("replicas") or 0)),
                ready=progress.ready_replicas(dep),
                body=dep,
            )
        )
    return sorted(out, key=lambda live: live.name)


def _rank(live: Live) -> tuple[int, int, str]:
    return (live.ready, live.replicas, live.name)


def incumbent(found: Sequence[Live], exclude_revision: str | None) -> Live | None:
    """What serves now: the Deployment with the most ready pods (then the most wanted), preferring one that does
    not run ``exclude_revision`` (the current spec's revision, which may be the canary)."""
    others = [live for live in found if live.revision_id != exclude_revision]
    pool = others or list(found)
    return max(pool, key=_rank) if pool else None


def step(replicas: int, surge: int, old_existing: int, new_ready: int, new_now: int = 0) -> tuple[int, int]:
    """One step of moving ``replicas`` pods from old Deployments to a new one: (old pods to keep, new pods).

    The old keep enough pods that, with the new ones that are ready, ``replicas`` are ready; the new get what
    ``surge`` extra pods allow beside the old pods that still exist (never fewer than they have: what they have
    was allowed when it was asked for, and old pods only go), at most ``replicas``.
    """
    old = max(0, replicas - new_ready)
    new = min(replicas, max(replicas + surge - old_existing, new_now, 0))
    return old, new


@dataclass
class Layout:
    """Where the pods go, and what the monitor follows."""

    target: int = 0  # the target's pods
    target_live: Live | None = None  # the target's Deployment as observed, if it exists
    scale: dict[str, int] = field(default_factory=dict)  # other Deployments kept: name -> replicas
    delete: list[str] = field(default_factory=list)  # Deployments to delete
    serving: ServingChoice | None = None  # the monitor's serving revision
    canary: ServingChoice | None = None  # the canary beside it
    incumbent: Live | None = None  # in a canary: the Deployment the canary is compared with


def judged(target: ServingChoice | None, current: RevisionRecord, strategy: Strategy, found: Sequence[Live]) -> bool:
    """Is ``target`` a canary: the current spec's new revision, with speculation, never judged, while another
    revision serves (has ready pods), under strategy Canary, and its own pods are not already the larger part
    (a spec changed back to what still serves beside a newer canary: that one serves on, the newer one goes)."""
    if (
        target is None
        or strategy is not Strategy.CANARY
        or not target.speculation
        or target.revision.id != current.id
        or current.state is not RevisionState.NEW
        or current.reason == CANARY_PASSED
    ):
        return False
    own = [live for live in found if live.serving_id == target.id]
    others = [live for live in found if live.serving_id != target.id]
    if sum(o.ready for o in others) == 0:
        return False
    strongest = max(others, key=_rank)
    return not own or max((o.ready, o.replicas) for o in own) <= (strongest.ready, strongest.replicas)


def layout(
    target: ServingChoice | None,
    found: Sequence[Live],
    *,
    replicas: int,
    surge: int,
    strategy: Strategy,
    canary: bool,
    keep_live: Any,
) -> Layout:
    """Where the pods go for ``target`` (``canary``: it is judged beside the incumbent). ``keep_live`` maps a serving
    id to its ServingChoice (``serve.keep_live``), for the incumbent the monitor follows during a canary."""
    if target is None:
        return Layout(serving=None)
    mine = [live for live in found if live.serving_id == target.id]
    own = max(mine, key=_rank) if mine else None
    others = [live for live in found if live is not own]
    out = Layout(target_live=own, serving=target)
    out.delete = [live.name for live in mine if live is not own]  # a duplicate (never made by us): it goes
    if strategy is Strategy.REPLACE or sum(o.ready for o in others) == 0:
        out.target = replicas
        out.delete += [o.name for o in others]
        return out
    if canary:
        inc = max(others, key=_rank)
        chosen = keep_live(inc.serving_id)
        if chosen is None:  # the incumbent's revision is not recorded: nothing to compare with, replace stepwise
            return _stepwise(out, own, others, replicas, surge)
        out.target, out.serving, out.canary, out.incumbent = surge, chosen, target, inc
        out.scale[inc.name] = replicas
        rest = [o for o in others if o is not inc]
        if inc.ready >= replicas:  # an older canary dropped for this one: it goes once the incumbent is whole
            out.delete += [o.name for o in rest]
        else:
            out.scale.update({o.name: o.replicas for o in rest})
        return out
    return _stepwise(out, own, others, replicas, surge)


def _stepwise(out: Layout, own: Live | None, others: Sequence[Live], replicas: int, surge: int) -> Layout:
    new_ready = own.ready if own else 0
    keep, out.target = step(replicas, surge, sum(o.existing for o in others), new_ready, own.replicas if own else 0)
    for o in sorted(others, key=_rank, reverse=True):
        share = min(o.replicas, keep)
        keep -= share
        if share > 0:
            out.scale[o.name] = share
        else:
            out.delete.append(o.name)
    return out


# ----------------------------------------------------------------------------------------- the monitor's verdict
def verdict_for(finding: CanaryFinding | None, canary: ServingChoice | None) -> CanaryFinding | None:
    """The monitor's word on this canary; one about another revision is none."""
    if finding is None or canary is None or finding.revision != canary.id:
        return None
    return finding


# ----------------------------------------------------------------------------------------- status.canary
@dataclass(frozen=True)
class CanaryReport:
    """What status.canary says, built from the layout, the verdict and the history."""

    revision: str
    phase: Phase
    replicas: int
    ready: int
    finding: CanaryFinding | None
    message: str


def _numbers(finding: CanaryFinding | None) -> dict[str, Any]:
    if finding is None:
        return {}
    out: dict[str, Any] = {"windowsPassed": finding.windows_passed}
    pairs = (("canary", finding.acceptance_canary), ("serving", finding.acceptance_serving))
    acceptance = {k: v for k, v in pairs if v is not None}
    if acceptance:
        out["acceptance"] = {k: round(float(v), 4) for k, v in acceptance.items()}
    tpot = {k: v for k, v in (("canary", finding.tpot_canary), ("serving", finding.tpot_serving)) if v is not None}
    if tpot:
        out["timePerOutputTokenSeconds"] = {k: round(float(v), 6) for k, v in tpot.items()}
    return out


def status_canary(report: CanaryReport, old: Mapping[str, Any] | None) -> dict[str, Any]:
    """status.canary as written. The monitor's numbers stay from the last finding when this pass has none (a
    restarted operator, or the phases after the verdict)."""
    out: dict[str, Any] = {
        "revision": report.revision,
        "phase": report.phase.value,
        "replicas": report.replicas,
        "readyReplicas": report.ready,
    }
    numbers = _numbers(report.finding)
    if not numbers and old and old.get("revision") == report.revision:
        numbers = {k: old[k] for k in ("windowsPassed", "acceptance", "timePerOutputTokenSeconds") if k in old}
    out.update(numbers)
    out["message"] = report.message[: cond.MAX_MESSAGE]
    return out


def canary_event(name: str, uid: str, phase: Phase, revision: str, message: str, *, at: str = "") -> Event | None:
    """The Event of a canary transition, named after the revision (and, for an abort, its verdict time)."""
    reason = {Phase.STARTING: "CanaryStarted", Phase.PROMOTED: "CanaryPromoted", Phase.ABORTED: CANARY_ABORTED}.get(
        phase
    )
    if reason is None:
        return None
    kind = "Warning" if phase is Phase.ABORTED else "Normal"
    return Event(kind, reason, message[: cond.MAX_MESSAGE], event_name(name, uid, reason, ("canary", revision, at)))


@dataclass(frozen=True)
class ReportInput:
    """What ``report`` reads: the pass's decisions about the canary."""

    subject: Any  # announce.Subject (name, uid)
    current: RevisionRecord
    target: ServingChoice | None
    lay: Layout
    verdict: CanaryFinding | None
    old: Mapping[str, Any] | None  # the observed status.canary
    replicas: int
    surge: int


def report(r: ReportInput) -> tuple[dict[str, Any] | None, list[Event]]:
    """status.canary for this pass (None: leave it as it is) and the Event of its transition, if any."""
    old = dict(r.old or {})
    phase, revision, message, replicas, ready = _phase(r)
    if phase is None:
        return None, []
    rep = CanaryReport(revision, phase, replicas, ready, r.verdict, message)
    status = status_canary(rep, old)
    events: list[Event] = []
    changed = old.get("revision") != revision or old.get("phase") != phase.value
    started_before = old.get("revision") == revision and old.get("phase") in [p.value for p in IN_PROGRESS]
    if changed and not (phase in (Phase.STARTING, Phase.ANALYZING) and started_before):
        at = r.current.at if phase is Phase.ABORTED else ""
        said = phase if phase is not Phase.ANALYZING else Phase.STARTING
        ev = canary_event(r.subject.name, r.subject.uid, said, revision, message, at=at)
        if ev is not None:
            events.append(ev)
    return status, events


def _phase(r: ReportInput) -> tuple[Phase | None, str, str, int, int]:
    lay, current, old = r.lay, r.current, r.old or {}
    if lay.canary is not None:  # judged beside the incumbent
        own = lay.target_live
        ready = own.ready if own else 0
        inc = lay.incumbent.serving_id if lay.incumbent else "the serving revision"
        if ready < r.surge:
            words = f"{ready}/{r.surge} canary pods of revision {lay.canary.id} ready, beside revision {inc}"
            return Phase.STARTING, lay.canary.id, words, r.surge, ready
        words = (r.verdict.message if r.verdict and r.verdict.message else "") or (
            f"{ready}/{r.surge} canary pods ready; comparing revision {lay.canary.id} with {inc}"
        )
        return Phase.ANALYZING, lay.canary.id, words, r.surge, ready
    if current.state is RevisionState.FAILED and current.reason == CANARY_ABORTED:
        return Phase.ABORTED, current.id, f"aborted: {current.message}", 0, 0
    target = r.target
    if target is not None and target.speculation and target.revision.reason == CANARY_PASSED:
        if target.revision.state is not RevisionState.NEW:
            return None, "", "", 0, 0
        own = lay.target_live
        ready = own.ready if own else 0
        if not lay.scale and ready >= r.replicas:
            words = f"promoted: {ready}/{r.replicas} pods of revision {target.id} ready; {target.revision.message}"
            return Phase.PROMOTED, target.id, words, ready, ready
        words = f"promoting revision {target.id}: {ready}/{r.replicas} of its pods ready, the old ones go as they do"
        return Phase.PROMOTING, target.id, words, lay.target, ready
    if old.get("phase") in [p.value for p in IN_PROGRESS] and target is not None:
        was = str(old.get("revision") or "")
        if was == (target.id if target else None):  # nothing else served any more: rolled out directly
            return Phase.PROMOTED, was, "promoted directly: no other revision had ready pods", r.replicas, 0
        if was and was != current.id:  # the spec moved on while it ran: dropped, never judged
            return Phase.ABORTED, was, f"dropped: the spec changed to revision {current.id}", 0, 0
    return None, "", "", 0, 0

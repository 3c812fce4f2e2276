"""Why a rollout is stuck after the API server admitted everything: the cause, in the words of whoever saw it.

Admission is not the end of the story. A Deployment can be accepted and still get no pods (a ResourceQuota or Pod
Security refusal: the ReplicaSet's ``FailedCreate``), pods can be accepted and never scheduled (target TP 16 on
nodes with 8 GPUs: ``PodScheduled=False``, reason ``Unschedulable``), scheduled and never start (the kubelet's
``CrashLoopBackOff``, ``ImagePullBackOff``...), or take longer than the Deployment's ``progressDeadlineSeconds``
(``Progressing=False``, reason ``ProgressDeadlineExceeded``). Without this module the object only said
"RollingOut" forever.

Three plain functions of data, used by the handler:

- ``pod_problem`` and ``deployment_problems`` pick, from a pod's or a Deployment's status, the little the indexes
  keep of them (a reason and a bounded message; nothing at all for a healthy child);
- ``diagnose`` names the one cause that explains a stuck rollout best;
- ``report`` refines a plan that says "RollingOut" with that cause: ``Ready=False`` and ``Progressing=False`` with
  the cause as reason and the scheduler's, kubelet's or controller's own words as message, and one Warning Event
  per cause, named after the transition like every other Event (``rollout.events``): said once, even across a
  restart, and not again while the cause stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy import conditions as cond
from specdeploy.render.leaderworkerset import WORKER_COMPONENT
from specdeploy.rollout import progress
from specdeploy.rollout.events import Event, condition_facts, event_name
from specdeploy.rollout.plan import Observed, Plan

# The words kept from a child's status: enough for the scheduler's "0/2 nodes are available: ..." summary or the
# kubelet's back-off message, bounded whatever the child says (a container's message is free text).
MAX_WORDS = 512
UNSCHEDULABLE = "Unschedulable"
FAILED_CREATE = "FailedCreate"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
# Waiting reasons of a container that mean it will not start without a change (the kubelet's own reasons).
# ContainerCreating and PodInitializing are normal steps, not problems.
WAITING_PROBLEMS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreCreateHookError",
        "PostStartHookError",
    }
)
# Pods whose problem stalls a rollout: a Deployment's pods and a LeaderWorkerSet's leaders ("server"), and its
# workers (issue 16: a group with an unschedulable or crash-looping worker never gets ready either).
SERVING_COMPONENTS = frozenset({"server", WORKER_COMPONENT})
# The plan's reason while a rollout is under way: only that state is refined (a serving or invalid object is not).
ROLLING_OUT = "RollingOut"


@dataclass(frozen=True)
class Stall:
    """The cause of a stuck rollout: a CamelCase reason and whoever saw it, in their words."""

    reason: str
    message: str


def words(text: object, limit: int = MAX_WORDS) -> str:
    """``text`` on one line, control characters dropped, at most ``limit`` characters (ending in ``...`` if cut)."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text or "")).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _reason(value: object) -> str:
    """A reason as the condition schema takes it (CamelCase letters), or empty."""
    text = str(value or "")
    return text if text.isascii() and text.isalnum() and len(text) <= 64 and text[:1].isalpha() else ""


def pod_problem(status: Mapping[str, Any]) -> dict[str, str] | None:
    """What keeps this pod from running, as ``{"reason", "message"}``, or None when nothing does.

    ``PodScheduled=False`` with reason ``Unschedulable`` carries the scheduler's message; a container (init
    containers first) waiting for one of ``WAITING_PROBLEMS`` carries the kubelet's, followed, for a crash loop,
    by how the last run ended.
    """
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == UNSCHEDULABLE:
            return {"reason": UNSCHEDULABLE, "message": words(c.get("message") or "the scheduler found no node")}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = _reason(waiting.get("reason"))
        if reason not in WAITING_PROBLEMS:
            continue
        said = words(waiting.get("message"))
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if last:
            how = f"last run exited {last.get('exitCode')} ({words(last.get('reason'), 64) or 'no reason'})"
            if last.get("message"):
                how += f": {words(last.get('message'))}"
            said = f"{said}; {how}" if said else how
        return {"reason": reason, "message": words(f"container {words(cs.get('name'), 63)}: {said or reason}")}
    return None


def deployment_problems(status: Mapping[str, Any]) -> list[dict[str, str]]:
    """The conditions of a Deployment's status that say its rollout is stuck: ``ReplicaFailure=True`` (copied by
    the Deployment controller from its ReplicaSet, e.g. ``FailedCreate`` on a quota refusal) and
    ``Progressing=False`` (``ProgressDeadlineExceeded``), each reduced to type, status, reason and bounded message.
    A healthy Deployment keeps none (the index keeps no condition of it)."""
    out = []
    for c in status.get("conditions") or []:
        kind = (c.get("type"), c.get("status"))
        if kind in (("ReplicaFailure", "True"), ("Progressing", "False")):
            out.append(
                {
                    "type": str(c["type"]),
                    "status": str(c["status"]),
                    "reason": _reason(c.get("reason")),
                    "message": words(c.get("message")),
                }
            )
    return out


def diagnose(
    deployment: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], revision: str | None
) -> Stall | None:
    """The cause that best explains why ``deployment`` (which should run ``revision``) is not rolled out.

    Most specific first: no pods can be created at all (``ReplicaFailure``); then a pod of the revision that cannot
    be scheduled or started (the first by name, so the choice is stable); then the Deployment's own verdict that
    the deadline passed, which names no cause of its own. ``pods`` are the index's entries (``pod_problem`` kept
    under "problem"); a LeaderWorkerSet's workers count like its leaders; validator pods and other revisions' pods
    are not looked at.
    """
    if not deployment:
        return None
    conditions = (deployment.get("status") or {}).get("conditions") or []
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    if failure is not None:
        return Stall(failure.get("reason") or FAILED_CREATE, words(failure.get("message") or "pods cannot be created"))
    ours = sorted(
        (
            p
            for p in pods
            if p.get("component") in SERVING_COMPONENTS
            and p.get("problem")
            and (not revision or p.get("revision") == revision)
        ),
        key=lambda p: str(p.get("name")),
    )
    if ours:
        problem = ours[0]["problem"]
        return Stall(str(problem["reason"]), words(f"pod {ours[0].get('name')}: {problem.get('message', '')}"))
    stalled = next((c for c in conditions if c.get("type") == "Progressing" and c.get("status") == "False"), None)
    if stalled is not None:
        return Stall(stalled.get("reason") or PROGRESS_DEADLINE, words(stalled.get("message") or "no progress"))
    return None


def refine(
    status: dict[str, Any],
    old_conditions: Sequence[Mapping[str, Any]],
    stall: Stall,
    *,
    name: str,
    uid: str,
    generation: int,
    now_iso: str,
) -> tuple[dict[str, Any], Event | None]:
    """``status`` (a plan's, whose Ready says RollingOut) with the stall's cause on Ready and Progressing, and the
    Warning Event to say when Ready did not already give that reason.

    The conditions are merged into the *observed* ones, so that a cause that stays keeps its lastTransitionTime and
    an unchanged world writes nothing. The Event is named after the observed Ready condition and the cause: a
    restart between the Event and the status write plans the same name (409, no duplicate), and a cause that
    comes back after a real change is said again.
    """
    conditions = list(status.get("conditions") or [])
    ready = cond.get(conditions, cond.READY)
    if ready is None or ready.get("status") != cond.FALSE or ready.get("reason") != ROLLING_OUT:
        return status, None
    wanted = [
        cond.Condition(cond.READY, cond.FALSE, stall.reason, stall.message),
        cond.Condition(cond.PROGRESSING, cond.FALSE, stall.reason, stall.message),
    ]
    merged = {c["type"]: c for c in cond.set_conditions(old_conditions, wanted, now_iso, generation)}
    types = {w.type for w in wanted}
    conditions = [merged[c["type"]] if c.get("type") in types else c for c in conditions]
    out = {**status, "conditions": conditions, "phase": cond.phase(conditions)}
    before = cond.get(old_conditions, cond.READY)
    if before is not None and before.get("reason") == stall.reason and before.get("status") == cond.FALSE:
        return out, None
    facts = (*condition_facts(old_conditions, cond.READY), stall.reason)
    return out, Event("Warning", stall.reason, stall.message, event_name(name, uid, stall.reason, facts))


def report(p: Plan, obs: Observed, pods: Sequence[Mapping[str, Any]]) -> Plan:
    """The plan, with the cause of a stuck rollout on its status and its Event added (``p`` is changed in place
    and returned); unchanged when nothing is stuck or the plan does not say RollingOut."""
    serving = p.serving.id if p.serving is not None else None
    canary_stall(p, obs, pods)
    stall = diagnose(progress.for_revision(obs.deployments, serving), pods, serving)
    if stall is None:
        return p
    owner = obs.owner
    p.status, event = refine(
        p.status,
        obs.status.get("conditions") or [],
        stall,
        name=owner.name,
        uid=owner.uid,
        generation=owner.generation,
        now_iso=obs.now_iso,
    )
    if event is not None and all(e.name != event.name for e in p.events):
        p.events.append(event)
    return p


def canary_stall(p: Plan, obs: Observed, pods: Sequence[Mapping[str, Any]]) -> None:
    """A canary that cannot start says why in status.canary.message (the scheduler's words), while the serving
    revision keeps serving and Ready stays as it is (issue 13)."""
    if p.canary is None or (p.status.get("canary") or {}).get("phase") != "Starting":
        return
    stall = diagnose(progress.for_revision(obs.deployments, p.canary.id), pods, p.canary.id)
    if stall is not None:
        canary = dict(p.status["canary"])
        canary["message"] = f"canary cannot start ({stall.reason}): {stall.message}"[:1024]
        p.status["canary"] = canary

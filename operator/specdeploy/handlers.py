"""kopf wiring: watches, indexes and one reconcile daemon per SpeculativeDeployment. No decisions live here.

Shape of the operator (level-based, like the Deployment controller):

- kopf indexes keep in-memory copies of our children (Deployments, Services, Jobs, Pods, ControllerRevisions
  labelled ``app.kubernetes.io/managed-by=specdeploy``), fed by watch streams. Reading the world costs no API
  requests.
- Any change to an object or one of its children wakes that object's daemon. The daemon gathers what is
  observed, calls the pure ``rollout.plan.plan()``, and carries out what it returns: creates and merge patches
  only where the live object differs, status only when it changed, Events only on transitions (each created
  under a name derived from its transition, before the status write that records it: see ``rollout.events``).
- Every ``scrapeIntervalSeconds`` the daemon scrapes the serving pods' ``/metrics`` (or queries Prometheus),
  feeds the monitor, and reconciles again with its verdict.

kopf keeps no progress annotations for daemons and the operator has no change-detecting handlers, so an
unchanged world causes zero API writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import random
import socket
import time
import weakref
from collections.abc import Coroutine, Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from specdeploy import kube
from specdeploy.api import GROUP, PLURAL, VERSION, SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id, serving_snapshot
from specdeploy.monitor import exporter
from specdeploy.policy import AdminPolicy, permits_metrics_source
from specdeploy.render import job_name
from specdeploy.render import labels as lbl
from specdeploy.rollout import canary, invalid, overlay, ownership, progress, retry, stalls
from specdeploy.rollout import history as hist
from specdeploy.rollout.drift import is_subset, patch_for
from specdeploy.rollout.events import COMPONENT, Event, event_manifest, involved_object
from specdeploy.rollout.plan import Observed, Owner, Plan, plan
from specdeploy.rollout.validation import job_outcome
from specdeploy.rollout.writes import Create, Delete, Patch, Say, Write, child_write, writes_for
from specdeploy.tracker import AcceptanceTracker

log = logging.getLogger("specdeploy")

MANAGED = {lbl.MANAGED_BY: lbl.MANAGER}
FINALIZER = "specdeploy.io/finalizer"
# Reconcile at least this often even without any change (a safety net, costs no API requests).
RESYNC_SECONDS = 60.0
# An Event whose create fails for a passing reason (no answer, 429, 5xx) is tried in up to this many loops (backing
# off between them: rollout.retry) before the status write goes ahead without it, so a blip does not eat it; any
# other refusal (403, 422) lets the status go ahead at once.
EVENT_TRIES = 3
# How long a ControllerRevision this process created stands in for the index's copy until the watch shows it.
RECORDED_SECONDS = 30.0
# Which operator process said it (reportingInstance): the pod name the chart passes for kopf's peering identity.
INSTANCE = os.environ.get("POD_ID") or socket.gethostname()

# At most this many objects observe, plan and write at once (their scrapes are not limited). When hundreds of
# objects arrive together, the rest wait their turn instead of all holding their rendered children, plans and
# queued requests at the same time: the peak, which Python's allocator keeps as RSS long after (design budget:
# under 200 MB at 1,000 objects), stays that of this many loops, and the API server, the bottleneck then, is
# kept just as busy (each loop sends up to four requests at once to the client's threads).
RECONCILE_SLOTS = 64

_wakeups: dict[tuple[str, str], asyncio.Event] = {}
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _reconcile_slots() -> asyncio.Semaphore:
    """The running event loop's semaphore of ``RECONCILE_SLOTS`` (one per loop: tests run several)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(RECONCILE_SLOTS)
    return slots


# Settings ``specdeploy run`` gives before kopf starts; a missing one keeps kopf's own default.
_runtime: dict[str, int] = {}


def configure_runtime(*, peering_lifetime: int) -> None:
    _runtime["peering_lifetime"] = peering_lifetime


# The admin's policy (specdeploy.policy), set by ``specdeploy run`` before kopf starts.
_admin = {"policy": AdminPolicy()}


def configure_policy(policy: AdminPolicy) -> None:
    _admin["policy"] = policy


def _wake(namespace: str | None, name: str | None) -> None:
    if namespace and name:
        ev = _wakeups.get((namespace, name))
        if ev is not None:
            ev.set()


def _wake_indexed(namespace: str | None, name: str | None) -> None:
    """Wake the object's daemon from an index handler, once kopf has stored what the handler returned.

    kopf stores an index handler's result right after the coroutine returns, in the same task and without
    yielding to the event loop; the daemon can only run after that task yields, and ``call_soon`` adds one more
    loop turn. Waking from the index handlers (instead of a separate ``on.event`` handler per child event) saves
    kopf's handler machinery and an INFO log line per watch event, most of the operator's CPU at 500 objects.
    """
    if namespace and name and (namespace, name) in _wakeups:
        asyncio.get_running_loop().call_soon(_wake, namespace, name)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class SpecDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base, reduced to the spec.

    kopf builds an "essence" of the object on every watch event of a SpeculativeDeployment (a deep copy of the
    whole body, status included) to detect changes for change handlers. The operator has none (the daemon is
    level-based), so the essence only tells kopf whether the spec changed; building it from the spec alone saves
    the copy of the status on every event, our own status writes included. Nothing is stored.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return {"spec": body.get("spec") or {}}


@kopf.on.startup()
def startup(*, settings: kopf.OperatorSettings, **_: Any) -> None:
    """Settings that keep a long-running operator healthy (see the style anchors: silent watch freezes)."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="specdeploy.io")
    settings.persistence.diffbase_storage = SpecDiffBase(prefix="specdeploy.io", key="last-handled-configuration")
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 300
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.scanning.disabled = True
    settings.posting.level = logging.INFO
    # kopf's own log Events say they come from the same component and process as the operator's (rollout.events).
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = INSTANCE[:128]
    settings.background.cancellation_polling = 5
    # How long a replica that stopped sending keep-alives (crashed, partitioned) still counts as alive: the pause
    # of the other replicas after a crash. kopf refreshes the record 5-10 s before it runs out.
    if "peering_lifetime" in _runtime:
        settings.peering.lifetime = _runtime["peering_lifetime"]
    kube.load()


# ----------------------------------------------------------------------------------------- indexes
def _owner_key(namespace: str | None, labels: Mapping[str, str]) -> tuple[str, str] | None:
    name = labels.get(lbl.SD_NAME)
    return (namespace, name) if namespace and name else None


# Metadata the API server keeps for its own bookkeeping; nothing the plan compares or reads.
_META_DROPPED = ("managedFields", "resourceVersion", "creationTimestamp", "selfLink")
# Status fields the plan and the tracker read (rollout progress); the rest (conditions, load balancer) is dropped.
_STATUS_KEPT = ("observedGeneration", "replicas", "readyReplicas", "updatedReplicas", "availableReplicas")


def _pack(body: Mapping[str, Any], conditions: list[dict[str, str]] | None = None) -> bytes:
    """A child as the index keeps it: the fields the plan reads, as compact JSON.

    Why bytes: a parsed Deployment is about 15 KiB of Python objects against about 3 KiB of JSON, and the indexes
    hold one Deployment, one Service and a few ControllerRevisions per object (design budget: RSS under 200 MB at
    1,000 objects). The daemon decodes the few it needs per loop (tens of microseconds each). ``conditions``: the
    few status conditions worth keeping (a stuck Deployment's, see ``rollout.stalls``), in place of the status's.
    """
    obj = {k: v for k, v in body.items() if k != "status"}
    obj["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _META_DROPPED}
    status = body.get("status") or {}
    kept = {k: status[k] for k in _STATUS_KEPT if k in status}
    if conditions:
        kept["conditions"] = conditions
    if kept:
        obj["status"] = kept
    return json.dumps(obj, separators=(",", ":")).encode()


def _unpack(packed: Any) -> dict[str, Any]:
    return json.loads(packed) if isinstance(packed, bytes) else dict(packed)


def _indexed(key: tuple[str, str] | None, value: Any) -> Any:
    """The index entry for ``key``, waking its daemon (see ``_wake_indexed``)."""
    if key is None:
        return None
    _wake_indexed(*key)
    return {key: value}


# Index handlers are coroutines: kopf runs plain functions in a thread pool, one hop per watch event.
@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def deployments_idx(*, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return _indexed(key, _pack(body, stalls.deployment_problems(body.get("status") or {})))


@kopf.index("", "v1", "services", labels=MANAGED)
async def services_idx(*, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return _indexed(key, _pack(body))


@kopf.index("policy", "v1", "poddisruptionbudgets", labels=MANAGED)
async def pdbs_idx(*, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return _indexed(key, _pack(body))


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
async def jobs_idx(
    *, namespace: str | None, name: str, uid: str | None, labels: Mapping[str, str], status: kopf.Status, **_: Any
) -> Any:
    key = _owner_key(namespace, labels)
    if not key:
        return None
    return _indexed(
        key,
        {
            "name": name,
            "uid": uid,
            "revision": labels.get(lbl.SD_REVISION),
            "conditions": list(status.get("conditions") or []),
        },
    )


@kopf.index("", "v1", "pods", labels=MANAGED)
async def pods_idx(
    *, namespace: str | None, name: str, labels: Mapping[str, str], meta: kopf.Meta, status: kopf.Status, **_: Any
) -> Any:
    key = _owner_key(namespace, labels)
    if not key:
        return None
    terminated = None
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            terminated = {
                "exitCode": term.get("exitCode"),
                "message": term.get("message") or "",
                "reason": term.get("reason"),
            }
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return _indexed(
        key,
        {
            "name": name,
            "ip": status.get("podIP"),
            "ready": ready,
            "phase": status.get("phase"),
            "revision": labels.get(lbl.SD_REVISION),
            "component": labels.get(lbl.COMPONENT),
            # The Job that controls the pod, by uid: a label can be set by anyone who creates a pod.
            "job_uid": ownership.controller_job_uid(meta.get("ownerReferences")),
            "terminated": terminated,
            "problem": stalls.pod_problem(status),
        },
    )


@kopf.index("apps", "v1", "controllerrevisions", labels=MANAGED)
async def revisions_idx(*, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    if ownership.foreign_controller((body.get("metadata") or {}).get("ownerReferences")):
        return None  # a LeaderWorkerSet's StatefulSet's revision, with our labels copied (rollout.ownership)
    key = _owner_key(namespace, labels)
    return _indexed(key, _pack(hist.index_entry(body)))  # no spec snapshot: see ObjectReconciler.read_snapshots


# ----------------------------------------------------------------------------------------- wake-ups
# A child's change wakes its object's daemon from the child's index handler (``_indexed``); kopf calls no index
# handler for a deletion, so deletions get this handler, filtered so that kopf invokes it for nothing else.
def _deleted(*, type: str | None = None, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED, when=_deleted)
@kopf.on.event("", "v1", "services", labels=MANAGED, when=_deleted)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED, when=_deleted)
@kopf.on.event("batch", "v1", "jobs", labels=MANAGED, when=_deleted)
@kopf.on.event("", "v1", "pods", labels=MANAGED, when=_deleted)
@kopf.on.event("apps", "v1", "controllerrevisions", labels=MANAGED, when=_deleted)
async def child_deleted(*, namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
    _wake(namespace, labels.get(lbl.SD_NAME))


# ----------------------------------------------------------------------------------------- issue 16: LeaderWorkerSets
# Watched only when the operator runs with LeaderWorkerSet support (``specdeploy run --leaderworkerset``): without
# it the LWS CRD may be absent and the chart grants no access to leaderworkersets, and a multi-node spec is
# refused (``rollout.workloads``). Registered by ``enable_leaderworkerset`` before kopf starts.
_features = {"leaderworkerset": False}


async def leaderworkersets_idx(*, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return _indexed(key, _pack(body))


def enable_leaderworkerset() -> None:
    """Watch our LeaderWorkerSets (index and deletions) and let the planner render them for multi-node specs."""
    if _features["leaderworkerset"]:
        return
    _features["leaderworkerset"] = True
    kopf.index("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", labels=MANAGED)(leaderworkersets_idx)
    kopf.on.event("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", labels=MANAGED, when=_deleted)(child_deleted)


@kopf.index(GROUP, VERSION, PLURAL)
async def objects_idx(*, namespace: str | None, name: str | None, **_: Any) -> None:
    """Not an index: the cheapest kopf hook per watch event of a SpeculativeDeployment (kopf has already put the
    event's body into the daemon's ``body``), used to wake its daemon."""
    if namespace and name:
        _wake_indexed(namespace, name)


# ----------------------------------------------------------------------------------------- the daemon
def _one(store: Any, key: tuple[str, str]) -> dict[str, Any] | None:
    try:
        values = list(store[key])
    except KeyError:
        return None
    return _unpack(values[-1]) if values else None


def _many(store: Any, key: tuple[str, str]) -> list[dict[str, Any]]:
    try:
        return [_unpack(v) for v in store[key]]
    except KeyError:
        return []


@dataclasses.dataclass
class Indexes:
    """The kopf indexes of our children, as one value (kopf passes them to the daemon by name)."""

    deployments: Any
    services: Any
    jobs: Any
    pods: Any
    revisions: Any
    pdbs: Any = None  # issue 15
    leaderworkersets: Any = None  # issue 16: only with LeaderWorkerSet support

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Indexes:
        """The indexes kopf passes to the daemon by their handlers' names (the budget's may be absent: issue 15;
        the LeaderWorkerSets' is there only with LeaderWorkerSet support: issue 16)."""
        idx = cls(*(kwargs[f"{kind}_idx"] for kind in ("deployments", "services", "jobs", "pods", "revisions")))
        idx.pdbs = kwargs.get("pdbs_idx")
        idx.leaderworkersets = kwargs.get("leaderworkersets_idx")
        return idx


def _workloads(idx: Indexes, key: tuple[str, str]) -> list[dict[str, Any]]:
    """Every workload of the object: its Deployments and (with LeaderWorkerSet support) its LeaderWorkerSets."""
    lws = _many(idx.leaderworkersets, key) if idx.leaderworkersets is not None else []
    return [*_many(idx.deployments, key), *lws]


class ObjectReconciler:
    """The state one daemon keeps for one SpeculativeDeployment between loops, and one loop's work.

    Read-your-writes overlays (``rollout.overlay``) guard against watch lag: the ControllerRevisions and verdicts
    this daemon wrote, and the last status it wrote, are laid over what the indexes and the body show until they
    show it themselves.

    Status writes carry the resourceVersion of the body they were computed from, so a status computed from an
    older view than the API server's (another writer's condition landed since) is refused with 409 Conflict and
    recomputed, instead of putting back what that writer replaced. The same precondition tells when the status
    overlay is done: once the body has moved past that version, it holds the write.
    """

    def __init__(self, namespace: str, name: str, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self.key = (namespace, name)
        self.logger = logger
        self.tracker = AcceptanceTracker()
        self.written: dict[str, dict[str, str]] = {}
        # ControllerRevisions this daemon created that the index may not show yet: name -> (when, object).
        self.recorded: dict[str, tuple[float, dict[str, Any]]] = {}
        self.last_status: dict[str, Any] = {}
        self.last_status_over = ""  # resourceVersion the last status write was made over (its precondition)
        self.seen_version = ""  # resourceVersion of the body this loop observed
        self.next_scrape = 0.0
        self.event_failures: dict[str, int] = {}  # Event name -> failed creates in a row (passing errors)
        self.snapshots: dict[str, Any] = {}  # revision id -> spec snapshot, only for revisions that may serve
        self.pool: dict[str, Any] | None = None  # the InferencePool this process last applied (no index: optional CRD)

    async def run_once(self, body: kopf.Body, spec: SpeculativeDeploymentSpec, idx: Indexes) -> None:
        namespace, name = self.key
        pods = _many(idx.pods, self.key)
        now = time.time()
        if now >= self.next_scrape:  # scrape before planning, so the plan sees the freshest verdict
            if permits_metrics_source(spec, _admin["policy"]):  # never a URL the admin's policy refuses
                await self.tracker.scrape(namespace, name, spec, pods)
            self.next_scrape = now + float(spec.metrics.scrape_interval_seconds)
        await self.read_snapshots(spec, idx)
        async with _reconcile_slots():
            observed = self.observe(body, spec, idx, pods)
            result = stalls.report(plan(observed), observed, pods)  # a stuck rollout says why (rollout.stalls)
            await self.execute(result, observed, body)
            await self.apply_optional(result.optional, idx)  # issue 15: PodDisruptionBudget, InferencePool
        if not is_subset(result.status, observed.status):
            self.last_status = result.status
            self.last_status_over = self.seen_version
        self.tracker.set_serving(result.serving, progress.for_revision(observed.deployments, _id(result.serving)))
        # Issue 13: the canary judged beside it (rollout.canary), each with its own Deployment.
        self.tracker.set_canary(result.canary, progress.for_revision(observed.deployments, _id(result.canary)))

    def observe(
        self, body: kopf.Body, spec: SpeculativeDeploymentSpec, idx: Indexes, pods: list[dict[str, Any]]
    ) -> Observed:
        meta = body.get("metadata", {})
        namespace, name = self.key
        owner = Owner(
            name=name, namespace=namespace, uid=str(meta.get("uid")), generation=int(meta.get("generation") or 0)
        )
        self.seen_version = str(meta.get("resourceVersion") or "")
        status, self.last_status = overlay.with_status(
            dict(body.get("status") or {}), self.last_status, self.last_status_over, self.seen_version
        )
        revisions, self.recorded = overlay.with_recorded(
            _many(idx.revisions, self.key), self.recorded, time.monotonic(), RECORDED_SECONDS
        )
        revisions, self.written = overlay.with_written(revisions, self.written)
        return Observed(
            owner=owner,
            spec=spec,
            status=status,
            history=hist.with_snapshots(
                hist.from_controller_revisions(revisions), {**self.snapshots, revision_id(spec): serving_snapshot(spec)}
            ),
            deployments=tuple(_workloads(idx, self.key)),  # issue 16: the LeaderWorkerSets too
            service=_one(idx.services, self.key),
            job=job_outcome(_many(idx.jobs, self.key), pods, job_name(name, revision_id(spec))),
            monitor=self.tracker.finding(spec, namespace, name, status.get("validation")),
            now_iso=_now_iso(),
            now=time.time(),
            policy=_admin["policy"],
            leaderworkerset_enabled=_features["leaderworkerset"],
        )

    async def read_snapshots(self, spec: SpeculativeDeploymentSpec, idx: Indexes) -> None:
        """The revision index keeps no spec snapshots (memory); read those of the revisions that may serve, other
        than the current one (its snapshot is its spec), once each, and forget those no longer needed."""
        revisions, _ = overlay.with_recorded(
            _many(idx.revisions, self.key), self.recorded, time.monotonic(), RECORDED_SECONDS
        )
        revisions, _ = overlay.with_written(revisions, self.written)
        history = hist.from_controller_revisions(revisions)
        current = revision_id(spec)
        live = canary.incumbent(canary.lives(_workloads(idx, self.key)), current)
        live_id = live.serving_id if live else None
        needed = hist.snapshots_needed(history, revision_id(spec), live_id)
        self.snapshots = {k: v for k, v in self.snapshots.items() if k in needed}
        for rev_id in sorted(needed - self.snapshots.keys()):
            cr = await kube.get("ControllerRevision", self.key[0], hist.controller_revision_name(self.key[1], rev_id))
            if cr is not None:
                self.snapshots[rev_id] = (cr.get("data") or {}).get("spec") or {}

    async def execute(self, p: Plan, observed: Observed, body: Mapping[str, Any]) -> None:
        """Carry the plan out in the order ``rollout.writes`` gives (what makes a crash safe), independent writes at
        once; the status only after every earlier write succeeded (any failure: the loop retries)."""
        ns, name = self.key
        todo = writes_for(p, observed)
        self.event_failures = {k: v for k, v in self.event_failures.items() if any(e.name == k for e in p.events)}
        for write in todo.decisions:
            await self._write(write, observed.owner)
        await _all([self._write(write, observed.owner) for write in todo.acts])
        if todo.status is not None:
            # kopf keeps ``body`` fresh: when a newer version of the object arrived during this loop's writes (on
            # a new object: kopf's own finalizer patch), the write would be refused with 409 anyway. Skip the round
            # trip and plan again on the newer version; the conflict path waits for it (it is there already).
            live = str((body.get("metadata") or {}).get("resourceVersion") or "")
            if live and self.seen_version and live != self.seen_version:
                raise kube.KubeError(f"status computed over {self.seen_version}, version {live} is here", 409)
            await kube.patch_status(ns, name, todo.status, resource_version=self.seen_version or None)
        await _all([self._write(write, observed.owner) for write in todo.prune])

    async def _write(self, write: Write, owner: Owner) -> None:
        """One write of ``rollout.writes``, with what this daemon remembers of it (the read-your-writes overlays)."""
        match write:
            case Create(manifest=manifest) if manifest["kind"] == "ControllerRevision":
                cr, _ = await kube.create(manifest)
                if cr:
                    self.recorded[manifest["metadata"]["name"]] = (time.monotonic(), _unpack(_pack(cr)))
            case Create(manifest=manifest):
                _, created = await kube.create(manifest)
                if created and manifest["kind"] != "Job":
                    self.logger.info(f"created {manifest['kind']} {manifest['metadata']['name']}")
            case Patch(ref=ref, patch=patch, verdict=verdict):
                await kube.patch(*ref, patch)
                if verdict is not None:
                    self.written.setdefault(verdict[0], {}).update(verdict[1])
                else:
                    self.logger.info(f"updated {ref.kind} {ref.name}")
            case Delete(ref=ref):
                await kube.delete(*ref)
            case Say(event=ev):
                if await self._say(ev, owner) and ev.reason == "RolledBack":
                    exporter.count_rollback(owner.namespace, owner.name)  # once per rollback: a 409 was counted

    async def apply_optional(self, wanted: list[dict[str, Any]] | None, idx: Indexes) -> None:
        """Apply the optional children the plan wants and delete those it no longer wants (None: leave them).

        The PodDisruptionBudget is read from its index. InferencePools are not watched (their CRD and the RBAC
        for them are optional), so the pool this process last applied stands in for the live one: created (a
        409 reads the existing one and patches it when it differs), and deleted when no longer wanted. A pool
        left by a restarted process while it was disabled stays until the object is deleted (garbage collector).
        """
        if wanted is None:
            return
        ns, name = self.key
        by_kind = {obj["kind"]: obj for obj in wanted}
        pdb = by_kind.get("PodDisruptionBudget")
        live_pdb = _one(idx.pdbs, self.key) if idx.pdbs is not None else None
        if pdb is not None:
            write = child_write(live_pdb, pdb)
            if isinstance(write, Create):
                await kube.create(write.manifest)
                self.logger.info(f"created PodDisruptionBudget {pdb['metadata']['name']}")
            elif isinstance(write, Patch):
                await kube.patch(*write.ref, write.patch)
                self.logger.info(f"updated PodDisruptionBudget {pdb['metadata']['name']}")
        elif live_pdb is not None:
            await kube.delete("PodDisruptionBudget", ns, live_pdb["metadata"]["name"])
            self.logger.info(f"deleted PodDisruptionBudget {live_pdb['metadata']['name']} (replicas below 2)")
        pool = by_kind.get("InferencePool")
        if pool is not None and (self.pool is None or not is_subset(pool, self.pool)):
            live, created = await kube.create(pool)
            if not created and not is_subset({k: v for k, v in pool.items() if k != "status"}, live):
                await kube.patch("InferencePool", ns, pool["metadata"]["name"], patch_for(pool))
            self.pool = pool
            self.logger.info(f"applied InferencePool {pool['metadata']['name']}")
        elif pool is None and self.pool is not None:
            await kube.delete("InferencePool", ns, self.pool["metadata"]["name"])
            self.pool = None
            self.logger.info(f"deleted InferencePool {name} (spec.routing.inferencePool disabled)")

    async def report_invalid(self, body: kopf.Body, generation: int, message: str) -> None:
        """Say that this generation of the spec does not parse (``rollout.invalid``): its one Event, then the
        status, each only when the object does not show it yet (an unchanged world writes nothing)."""
        ns, name = self.key
        meta = body.get("metadata", {})
        owner = Owner(name=name, namespace=ns, uid=str(meta.get("uid")), generation=generation)
        self.seen_version = str(meta.get("resourceVersion") or "")
        status = dict(body.get("status") or {})
        wanted = invalid.status_for(status, generation, message, _now_iso())
        if is_subset(wanted, status):
            return
        await self._say(invalid.event_for(name, owner.uid, generation, message), owner)
        await kube.patch_status(ns, name, wanted, resource_version=self.seen_version or None)

    async def say_failure(self, body: kopf.Body, cause: str, why: str) -> None:
        """Post the Warning for a new cause of failed loops (``rollout.retry``); best effort, never raises."""
        ns, name = self.key
        meta = body.get("metadata", {})
        uid, generation = str(meta.get("uid") or ""), int(meta.get("generation") or 0)
        if not uid:
            return
        ev = retry.failure_event(name, uid, generation, cause, why)
        involved = involved_object(name, ns, uid, str(meta.get("resourceVersion") or ""))
        try:
            await kube.create_event(event_manifest(ev, involved, dt.datetime.now(dt.UTC), INSTANCE))
        except kube.KubeError as e:
            log.info(f"{ns}/{name}: Event {ev.reason} not posted: {e}")

    async def _say(self, ev: Event, owner: Owner) -> bool:
        """Create the Event; True when this call created it. Events are best effort: a refusal other than 409 is
        logged and the loop goes on, except that a passing failure first holds the status write back for a few
        loops (raised, the daemon retries), so a brief API server outage does not eat the Event."""
        involved = involved_object(owner.name, owner.namespace, owner.uid, self.seen_version)
        manifest = event_manifest(ev, involved, dt.datetime.now(dt.UTC), INSTANCE)
        try:
            created = await kube.create_event(manifest)
        except kube.KubeError as e:
            failures = self.event_failures.get(ev.name, 0) + 1
            passing = e.status in (0, 429) or e.status >= 500
            if passing and failures < EVENT_TRIES:
                self.event_failures[ev.name] = failures
                raise
            self.event_failures.pop(ev.name, None)
            self.logger.warning(f"Event {ev.reason} ({ev.name}) not posted, going on without it: {e}")
            return False
        self.event_failures.pop(ev.name, None)
        if not created:  # said before the status recorded it (a restart, a refused status write): not said again
            log.info(f"{owner.namespace}/{owner.name}: Event {ev.reason} {ev.name} exists already (409)")
        return created


def _id(choice: hist.ServingChoice | None) -> str | None:
    return choice.id if choice is not None else None


async def _all(calls: list[Coroutine[Any, Any, Any]]) -> None:
    """Run the calls at once and wait for every one of them; then raise the first failure, if any (so no write
    of this loop is still in flight when the loop retries)."""
    if not calls:
        return
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, timeout: float) -> None:
    """Until a wake-up, the daemon being stopped (object deleted, operator exiting), or the timeout."""

    async def until_stopped() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(until_stopped())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _parse(body: kopf.Body, namespace: str, name: str, generation: int) -> SpeculativeDeploymentSpec | str:
    """The spec, or the bounded words of why it does not parse (logged once per generation, not as an Event)."""
    try:
        return SpeculativeDeploymentSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as e:
        message = invalid.describe(e)
        log.warning(f"{namespace}/{name}: generation {generation}: {message}")
        return message


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def reconcile_daemon(
    *,
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    """One loop per object: reconcile on every wake-up, scrape metrics on its interval."""
    assert namespace is not None  # the kind is namespaced
    idx = Indexes.from_kwargs(kwargs)
    wake = _wakeups.setdefault((namespace, name), asyncio.Event())
    reconciler = ObjectReconciler(namespace, name, logger)
    # The spec, or why it does not parse, once per metadata.generation.
    parsed: tuple[int, SpeculativeDeploymentSpec | str] | None = None
    reported = -1  # the generation whose InvalidSpec the object shows (rollout.invalid)
    retries = retry.Retries()  # failed loops in a row: exponential pause, one announcement per cause
    try:
        while not stopped:
            wake.clear()
            started = time.monotonic()
            try:
                generation = int(body.get("metadata", {}).get("generation") or 0)
                if parsed is None or parsed[0] != generation or not generation:
                    parsed = (generation, _parse(body, namespace, name, generation))
                if isinstance(parsed[1], str):
                    # The API server stored what the model refuses (a CRD/model skew): say so once for this
                    # generation, then wait for the next one; wake-ups until then cost nothing.
                    if reported != generation:
                        await reconciler.report_invalid(body, generation, parsed[1])
                        reported = generation
                    retries.succeeded()
                    await _sleep(wake, stopped, RESYNC_SECONDS)
                    continue
                await reconciler.run_once(body, parsed[1], idx)
                retries.succeeded()
            except (kube.KubeError, ValidationError) as e:
                if isinstance(e, kube.KubeError) and e.status == 409:  # the object changed since this loop read it
                    logger.debug(f"conflict, reconciling again once the newer object arrives: {e}")
                    await _sleep(wake, stopped, 1.0)
                    continue
                # A write refused or unanswered, or a recorded revision the model refuses (plan.spec_for). Backing
                # off, not woken by watch events; a cause goes to the object once (a ReconcileFailed Warning and
                # the per-object logger), its repeats to the operator's log only.
                cause, why = (
                    (str(e.status), str(e)) if isinstance(e, kube.KubeError) else ("parse", invalid.describe(e))
                )
                pause, announce = retries.failed(cause, time.monotonic(), random.random())  # noqa: S311 - jitter
                said = f"reconcile failed ({retries.failures} in a row), will retry in {pause:.1f} s: {why}"
                if announce:
                    logger.warning(said)
                    await reconciler.say_failure(body, cause, why)
                else:
                    log.warning(f"{namespace}/{name}: {said}")
                await _sleep(asyncio.Event(), stopped, pause)
                continue
            finally:
                exporter.RECONCILE_DURATION.labels(handler="reconcile").observe(time.monotonic() - started)
            timeout = max(0.05, min(RESYNC_SECONDS, reconciler.next_scrape - time.time()))
            await _sleep(wake, stopped, timeout)
    finally:
        _wakeups.pop((namespace, name), None)
        if stopped.reason is not None and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            exporter.forget(namespace, name)

"""kopf wiring: watches, indexes and one reconcile daemon per SpeculativeDeployment. No decisions live here.

Shape of the operator (level-based, like the Deployment controller):

- kopf indexes keep in-memory copies of our children (Deployments, Services, Jobs, Pods, ControllerRevisions
  labelled ``app.kubernetes.io/managed-by=specdeploy``), fed by watch streams. Reading the world costs no API
  requests.
- Any change to an object or one of its children wakes that object's daemon. The daemon gathers what is
  observed, calls the pure ``rollout.plan.plan()``, and carries out what it returns: creates and merge patches
  only where the live object differs, status only when it changed, Events only on transitions.
- Every ``scrapeIntervalSeconds`` the daemon scrapes the serving pods' ``/metrics`` (or queries Prometheus),
  feeds the monitor, and reconciles again with its verdict.

kopf keeps no progress annotations for daemons and the operator has no change-detecting handlers, so an
unchanged world causes zero API writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from specdeploy import kube
from specdeploy.api import GROUP, PLURAL, VERSION, SpeculativeDeploymentSpec
from specdeploy.monitor import exporter
from specdeploy.rollout import history as hist
from specdeploy.rollout.compare import is_subset, patch_for
from specdeploy.rollout.plan import JobOutcome, Observed, Owner, Plan, plan
from specdeploy.tracker import AcceptanceTracker

log = logging.getLogger("specdeploy")

MANAGED = {"app.kubernetes.io/managed-by": "specdeploy"}
NAME_LABEL = hist.LABEL_NAME
FINALIZER = "specdeploy.io/finalizer"
# Reconcile at least this often even without any change (a safety net, costs no API requests).
RESYNC_SECONDS = 60.0

_wakeups: dict[tuple[str, str], asyncio.Event] = {}
_runtime = {"namespaced": True}


def configure_runtime(*, namespaced: bool) -> None:
    _runtime["namespaced"] = namespaced


def _wake(namespace: str | None, name: str | None) -> None:
    if namespace and name:
        ev = _wakeups.get((namespace, name))
        if ev is not None:
            ev.set()


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Settings that keep a long-running operator healthy (see the style anchors: silent watch freezes)."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="specdeploy.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="specdeploy.io", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 300
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.scanning.disabled = True
    settings.posting.level = logging.INFO
    settings.background.cancellation_polling = 5
    kube.load()


# ----------------------------------------------------------------------------------------- indexes
def _owner_key(namespace: str | None, labels: Mapping[str, str]) -> tuple[str, str] | None:
    name = labels.get(NAME_LABEL)
    return (namespace, name) if namespace and name else None


def _strip(body: Mapping[str, Any]) -> dict[str, Any]:
    obj = {k: v for k, v in body.items()}
    meta = dict(obj.get("metadata", {}))
    meta.pop("managedFields", None)
    obj["metadata"] = meta
    return obj


@kopf.index("apps", "v1", "deployments", labels=MANAGED)
def deployments_idx(namespace: str, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return {key: _strip(body)} if key else None


@kopf.index("", "v1", "services", labels=MANAGED)
def services_idx(namespace: str, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return {key: _strip(body)} if key else None


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def jobs_idx(namespace: str, name: str, labels: Mapping[str, str], status: kopf.Status, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    if not key:
        return None
    return {
        key: {
            "name": name,
            "revision": labels.get(hist.LABEL_REVISION),
            "conditions": list(status.get("conditions") or []),
        }
    }


@kopf.index("", "v1", "pods", labels=MANAGED)
def pods_idx(namespace: str, name: str, labels: Mapping[str, str], status: kopf.Status, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    if not key:
        return None
    terminated = None
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            terminated = {"exitCode": term.get("exitCode"), "message": term.get("message") or "", "reason": term.get("reason")}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return {
        key: {
            "name": name,
            "ip": status.get("podIP"),
            "ready": ready,
            "phase": status.get("phase"),
            "revision": labels.get(hist.LABEL_REVISION),
            "component": labels.get("app.kubernetes.io/component"),
            "job": labels.get("job-name") or labels.get("batch.kubernetes.io/job-name"),
            "terminated": terminated,
        }
    }


@kopf.index("apps", "v1", "controllerrevisions", labels=MANAGED)
def revisions_idx(namespace: str, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
    key = _owner_key(namespace, labels)
    return {key: _strip(body)} if key else None


# ----------------------------------------------------------------------------------------- wake-ups
@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("", "v1", "services", labels=MANAGED)
@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
@kopf.on.event("", "v1", "pods", labels=MANAGED)
@kopf.on.event("apps", "v1", "controllerrevisions", labels=MANAGED)
def child_changed(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
    _wake(namespace, labels.get(NAME_LABEL))


@kopf.on.event(GROUP, VERSION, PLURAL)
def object_changed(namespace: str | None, name: str | None, **_: Any) -> None:
    _wake(namespace, name)


# ----------------------------------------------------------------------------------------- the daemon
def _one(store: Any, key: tuple[str, str]) -> dict[str, Any] | None:
    try:
        values = list(store[key])
    except KeyError:
        return None
    return values[-1] if values else None


def _many(store: Any, key: tuple[str, str]) -> list[dict[str, Any]]:
    try:
        return list(store[key])
    except KeyError:
        return []


def _job_outcome(jobs: list[dict[str, Any]], pods: list[dict[str, Any]], job_name: str) -> JobOutcome | None:
    job = next((j for j in jobs if j["name"] == job_name), None)
    if job is None:
        return None
    done = next(
        (c for c in job["conditions"] if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"), None
    )
    if done is None:
        return JobOutcome(name=job_name, finished=False)
    finished_at = None
    if done.get("lastTransitionTime"):
        finished_at = dt.datetime.fromisoformat(done["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
    pod = next((p for p in pods if p["job"] == job_name and p["terminated"]), None)
    if pod is None:
        reason = done.get("reason") or done.get("type")
        return JobOutcome(
            name=job_name, finished=True, exit_code=None, message=f"Job {done['type']}: {reason} {done.get('message', '')}".strip(),
            finished_at=finished_at,
        )
    term = pod["terminated"]
    report: dict[str, Any] | None = None
    try:
        parsed = json.loads(term["message"]) if term["message"] else None
        report = parsed if isinstance(parsed, dict) else None
    except ValueError:
        report = None
    exit_code = term.get("exitCode")
    if exit_code not in (0, 1, 2):
        exit_code = 2
    return JobOutcome(
        name=job_name,
        finished=True,
        exit_code=exit_code,
        report=report,
        message=(term["message"] or "")[:500] if report is None else "",
        finished_at=finished_at,
    )


async def _apply(
    child: Mapping[str, Any] | None, desired: dict[str, Any] | None, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> str:
    if desired is None:
        return ""
    meta = desired["metadata"]
    if child is None:
        _, created = await kube.create(desired)
        return f"created {desired['kind']} {meta['name']}" if created else ""
    if is_subset({k: v for k, v in desired.items() if k != "status"}, child):
        return ""
    await kube.patch(desired["kind"], meta["namespace"], meta["name"], patch_for(desired))
    return f"updated {desired['kind']} {meta['name']}"


async def _execute(
    p: Plan,
    body: kopf.Body,
    observed: Observed,
    written: dict[str, dict[str, str]],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    ns = observed.owner.namespace
    if p.record_revision is not None:
        await kube.create(p.record_revision)
    for rev_id, annotations in p.verdicts:
        name = hist.controller_revision_name(observed.owner.name, rev_id)
        await kube.patch("ControllerRevision", ns, name, {"metadata": {"annotations": annotations}})
        written.setdefault(rev_id, {}).update(annotations)
    if p.delete_job:
        await kube.delete("Job", ns, p.delete_job)
    if p.create_job is not None:
        await kube.create(p.create_job)
    for child, desired in ((observed.service, p.service), (observed.deployment, p.deployment)):
        what = await _apply(child, desired, logger)
        if what:
            logger.info(what)
    if not is_subset(p.status, dict(observed.status)):
        await kube.patch_status(ns, observed.owner.name, p.status)
    for ev in p.events:
        kopf.event(body, type=ev.type, reason=ev.reason, message=ev.message)
        if ev.reason == "RolledBack":
            exporter.count_rollback(ns, observed.owner.name)
    for name in p.prune:
        await kube.delete("ControllerRevision", ns, name)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def reconcile_daemon(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str,
    body: kopf.Body,
    logger: logging.Logger,
    deployments_idx: kopf.Index[Any, Any],
    services_idx: kopf.Index[Any, Any],
    jobs_idx: kopf.Index[Any, Any],
    pods_idx: kopf.Index[Any, Any],
    revisions_idx: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    """One loop per object: reconcile on every wake-up, scrape metrics on its interval."""
    key = (namespace, name)
    wake = _wakeups.setdefault(key, asyncio.Event())
    tracker = AcceptanceTracker()
    # Verdicts this daemon wrote, until the watch-fed index shows them: read-your-writes for the revision history,
    # so a stale index can never undo a rollback for one loop (and post its Event twice).
    written: dict[str, dict[str, str]] = {}
    next_scrape = 0.0
    try:
        while not stopped:
            wake.clear()
            started = time.monotonic()
            try:
                spec = SpeculativeDeploymentSpec.model_validate(dict(body.get("spec") or {}))
            except Exception as e:  # the API server validates; this only guards a CRD/model skew
                logger.error(f"spec does not parse: {e}")
                await asyncio.wait_for(wake.wait(), timeout=RESYNC_SECONDS) if not stopped else None
                continue
            pods = _many(pods_idx, key)
            # Scrape when due, before planning, so the plan sees the freshest verdict.
            now = time.time()
            if now >= next_scrape:
                await tracker.scrape(namespace, name, spec, pods)
                next_scrape = now + float(spec.metrics.scrape_interval_seconds)
            revisions = _with_written(_many(revisions_idx, key), written)
            observed = _observe(body, spec, key, pods, deployments_idx, services_idx, jobs_idx, revisions, tracker)
            try:
                result = plan(observed)
                await _execute(result, body, observed, written, logger)
                tracker.set_serving(result.monitor, observed.deployment)
            except kube.KubeError as e:
                logger.warning(f"reconcile failed, will retry: {e}")
                await asyncio.sleep(2)
                continue
            finally:
                exporter.RECONCILE_DURATION.labels(handler="reconcile").observe(time.monotonic() - started)
            timeout = max(0.05, min(RESYNC_SECONDS, next_scrape - time.time()))
            try:
                await asyncio.wait_for(wake.wait(), timeout=timeout)
            except TimeoutError:
                pass
    finally:
        _wakeups.pop(key, None)
        if stopped.reason is not None and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            exporter.forget(namespace, name)


def _with_written(revisions: list[dict[str, Any]], written: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Overlay our own recent verdict writes on the indexed ControllerRevisions; forget those the index shows."""
    out = []
    for cr in revisions:
        meta = cr.get("metadata", {})
        rev_id = (meta.get("labels") or {}).get(hist.LABEL_REVISION)
        mine = written.get(rev_id or "")
        if mine:
            ann = dict(meta.get("annotations") or {})
            if all(ann.get(k) == v for k, v in mine.items()):
                written.pop(rev_id or "", None)
            else:
                ann.update(mine)
                cr = {**cr, "metadata": {**meta, "annotations": ann}}
        out.append(cr)
    return out


def _observe(
    body: kopf.Body,
    spec: SpeculativeDeploymentSpec,
    key: tuple[str, str],
    pods: list[dict[str, Any]],
    deployments_idx: Any,
    services_idx: Any,
    jobs_idx: Any,
    revisions: list[dict[str, Any]],
    tracker: AcceptanceTracker,
) -> Observed:
    meta = body.get("metadata", {})
    owner = Owner(name=key[1], namespace=key[0], uid=str(meta.get("uid")), generation=int(meta.get("generation") or 0))
    from specdeploy.rollout.revision import revision_id

    current = revision_id(spec)
    job_name = f"{owner.name}-validate-{current}"
    return Observed(
        owner=owner,
        spec=spec,
        status=dict(body.get("status") or {}),
        history=hist.from_controller_revisions(revisions),
        deployment=_one(deployments_idx, key),
        service=_one(services_idx, key),
        job=_job_outcome(_many(jobs_idx, key), pods, job_name),
        monitor=tracker.verdict(spec, key[0], key[1]),
        now_iso=_now_iso(),
        now=time.time(),
    )

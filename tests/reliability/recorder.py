"""A witness for fault-injection tests: what the operator wrote to one namespace, seen from outside.

Crash, API-server and conflict tests must prove things that the final state alone cannot show: that a condition
flipped once and its Event was posted at most once, that a rollback was applied once and never undone, that no
child exists twice. The recorder watches SpeculativeDeployments and Deployments of one namespace from threads
(list, then watch, resuming from the last resourceVersion after any break, including an API-server restart) and
keeps, per object, every condition change and every revision a Deployment's pod template named. The checks
compare that record with the Events and children listed at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from specdeploy.api.constants import GROUP, PLURAL, VERSION
from specdeploy.render.labels import MANAGED_BY, MANAGER
from specdeploy.render.labels import SD_NAME as NAME_LABEL
from specdeploy.render.labels import SD_REVISION as REVISION_LABEL
from specdeploy.rollout.history import NO_SPECULATION_SUFFIX as NOSPEC
from tests.harness.kubectl import wait_for

MANAGED = f"{MANAGED_BY}={MANAGER}"

# Event reason -> the condition change that justifies one such Event (type, status, reason or None for any).
EVENT_TRANSITIONS: dict[str, tuple[str, str, str | None]] = {
    "Ready": ("Ready", "True", None),
    "ValidationStarted": ("Validated", "Unknown", "ValidationRunning"),
    "ValidationSucceeded": ("Validated", "True", "ValidationSucceeded"),
    "ValidationFailed": ("Validated", "False", "ValidationFailed"),
    "ValidationError": ("Validated", "False", "ValidationError"),
    "RolledBack": ("RolledBack", "True", None),
    "Degraded": ("Degraded", "True", None),
    "Recovered": ("Degraded", "False", None),
}

# Transitions that can be overtaken before their status write lands: the ValidationStarted Event is created before
# the status says Validated=Unknown, and when that write is refused (409: a newer version of the object arrived) and
# the Job has finished by the next loop, the status goes straight to the outcome. Validation did start (its Job ran,
# once): each outcome justifies at most one start of its own.
OVERTAKEN_BY: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "ValidationStarted": (
        EVENT_TRANSITIONS["ValidationSucceeded"],
        EVENT_TRANSITIONS["ValidationFailed"],
        EVENT_TRANSITIONS["ValidationError"],
    ),
}


def api_client(kubeconfig: Path, user_agent: str | None = None) -> client.ApiClient:
    """A client of its own (own connection pool); ``user_agent`` names it in managedFields."""
    api = config.new_client_from_config(str(kubeconfig))
    if user_agent:
        api.user_agent = user_agent
    return api


@dataclass
class ObjectRecord:
    """Everything seen of one SpeculativeDeployment and its Deployment."""

    # (type, status, reason, message) of each condition change, in order. A change is a new status or reason (for
    # Validated Unknown also a new message: its Event, ValidationStarted, is per revision).
    transitions: list[tuple[str, str, str, str]] = field(default_factory=list)
    seen_at: list[str] = field(default_factory=list)  # lastTransitionTime of each transition, for messages
    last: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)  # distinct successive pod-template revisions

    def count(self, type_: str, status: str, reason: str | None, message: str | None = None) -> int:
        return sum(
            1
            for t, s, r, m in self.transitions
            if t == type_ and s == status and reason in (None, r) and message in (None, m)
        )


def follow(
    lister: Callable[..., Any],
    handle: Callable[[str, Mapping[str, Any]], None],
    stop: threading.Event,
    watches: set[watch.Watch],
    on_gone: Callable[[], bool],
) -> None:
    """Until ``stop``: list once (each item handled as ADDED), then watch from the last resourceVersion seen,
    resuming from it after any break (the API server can serve the missed events even after a restart); each
    ADDED, MODIFIED or DELETED object goes to ``handle`` raw. The live watch is in ``watches`` (stop it to unblock the
    stream). A 410 Gone (too old to resume): ``on_gone`` says whether to list again (True) or stop following."""
    rv: str | None = None
    while not stop.is_set():
        try:
            if rv is None:
                listed = json.loads(lister(_preload_content=False, _request_timeout=10).data)
                for obj in listed["items"]:
                    handle("ADDED", obj)
                rv = listed["metadata"]["resourceVersion"]
            w = watch.Watch()
            watches.add(w)
            try:
                for ev in w.stream(lister, resource_version=rv, timeout_seconds=20, allow_watch_bookmarks=True):
                    obj = ev["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        handle(ev["type"], obj)
                    if stop.is_set():
                        break
            finally:
                watches.discard(w)
        except ApiException as e:
            if e.status != 410:
                stop.wait(0.05)
            elif on_gone():
                rv = None
            else:
                return
        except Exception:  # connection refused while the API server is down, read timeouts
            stop.wait(0.05)


class Recorder:
    """Watch one namespace from a thread; ``stop()`` ends it. Thread-safe reads through ``snapshot()``."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.namespace = namespace
        api = api_client(kubeconfig)
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.records: dict[str, ObjectRecord] = {}
        self.relists = 0  # forced re-lists (410 Gone); changes between a break and a re-list are not seen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watches: set[watch.Watch] = set()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._list_sds, self._on_sd), daemon=True, name="rec-sd"),
            threading.Thread(target=self._loop, args=(self._list_deps, self._on_dep), daemon=True, name="rec-dep"),
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Recorder:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()  # unblocks a stream waiting for its next event
        for t in self._threads:
            t.join(timeout=10)

    def record(self, name: str) -> ObjectRecord:
        with self._lock:
            rec = self.records.get(name, ObjectRecord())
            return ObjectRecord(
                transitions=list(rec.transitions),
                seen_at=list(rec.seen_at),
                last=dict(rec.last),
                templates=list(rec.templates),
            )

    # ------------------------------------------------------------------ watching
    def _list_sds(self, **kw: Any) -> Any:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, **kw)

    def _list_deps(self, **kw: Any) -> Any:
        return self.apps.list_namespaced_deployment(self.namespace, label_selector=MANAGED, **kw)

    def _loop(self, lister: Callable[..., Any], handle: Callable[[Mapping[str, Any]], None]) -> None:
        """Follow ``lister`` (:func:`follow`); a 410 Gone lists again, which may hide changes made in between: those
        are counted in ``relists`` and the Event check allows for them."""

        def gone() -> bool:
            self.relists += 1
            return True

        follow(lister, lambda kind, obj: handle(obj) if kind != "DELETED" else None, self._stop, self._watches, gone)

    def _on_sd(self, obj: Mapping[str, Any]) -> None:
        name = obj["metadata"]["name"]
        conditions = (obj.get("status") or {}).get("conditions") or []
        with self._lock:
            rec = self.records.setdefault(name, ObjectRecord())
            for c in conditions:
                type_, status, reason = c.get("type", ""), c.get("status", ""), c.get("reason", "")
                message = str(c.get("message", ""))
                now = (status, reason, message if (type_, status) == ("Validated", "Unknown") else "")
                if rec.last.get(type_) != now:
                    before = rec.last.get(type_)
                    rec.last[type_] = now
                    # "Recovered" is only news after a real degradation; a first Degraded=False is not a transition.
                    if (type_, status) == ("Degraded", "False") and (before is None or before[0] != "True"):
                        continue
                    rec.transitions.append((type_, status, reason, message))
                    rec.seen_at.append(str(c.get("lastTransitionTime", "")))

    def _on_dep(self, obj: Mapping[str, Any]) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name = labels.get(NAME_LABEL)
        template = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels", {}) or {}
        revision = template.get(REVISION_LABEL)
        if not name or not revision:
            return
        with self._lock:
            rec = self.records.setdefault(name, ObjectRecord())
            if not rec.templates or rec.templates[-1] != revision:
                rec.templates.append(revision)

    # ------------------------------------------------------------------ checks
    def sd_events(self) -> dict[str, Counter[str]]:
        """Events posted on each SpeculativeDeployment, counted by reason (an aggregated Event counts ``count``)."""
        out: dict[str, Counter[str]] = {}
        for ev in self._events():
            out.setdefault(ev.involved_object.name, Counter())[ev.reason] += max(1, ev.count or 1)
        return out

    def _events(self) -> list[Any]:
        items = self.core.list_namespaced_event(self.namespace).items
        return [e for e in items if e.involved_object.kind == "SpeculativeDeployment"]

    def excess_events(self, names: Iterable[str]) -> list[str]:
        """Every (object, reason) with more Events than the condition changes that justify them, with both.

        Two rules. Always: Events with one and the same message (the condition's message, which names the
        revision) are at most as many as the changes seen to that condition with that message, and at least one
        is allowed (a change the watch could not see, after a forced re-list). And when the watch never had to
        re-list, the Events of a reason are at most the changes of its condition (or of the transitions that can
        overtake it, ``OVERTAKEN_BY``), whatever the messages.
        """
        events = self._events()
        problems = []
        for name in names:
            rec = self.record(name)
            mine = [e for e in events if e.involved_object.name == name and e.reason in EVENT_TRANSITIONS]
            by_reason: Counter[str] = Counter()
            by_message: Counter[tuple[str, str]] = Counter()
            for e in mine:
                by_reason[e.reason] += max(1, e.count or 1)
                by_message[(e.reason, e.message)] += max(1, e.count or 1)
            bad = [
                f"{n} {reason} Events say {message!r}, {rec.count(*EVENT_TRANSITIONS[reason], message)} changes did"
                for (reason, message), n in sorted(by_message.items())
                if n > max(1, rec.count(*EVENT_TRANSITIONS[reason], message))
            ]
            if self.relists == 0:
                bad += [
                    f"{n} {reason} Events for {allowed} transitions"
                    for reason, n in sorted(by_reason.items())
                    if n > (allowed := self._justified(rec, reason))
                ]
            if bad:
                seen = [f"{at} {t[0]}={t[1]}/{t[2]}" for t, at in zip(rec.transitions, rec.seen_at, strict=True)]
                posted = [f"{e.first_timestamp or e.event_time} {e.reason}: {e.message}" for e in mine]
                problems.append(f"{name}: {'; '.join(bad)}\n  Events: {posted}\n  changes seen: {seen}")
        return problems

    @staticmethod
    def _justified(rec: ObjectRecord, reason: str) -> int:
        """How many Events of ``reason`` the changes seen justify: its own transitions, or as many transitions that
        overtook it (``OVERTAKEN_BY``), whichever is more."""
        own = rec.count(*EVENT_TRANSITIONS[reason])
        overtaking = sum(rec.count(*t) for t in OVERTAKEN_BY.get(reason, ()))
        return max(own, overtaking)

    def missing_events(self, names: Iterable[str]) -> list[str]:
        """Justified Events never posted, as "object: reason". Events are created before the status write that
        records their transition, under a name derived from it, so a crash on either side loses none."""
        events = self.sd_events()
        missing = []
        for name in names:
            rec = self.record(name)
            for reason, transition in EVENT_TRANSITIONS.items():
                if reason in ("Degraded", "Recovered", "ValidationStarted"):
                    continue  # said by another Event, or only when this process created the Job
                lost = rec.count(*transition) - events.get(name, Counter())[reason]
                missing += [f"{name}: {reason}"] * max(0, lost)
        return missing

    def rollbacks_applied(self, name: str) -> int:
        """How many times the Deployment's pod template switched to a speculation-disabled revision."""
        return sum(1 for rev in self.record(name).templates if rev.endswith(NOSPEC))

    def duplicate_children(self) -> list[str]:
        """Children that exist twice: per object one Deployment and one Service, per revision one Job and one
        ControllerRevision, and no two ControllerRevisions of one object with the same revision number."""
        sds = {
            o["metadata"]["name"]: o["metadata"]["uid"]
            for o in json.loads(self._list_sds(_preload_content=False).data)["items"]
            if not o["metadata"].get("deletionTimestamp")
        }
        problems: list[str] = []
        per_object: dict[tuple[str, str], list[str]] = {}

        def add(kind: str, meta: Any) -> None:
            owner = (meta.labels or {}).get(NAME_LABEL)
            if not owner:
                return
            refs = meta.owner_references or []
            if owner in sds and [r.uid for r in refs if r.controller] != [sds[owner]]:
                problems.append(f"{kind} {meta.name} is not controlled by {owner} ({[r.uid for r in refs]})")
            # one Service per object; one Deployment, Job, ControllerRevision per revision (issue 13)
            key = (kind, owner) if kind == "Service" else (kind, owner, meta.labels[REVISION_LABEL])
            per_object.setdefault(key, []).append(meta.name)  # type: ignore[arg-type]

        for d in self.apps.list_namespaced_deployment(self.namespace, label_selector=MANAGED).items:
            add("Deployment", d.metadata)
        for s in self.core.list_namespaced_service(self.namespace, label_selector=MANAGED).items:
            add("Service", s.metadata)
        for j in self.batch.list_namespaced_job(self.namespace, label_selector=MANAGED).items:
            add("Job", j.metadata)
        numbers: dict[str, list[int]] = {}
        for cr in self.apps.list_namespaced_controller_revision(self.namespace, label_selector=MANAGED).items:
            add("ControllerRevision", cr.metadata)
            numbers.setdefault(cr.metadata.labels[NAME_LABEL], []).append(int(cr.revision))
        problems += [f"{key[0]} of {key[1:]} exists {len(v)} times: {v}" for key, v in per_object.items() if len(v) > 1]
        for owner, nums in numbers.items():
            dupes = sorted(n for n, c in Counter(nums).items() if c > 1)
            if dupes:
                problems.append(f"{owner}: ControllerRevision numbers used twice: {dupes}")
        return problems


def wait_until(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.2) -> tuple[Any, float]:
    """Poll ``fn`` until truthy; return (value, seconds waited). Fails naming ``what`` and the last value."""
    t0 = time.monotonic()
    value = wait_for(what, fn, timeout=timeout, interval=interval)
    return value, time.monotonic() - t0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]

"""A cluster as plain data, for driving ``rollout.plan`` through whole scenarios without an API server.

``World`` holds what the operator's daemon would observe about one SpeculativeDeployment: its spec and status,
its ControllerRevisions (as the dicts the API returns), its Deployment, Service and validation Job, and the
monitor's latest finding. ``step()`` calls the real ``plan()`` on that and carries out the real
``rollout.writes.writes_for`` (the writes the operator's executor, ``handlers.ObjectReconciler.execute``, sends, in
its order), applying each to this data as the API server would: creates (a name that exists already is refused, as
the API server answers 409), JSON merge patches of children, ControllerRevision annotations and the status, and
deletions. The revision history the next step sees is read back with the real ``from_controller_revisions``, so a
verdict the plan forgets to record shows up as a wrong next step.

The Deployment controller's part (rolling out a new template) is a separate call, ``roll_out()``, so a test
chooses whether the pods are Ready yet.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from specdeploy.api import SpeculativeDeploymentSpec, SpeculativeDeploymentStatus
from specdeploy.api.revision import revision_id
from specdeploy.monitor.decision import decide
from specdeploy.monitor.parse import SpecDecodeCounters
from specdeploy.monitor.window import Window
from specdeploy.rollout.history import from_controller_revisions
from specdeploy.rollout.plan import Event, JobOutcome, MonitorFinding, Observed, Owner, Plan, plan
from specdeploy.rollout.writes import Create, Delete, Patch, Ref, Say, Write, writes_for
from specdeploy.tracker import AcceptanceTracker, policy_of

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def assert_schema_valid(status: dict[str, Any]) -> None:
    """The status fits the CRD's status schema, and no key is one the schema does not know (it would be pruned)."""
    model = SpeculativeDeploymentStatus.model_validate(status, by_alias=True)
    assert model.model_dump(mode="json", by_alias=True, exclude_unset=True) == status


def template_revision(deployment: dict[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels.get("specdeploy.io/revision")


def vllm_args(deployment: dict[str, Any]) -> list[str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def speculative_config(deployment: dict[str, Any]) -> dict[str, Any] | None:
    args = vllm_args(deployment)
    if "--speculative-config" not in args:
        return None
    config: dict[str, Any] = json.loads(args[args.index("--speculative-config") + 1])
    return config


@dataclass
class World:
    spec: dict[str, Any]
    name: str = "coder"
    namespace: str = "llm"
    uid: str = "0b6f5a52-9c1e-4a43-a1a8-6a1f1f0c2e11"
    generation: int = 1
    now: float = T0
    status: dict[str, Any] = field(default_factory=dict)
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name: one per revision (issue 13)
    service: dict[str, Any] | None = None
    jobs: dict[str, JobOutcome] = field(default_factory=dict)
    job_manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitor: MonitorFinding | None = None
    events: list[Event] = field(default_factory=list)  # the Events created, in order (what `kubectl describe` lists)
    event_posts: int = 0  # Event create calls, refused ones (409) included
    # Kill the operator in every step that has something to say: "after-verdicts" (ControllerRevision annotations
    # written, nothing after) or "after-events" (Events created, status not written); the step then restarts it.
    crash: str | None = None
    crashes: int = 0
    status_writes: int = 0
    child_writes: int = 0
    plans: list[Plan] = field(default_factory=list)

    # ------------------------------------------------------------------ what the daemon observes
    @property
    def job_name(self) -> str:
        """The validation Job of the current spec's revision (the name the handler looks up)."""
        return f"{self.name}-validate-{revision_id(SpeculativeDeploymentSpec.model_validate(self.spec))}"

    @property
    def job(self) -> JobOutcome | None:
        return self.jobs.get(self.job_name)

    @job.setter
    def job(self, outcome: JobOutcome | None) -> None:
        if outcome is None:
            self.jobs.pop(self.job_name, None)
        else:
            self.jobs[self.job_name] = outcome

    def observe(self) -> Observed:
        return Observed(
            owner=Owner(self.name, self.namespace, self.uid, self.generation),
            spec=SpeculativeDeploymentSpec.model_validate(self.spec),
            status=copy.deepcopy(self.status),
            history=from_controller_revisions(copy.deepcopy(list(self.revisions.values()))),
            deployments=tuple(copy.deepcopy(d) for _, d in sorted(self.deployments.items())),
            service=copy.deepcopy(self.service),
            job=self.job,
            monitor=self.monitor,
            now_iso=iso(self.now),
            now=self.now,
        )

    def step(self) -> Plan:
        """One reconcile: plan on what is observed, then carry the plan out. The status must fit the schema."""
        p = plan(self.observe())
        if self.crash and p.events:
            self.apply(p, crash=self.crash)
            self.crashes += 1
            self.monitor = None  # a new process: the acceptance windows were in memory
            self.now += 1
            p = plan(self.observe())
        assert_schema_valid(p.status)
        self.apply(p)
        self.plans.append(p)
        return p

    def settle(self, limit: int = 6) -> Plan:
        """Reconcile until a pass asks for nothing new; fails if that takes more than ``limit`` passes."""
        for _ in range(limit):
            writes, events = self.status_writes + self.child_writes, self.event_posts
            p = self.step()
            quiet = not (p.record_revision or p.verdicts or p.create_job or p.delete_job or p.prune)
            if quiet and writes == self.status_writes + self.child_writes and events == self.event_posts:
                return p
        raise AssertionError(f"no steady state after {limit} passes; last plan: {self.plans[-1]}")

    # ------------------------------------------------------------------ carrying a plan out
    def apply(self, p: Plan, crash: str | None = None) -> None:
        """Carry ``p`` out as the operator's executor does; ``crash`` stops it as a SIGKILL would: "after-verdicts"
        (only the decisions were written) or "after-events" (all but the status and pruning)."""
        todo = writes_for(p, self.observe())
        for write in todo.decisions:
            self._write(write)
        if crash == "after-verdicts":
            return
        for write in todo.acts:
            self._write(write)
        if crash == "after-events":
            return
        if todo.status is not None:
            self.status = merge_patch(self.status, todo.status)
            self.status_writes += 1
        for write in todo.prune:
            self._write(write)

    def _write(self, write: Write) -> None:
        match write:
            case Create(manifest=manifest):
                self._create(copy.deepcopy(manifest))
            case Patch(ref=Ref(kind="ControllerRevision", name=name), patch=patch):
                self.revisions[name] = merge_patch(self.revisions[name], patch)
            case Patch(ref=Ref(kind=kind, name=name), patch=patch):
                self.child_writes += 1
                live = self.deployments.get(name) if kind == "Deployment" else self.service
                assert live is not None, f"patch of a {kind} that does not exist"
                patched = merge_patch(live, patch)
                patched["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
                self._set_child(kind, patched)
            case Delete(ref=Ref(kind="Deployment", name=name)):
                self.child_writes += 1
                self.deployments.pop(name, None)
            case Delete(ref=Ref(kind="Job", name=name)):
                self.jobs.pop(name, None)
            case Delete(ref=Ref(kind="ControllerRevision", name=name)):
                self.revisions.pop(name, None)
            case Say(event=ev):
                self.event_posts += 1
                if all(ev.name != said.name for said in self.events):
                    self.events.append(ev)
            case _:
                raise AssertionError(f"the world cannot carry out {write}")

    def _create(self, manifest: dict[str, Any]) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind == "ControllerRevision":
            self.revisions.setdefault(name, manifest)
        elif kind == "Job":
            self.job_manifests[name] = manifest
            self.jobs.setdefault(name, JobOutcome(name=name, finished=False))
        elif (self.deployments.get(name) if kind == "Deployment" else self.service) is None:
            self.child_writes += 1
            manifest["metadata"]["generation"] = 1
            manifest["status"] = {}
            self._set_child(kind, manifest)

    def _set_child(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "Deployment":
            self.deployments[obj["metadata"]["name"]] = obj
        else:
            assert kind == "Service", kind
            self.service = obj

    # ------------------------------------------------------------------ the rest of the cluster
    @property
    def deployment(self) -> dict[str, Any] | None:
        """The Deployment of the revision that serves (status.revision.serving), else the one with most ready pods."""
        if not self.deployments:
            return None
        serving = (self.status.get("revision") or {}).get("serving")
        mine = [d for d in self.deployments.values() if template_revision(d) == serving]
        pool = mine or list(self.deployments.values())
        return max(pool, key=lambda d: int((d.get("status") or {}).get("readyReplicas") or 0))

    @deployment.setter
    def deployment(self, obj: dict[str, Any] | None) -> None:
        if obj is None:
            self.deployments.clear()
        else:
            self.deployments[obj["metadata"]["name"]] = obj

    def deployment_of(self, serving_id: str) -> dict[str, Any] | None:
        return next((d for d in self.deployments.values() if template_revision(d) == serving_id), None)

    def roll_out(self, ready: int | None = None, serving_id: str | None = None) -> None:
        """The Deployment controller and kubelet: the current templates are rolled out, ``ready`` pods Ready (of
        every Deployment, or of the one of ``serving_id``; at most its replicas)."""
        assert self.deployments, "nothing to roll out"
        for dep in self.deployments.values():
            if serving_id is not None and template_revision(dep) != serving_id:
                continue
            replicas = int(dep["spec"]["replicas"])
            now_ready = replicas if ready is None else min(ready, replicas)
            dep["status"] = {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": now_ready,
                "availableReplicas": now_ready,
            }

    def ready_pods(self) -> int:
        return sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in self.deployments.values())

    def finish_job(self, exit_code: int | None, report: dict[str, Any] | None, message: str = "") -> None:
        """The validation pod terminated: its exit code and termination message (the JSON report)."""
        assert self.job is not None, "no validation Job to finish"
        self.job = JobOutcome(
            name=self.job.name,
            finished=True,
            exit_code=exit_code,
            report=report,
            message=message,
            finished_at=self.now,
        )

    def change_spec(self, **sections: Any) -> None:
        """A user edits the spec (merging into sections): generation advances as the API server would."""
        spec = copy.deepcopy(self.spec)
        for key, value in sections.items():
            if value is None:
                spec.pop(key, None)
            elif isinstance(value, dict) and isinstance(spec.get(key), dict):
                spec[key] = {**spec[key], **value}
            else:
                spec[key] = value
        self.spec = spec
        self.generation += 1

    # ------------------------------------------------------------------ reading the outcome
    def condition(self, type_: str) -> dict[str, Any]:
        found: dict[str, Any] = next((c for c in self.status.get("conditions", []) if c["type"] == type_), {})
        return found

    def annotations(self, rev_id: str) -> dict[str, str]:
        ann: dict[str, str] = self.revisions[f"{self.name}-{rev_id}"]["metadata"].get("annotations") or {}
        return ann

    def serving(self) -> str | None:
        return template_revision(self.deployment)


# ---------------------------------------------------------------------- the monitor's side, through the real tracker
def windows_at(rates: list[float], start: float, seconds: float = 60.0, tokens: float = 12_000) -> list[Window]:
    """Closed windows of a V1 engine with ``k = 4``: ``tokens`` draft tokens each, accepted at ``rate``."""
    out = []
    for i, rate in enumerate(rates):
        drafts = tokens / 4
        rho = _position_decay(rate)
        # P(accepted prefix > j) = rho ** (j + 1): each position is accepted only after the ones before it.
        per_position = tuple(round(drafts * rho ** (j + 1)) for j in range(4))
        counters = SpecDecodeCounters(
            engine="v1",
            drafts=drafts,
            draft_tokens=tokens,
            accepted_tokens=sum(per_position),
            per_position=per_position,
        )
        begin = start + i * seconds
        out.append(Window.from_counters(begin, begin + seconds, counters, ("coder-7d9f-abcde",)))
    return out


def _position_decay(rate: float) -> float:
    """rho with (rho + rho^2 + rho^3 + rho^4) / 4 == rate, by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(mid ** (j + 1) for j in range(4)) / 4 < rate:
            lo = mid
        else:
            hi = mid
    return lo


def monitor_finding(world: World, rates: list[float]) -> MonitorFinding | None:
    """What the daemon's AcceptanceTracker reports for the revision ``world`` serves, after windows at ``rates``.

    The serving revision became Ready an hour ago; the windows close back to back, ending now.
    """
    assert world.plans, "step the world first: the tracker follows the plan's serving revision"
    spec = SpeculativeDeploymentSpec.model_validate(world.spec)
    tracker = AcceptanceTracker()
    tracker.set_serving(world.plans[-1].serving, world.deployment, now=world.now - 3600)
    seconds = float(spec.rollback.window_seconds)
    tracker.windows = windows_at(rates, world.now - seconds * len(rates), seconds)
    tracker.decision = decide(policy_of(spec), tracker.ready_since, world.now, tracker.windows)
    return tracker.finding(spec)

"""A cluster as plain data, for driving ``rollout.plan`` through whole scenarios without an API server.

``World`` holds what the operator's daemon would observe about one SpeculativeDeployment: its spec and status,
its ControllerRevisions (as the dicts the API returns), its Deployment, Service and validation Job, and the
monitor's latest verdict. ``step()`` calls the real ``plan()`` on that and carries the plan out the way
``handlers._execute`` does: create or merge-patch children only when ``is_subset`` says they differ, merge-patch
the status only when it changed, record verdicts as annotations on the ControllerRevisions, create Events (before
the status write, each under its own name: a name that exists already is refused, as the API server answers 409). The
revision history the next step sees is read back with the real ``from_controller_revisions``, so a verdict the
plan forgets to record shows up as a wrong next step.

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
from specdeploy.rollout.compare import is_subset
from specdeploy.rollout.history import from_controller_revisions
from specdeploy.rollout.plan import Event, JobOutcome, MonitorFinding, Observed, Owner, Plan, plan
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
    deployment: dict[str, Any] | None = None
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
            deployment=copy.deepcopy(self.deployment),
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
        """Carry ``p`` out in the handler's order; ``crash`` stops it as a SIGKILL would: "after-verdicts" (only
        the new revision and the verdicts were written) or "after-events" (all but the status and pruning)."""
        if p.record_revision is not None:
            name = p.record_revision["metadata"]["name"]
            self.revisions.setdefault(name, copy.deepcopy(p.record_revision))
        for rev_id, verdict in p.verdicts:
            cr = self.revisions[f"{self.name}-{rev_id}"]
            cr["metadata"]["annotations"] = {**(cr["metadata"].get("annotations") or {}), **verdict}
        if crash == "after-verdicts":
            return
        if p.delete_job:
            self.jobs.pop(p.delete_job, None)
        if p.create_job is not None:
            name = p.create_job["metadata"]["name"]
            self.job_manifests[name] = copy.deepcopy(p.create_job)
            self.jobs.setdefault(name, JobOutcome(name=name, finished=False))
        self.service = self._apply_child(self.service, p.service)
        self.deployment = self._apply_child(self.deployment, p.deployment)
        for ev in p.events:
            self.event_posts += 1
            if all(ev.name != said.name for said in self.events):
                self.events.append(ev)
        if crash == "after-events":
            return
        if not is_subset(p.status, self.status):
            self.status = merge_patch(self.status, p.status)
            self.status_writes += 1
        for name in p.prune:
            self.revisions.pop(name, None)

    def _apply_child(self, live: dict[str, Any] | None, desired: dict[str, Any] | None) -> dict[str, Any] | None:
        if desired is None:
            return live
        if live is None:
            self.child_writes += 1
            created = copy.deepcopy(desired)
            created["metadata"]["generation"] = 1
            created["status"] = {}
            return created
        if is_subset({k: v for k, v in desired.items() if k != "status"}, live):
            return live
        self.child_writes += 1
        patched = copy.deepcopy(desired)
        patched["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
        patched["status"] = copy.deepcopy(live.get("status") or {})
        return patched

    # ------------------------------------------------------------------ the rest of the cluster
    def roll_out(self, ready: int | None = None) -> None:
        """The Deployment controller and kubelet: the current template is rolled out, ``ready`` pods Ready."""
        assert self.deployment is not None, "nothing to roll out"
        replicas = int(self.deployment["spec"]["replicas"])
        ready = replicas if ready is None else ready
        self.deployment["status"] = {
            "observedGeneration": self.deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }

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

"""Per-object acceptance tracking: scrape the serving pods, close windows, ask the decision, remember the verdict.

This is the stateful glue between the reconcile daemon and the pure ``monitor`` package. It holds, in memory,
the window accumulator and the closed windows of the revision that serves now; it does the only I/O of the
monitor (HTTP scrapes of pods, or PromQL queries) and turns the decision into the ``MonitorFinding`` that
``rollout.plan`` acts on.

Beside the serving revision it judges a canary, when the plan runs one (issue 13): ``set_canary`` follows it, and
once its Deployment is fully Ready and warmed up, two window accumulators start at the same instant, one fed by
the canary's pods and one by the serving pods, from the same scrapes; ``monitor.canary.judge_canary`` turns the
pairs into ``MonitorFinding.canary``. The serving revision's own windows never see a canary pod (pods are filtered
by their revision label).

Memory is bounded: only the windows the decision can still look at are kept. Losing this state (an operator
restart) costs at most ``consecutiveWindows`` windows of delay, never a wrong rollback: a decision that was
already taken is recorded durably on the revision's ControllerRevision before anything acts on it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from specdeploy.api import AcceptanceStatus, SpeculativeDeploymentSpec
from specdeploy.api.status import PerformanceStatus
from specdeploy.monitor import exporter
from specdeploy.monitor.canary import CanaryPolicy, WindowPair, judge_canary
from specdeploy.monitor.control import ControlGroup, speed_decision
from specdeploy.monitor.decision import Decision, Policy, Reason, Verdict, decide
from specdeploy.monitor.finding import CanaryFinding, CanaryVerdict, MonitorFinding
from specdeploy.monitor.payoff import Payoff, ScheduleChoice
from specdeploy.monitor.performance import latest_with_tokens, meaningful, performance_status
from specdeploy.monitor.pools import POOLS, capped_timeout, scrape_object
from specdeploy.monitor.prometheus_source import PodSelector, PrometheusAsker, PrometheusQueryError
from specdeploy.monitor.proposal import propose_schedule, revision_schedule
from specdeploy.monitor.speedup import recommend_depth
from specdeploy.monitor.window import PodError, PodSample, Window, WindowAccumulator
from specdeploy.render.control import control_revision
from specdeploy.rollout.history import ServingChoice
from specdeploy.rollout.progress import fully_ready

# Cost of one draft step relative to one target step when the parameter ratio is unknown (Leviathan et al.'s c).
DEFAULT_COST_RATIO = 0.1
# Keep at most this many closed windows (the decision looks at the last consecutiveWindows qualifying ones).
MAX_WINDOWS = 64
# Canary window pairs kept (a verdict needs at most analysisWindows qualifying ones, 100 by the API's bound).
MAX_PAIRS = 128
# Final canary verdicts remembered, by canary revision id (a verdict is final for its revision).
MAX_CANARY_VERDICTS = 16
# Parameter ratios remembered, by revision id (see AcceptanceTracker.cost_ratio).
MAX_COST_RATIOS = 16
# Publish a new status.acceptance only when the rate moved at least this much, the mean accepted length at least
# this fraction of itself, or the verdict changed.
RATE_EPSILON = 0.005

_RELATIVE = re.compile(r" \(\d+s from now\)")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _fraction(value: float) -> float:
    """A rate as the status schema bounds it, [0, 1]. A scrape is not atomic: vLLM can count a step's accepted
    tokens before its drafts are read, so a short window can come out a hair above 1, and one out-of-range number
    would make the API server refuse the whole status."""
    return min(1.0, max(0.0, value))


def _count(value: float | None) -> int | None:
    return None if value is None else max(0, int(value))


def policy_of(spec: SpeculativeDeploymentSpec) -> Policy:
    r = spec.rollback
    return Policy(
        min_acceptance_rate=float(r.min_acceptance_rate),
        consecutive_windows=int(r.consecutive_windows),
        min_draft_tokens=float(r.min_draft_tokens),
        warmup_seconds=float(r.warmup_seconds),
    )


def canary_policy_of(spec: SpeculativeDeploymentSpec) -> CanaryPolicy:
    r, c = spec.rollback, spec.rollout.canary
    return CanaryPolicy(
        min_acceptance_rate=float(r.min_acceptance_rate),
        min_draft_tokens=float(r.min_draft_tokens),
        max_acceptance_drop=float(c.max_acceptance_drop),
        max_latency_increase=float(c.max_latency_increase),
        analysis_windows=int(c.analysis_windows),
    )


def parameter_ratio(validation: Mapping[str, Any] | None) -> float | None:
    """The validator's draft/target parameter ratio in a validation summary, when it is a usable number."""
    ratio = (validation or {}).get("parameterRatio")
    if isinstance(ratio, int | float) and not isinstance(ratio, bool) and math.isfinite(ratio) and ratio > 0:
        return float(ratio)
    return None


def acceptance_status(serving_id: str, d: Decision, latest: Window | None, recommended_k: int | None) -> dict[str, Any]:
    """status.acceptance for the decision ``d`` and the latest window that measured a rate (every key present,
    None where unknown, so a change of what is known counts as a change)."""
    candidate: dict[str, Any] = {"revision": serving_id, "verdict": str(d.verdict), "reason": str(d.reason)}
    if latest is not None and latest.acceptance is not None:
        acc = latest.acceptance
        candidate.update(
            {
                "rate": round(_fraction(acc.rate), 4) if acc.rate is not None else None,
                "rateText": f"{_fraction(acc.rate):.2f}" if acc.rate is not None else None,
                "meanAcceptedLength": round(acc.mean_accepted_length, 3)
                if acc.mean_accepted_length is not None
                else None,
                "perPosition": [round(_fraction(x), 4) for x in acc.per_position][:16],
                # None, not 0, where the engine cannot say (V0): "no tokens" would be a different claim.
                "draftTokens": _count(acc.draft_tokens),
                "acceptedTokens": _count(acc.accepted_tokens),
                "drafts": _count(acc.drafts),
                "windowEnd": _iso(latest.end),
                "windowSeconds": int(latest.end - latest.start),
                "podsCounted": len(latest.pods_counted),
                "recommendedNumSpeculativeTokens": recommended_k,
            }
        )
    # "(25s from now)" would make every scrape look like a change; the absolute time stays in the message.
    candidate["message"] = _RELATIVE.sub("", d.message)[:500]
    return candidate


class AcceptanceTracker:
    def __init__(self) -> None:
        self.serving_id: str | None = None
        self.speculation = False
        self.ready_since: float | None = None
        self.accumulator: WindowAccumulator | None = None
        self.windows: list[Window] = []
        self.decision: Decision | None = None
        self.healthy_since: float | None = None
        self.published: dict[str, Any] | None = None
        self.performance: dict[str, Any] | None = None  # the status.performance last published
        # The draft:target parameter ratio of each revision that served, from its own validation record: the
        # cost of a draft step in the depth recommendation, whatever status.validation describes now.
        self.cost_ratios: dict[str, float] = {}
        # The canary under analysis (issue 13).
        self.canary_id: str | None = None
        self.canary_speculation = False
        self.canary_ready_since: float | None = None
        self.pair_canary: WindowAccumulator | None = None
        self.pair_serving: WindowAccumulator | None = None
        self.pairs: list[WindowPair] = []
        self._unpaired: dict[str, dict[float, Window]] = {"canary": {}, "serving": {}}
        self.canary_verdicts: dict[str, CanaryFinding] = {}  # final verdicts by canary revision id
        # Issue 14 (payoff): the control group's windows beside the serving revision's (monitor.control).
        self.control: ControlGroup | None = None
        self.speedup: Payoff | None = None  # the measured speedup against it, per load (issue 14; speed_decision)
        self.serving_schedule: tuple[tuple[int, int, int], ...] | None = None  # the serving revision's own schedule

    # ------------------------------------------------------------------ what serves
    def set_serving(
        self, serving: ServingChoice | None, deployment: Mapping[str, Any] | None, now: float | None = None
    ) -> None:
        """Follow the serving revision; reset the windows when it changes; note when it became fully Ready."""
        now = time.time() if now is None else now
        new_id = serving.id if serving else None
        if new_id != self.serving_id:
            self.serving_id = new_id
            self.speculation = bool(serving and serving.speculation)
            self.ready_since = None
            self.accumulator = None
            self.windows = []
            self.decision = None
            self.healthy_since = None
            self.performance = None
            self.control = None  # issue 14 (payoff): control windows are paired with this revision's only
            self.speedup = None
            self.serving_schedule = revision_schedule(serving.revision.spec) if serving else None
            self._reset_pairs()  # a canary is compared with what serves now, from a common start
        if self.serving_id is None:
            return
        assert serving is not None
        ratio = parameter_ratio(serving.revision.validation)
        if ratio is not None:
            self._remember_cost(serving.id, ratio)
        replicas = int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
        ready = replicas > 0 and fully_ready(deployment, self.serving_id, replicas)
        if ready and self.ready_since is None:
            self.ready_since = now
        elif not ready and int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0) == 0:
            self.ready_since = None

    def set_canary(
        self, canary: ServingChoice | None, deployment: Mapping[str, Any] | None, now: float | None = None
    ) -> None:
        """Follow the plan's canary (None: no canary) and its own Deployment; note when it became fully Ready.

        The window pairs start in ``scrape`` once the canary has been Ready for ``rollback.warmupSeconds``; a
        canary that loses every ready pod starts over (its windows would mix a restart into the comparison).
        """
        now = time.time() if now is None else now
        new_id = canary.id if canary else None
        if new_id != self.canary_id:
            self.canary_id = new_id
            self.canary_speculation = bool(canary and canary.speculation)
            self.canary_ready_since = None
            self._reset_pairs()
        if self.canary_id is None:
            return
        replicas = int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
        ready = replicas > 0 and fully_ready(deployment, self.canary_id, replicas)
        if ready and self.canary_ready_since is None:
            self.canary_ready_since = now
        elif not ready and int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0) == 0:
            if self.canary_ready_since is not None:
                self._reset_pairs()
            self.canary_ready_since = None

    def _reset_pairs(self) -> None:
        self.pair_canary = self.pair_serving = None
        self.pairs = []
        self._unpaired = {"canary": {}, "serving": {}}

    def _canary_judged(self) -> bool:
        """The canary's verdict is final: nothing more to collect for it."""
        return self.canary_id is not None and self.canary_id in self.canary_verdicts

    def _start_pairs(self, spec: SpeculativeDeploymentSpec, now: float) -> None:
        """Start both accumulators of the canary comparison at the same instant, once the canary is warmed up."""
        window_seconds = float(spec.rollback.window_seconds)
        if self.pair_canary is not None and self.pair_canary.window_seconds != window_seconds:
            self._reset_pairs()
        if (
            self.pair_canary is None
            and self.serving_id is not None
            and self.canary_ready_since is not None
            and not self._canary_judged()
            and now >= self.canary_ready_since + float(spec.rollback.warmup_seconds)
        ):
            self.pair_canary = WindowAccumulator(window_seconds, start=now)
            self.pair_serving = WindowAccumulator(window_seconds, start=now)

    def _pair_up(self, side: str, closed: Sequence[Window]) -> None:
        """Match closed windows of the two sides by their start (both accumulators tile time the same way)."""
        mine, other = self._unpaired[side], self._unpaired["serving" if side == "canary" else "canary"]
        for w in closed:
            twin = other.pop(w.start, None)
            if twin is None:
                mine[w.start] = w
                continue
            pair = WindowPair(canary=w, serving=twin) if side == "canary" else WindowPair(canary=twin, serving=w)
            self.pairs.append(pair)
            del self.pairs[:-MAX_PAIRS]
            for pending in (mine, other):  # a window older than a paired one will never find its twin
                for start in [s for s in pending if s < w.start]:
                    del pending[start]
        for pending in (mine, other):
            while len(pending) > 4:
                del pending[min(pending)]

    def _remember_cost(self, revision: str, ratio: float) -> None:
        self.cost_ratios.pop(revision, None)
        self.cost_ratios[revision] = ratio
        while len(self.cost_ratios) > MAX_COST_RATIOS:
            del self.cost_ratios[next(iter(self.cost_ratios))]

    def cost_ratio(self, validation: Mapping[str, Any] | None = None) -> float:
        """The cost of a draft step relative to a target step for the serving revision: its validator's parameter
        ratio (from its own revision record, or from ``status.validation`` while that describes it, remembered
        per revision), else 0.1. Never another revision's: after a rollback status.validation describes the
        revision that failed, and a recommendation for the same revision must not change because of it."""
        if self.serving_id is None:
            return DEFAULT_COST_RATIO
        if validation and validation.get("revision") == self.serving_id:
            ratio = parameter_ratio(validation)
            if ratio is not None:
                self._remember_cost(self.serving_id, ratio)
        return self.cost_ratios.get(self.serving_id, DEFAULT_COST_RATIO)

    # ------------------------------------------------------------------ scraping
    async def scrape(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]]
    ) -> None:
        """One scrape interval: read every ready pod of the serving revision (and of the canary, while it is
        compared), close windows, decide."""
        if not self.serving_id:
            return
        now = time.time()
        self._start_pairs(spec, now)
        # A revision without speculation is scraped too: its speed is status.performance (and a canary's baseline).
        window_seconds = float(spec.rollback.window_seconds)
        if self.accumulator is None or self.accumulator.window_seconds != window_seconds:
            self.accumulator = WindowAccumulator(window_seconds, start=now)
            self.windows = []
        prometheus = str(spec.metrics.source) == "Prometheus" and spec.metrics.prometheus is not None
        self._keep_control(spec)  # issue 14 (payoff)
        if prometheus:
            await self._query_prometheus(namespace, name, spec, pods, now)
        else:
            await self._scrape_pods(namespace, name, spec, pods, now)
        if not prometheus:
            await self._scrape_control(namespace, name, spec, pods, now)
        later = time.time()
        self.windows.extend(self.accumulator.advance(later))
        del self.windows[:-MAX_WINDOWS]
        if self.control is not None and not prometheus:
            self.control.advance(later)  # with Prometheus, each control window is queried whole (_query_prometheus)
        if self.pair_canary is not None and self.pair_serving is not None:
            self._pair_up("canary", self.pair_canary.advance(later))
            self._pair_up("serving", self.pair_serving.advance(later))
        if self.speculation:
            self.decision = decide(policy_of(spec), self.ready_since, later, self.windows)
            if self.decision.verdict is Verdict.HEALTHY:
                self.healthy_since = self.healthy_since or later
            else:
                self.healthy_since = None
        self.judge_canary(spec)

    # ------------------------------------------------------------------ issue 14 (payoff): the control group
    def _keep_control(self, spec: SpeculativeDeploymentSpec) -> None:
        """The control group's windows, tiled like the serving revision's (monitor.control), while the serving
        revision speculates and spec.speculation.control has pods; dropped otherwise."""
        control = spec.speculation.control
        wanted = self.speculation and control is not None and control.replicas > 0 and self.accumulator is not None
        if not wanted or self.serving_id is None:
            self.control = None
            return
        assert self.accumulator is not None
        revision = control_revision(self.serving_id)
        if self.control is None or self.control.revision != revision:
            self.control = ControlGroup.beside(revision, self.accumulator)

    async def _scrape_control(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]], now: float
    ) -> None:
        """Scrape the control pods (metrics.source Pods) into the control group's accumulator."""
        if self.control is None:
            return
        targets = self._targets(spec, pods, self.control.revision)
        if not targets:
            return
        outcomes = await scrape_object(POOLS, namespace, name, targets.values(), timeout=spec.metrics.timeout_seconds)
        for pod, url in targets.items():
            outcome = outcomes[url]
            if outcome.error is not None:
                exporter.count_scrape_error(namespace, name, outcome.error.reason)
                sample = PodSample(timestamp=now, pod=pod, error=f"{outcome.error.reason}: {outcome.error.detail}")
            else:
                sample = PodSample(timestamp=now, pod=pod, counters=outcome.counters, speed=outcome.speed)
            self.control.add(sample)

    def judge_canary(self, spec: SpeculativeDeploymentSpec) -> CanaryFinding | None:
        """The canary's verdict from the pairs so far; a Passed or Failed verdict is final for its revision."""
        if self.canary_id is None or self.serving_id is None:
            return None
        final = self.canary_verdicts.get(self.canary_id)
        if final is not None:
            return final
        if self.pair_canary is None:
            return self._canary_starting(spec)
        found = judge_canary(
            canary_policy_of(spec),
            self.pairs,
            revision=self.canary_id,
            serving=self.serving_id,
            serving_speculates=self.speculation,
            canary_speculates=self.canary_speculation,
        )
        if found.verdict in (CanaryVerdict.PASSED, CanaryVerdict.FAILED):
            self.canary_verdicts[self.canary_id] = found
            while len(self.canary_verdicts) > MAX_CANARY_VERDICTS:
                del self.canary_verdicts[next(iter(self.canary_verdicts))]
            self._reset_pairs()
        return found

    def _canary_starting(self, spec: SpeculativeDeploymentSpec) -> CanaryFinding:
        assert self.canary_id is not None and self.serving_id is not None
        if self.canary_ready_since is None:
            words = "waiting for every pod of the canary to be Ready"
        else:
            judged_from = self.canary_ready_since + float(spec.rollback.warmup_seconds)
            words = f"warming up: the canary is compared from {_iso(judged_from)}"
        return CanaryFinding(
            revision=self.canary_id,
            serving=self.serving_id,
            verdict=CanaryVerdict.STARTING,
            message=f"canary {self.canary_id} beside {self.serving_id}: {words}",
        )

    def _targets(
        self, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]], revision: str | None = None
    ) -> dict[str, str]:
        """Metrics URLs of the ready server pods of ``revision`` (the serving one by default), by pod name."""
        revision = revision or self.serving_id
        port = int(spec.serving.port)
        return {
            p["name"]: f"http://{p['ip']}:{port}/metrics"
            for p in pods
            if p.get("component") == "server" and p.get("revision") == revision and p.get("ready") and p.get("ip")
        }

    async def _scrape_pods(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]], now: float
    ) -> None:
        assert self.accumulator is not None
        serving = self._targets(spec, pods)
        canary = self._targets(spec, pods, self.canary_id) if self.pair_canary is not None else {}
        if not serving and not canary:
            return
        # Connection budgets, timeout cap, bounded pages: see monitor.pools (issue 11, items 3 and 5).
        urls = [*serving.values(), *canary.values()]
        outcomes = await scrape_object(POOLS, namespace, name, urls, timeout=spec.metrics.timeout_seconds)
        for side, targets in (("serving", serving), ("canary", canary)):
            for pod, url in targets.items():
                outcome = outcomes[url]
                exporter.SCRAPE_DURATION.observe(outcome.seconds)
                sample: PodSample
                if outcome.error is not None:
                    exporter.count_scrape_error(namespace, name, outcome.error.reason)
                    sample = PodSample(timestamp=now, pod=pod, error=f"{outcome.error.reason}: {outcome.error.detail}")
                else:
                    sample = PodSample(timestamp=now, pod=pod, counters=outcome.counters, speed=outcome.speed)
                if side == "serving":
                    self.windows.extend(self.accumulator.add(sample))
                    if self.pair_serving is not None:  # the same scrape feeds the canary comparison's serving side
                        self._pair_up("serving", self.pair_serving.add(sample))
                elif self.pair_canary is not None:
                    self._pair_up("canary", self.pair_canary.add(sample))

    async def _query_prometheus(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]], now: float
    ) -> None:
        """With metrics.source Prometheus, each closing window is one set of increase() queries (per side, for a
        canary comparison)."""
        assert self.accumulator is not None
        if now >= self.accumulator.end:
            start, end = self.accumulator.start, self.accumulator.end
            self.accumulator.advance(now)
            pod_names = tuple(sorted(self._targets(spec, pods)))
            self.windows.append(await self._prometheus_window(namespace, name, spec, pod_names, start, end))
            if self.control is not None:  # issue 14 (payoff): the control pods over the same span, queried apart
                control_pods = tuple(sorted(self._targets(spec, pods, self.control.revision)))
                if control_pods:
                    self.control.put(await self._prometheus_window(namespace, name, spec, control_pods, start, end))
        for side, acc, revision in (
            ("serving", self.pair_serving, self.serving_id),
            ("canary", self.pair_canary, self.canary_id),
        ):
            if acc is None or now < acc.end:
                continue
            start, end = acc.start, acc.end
            acc.advance(now)
            pod_names = tuple(sorted(self._targets(spec, pods, revision)))
            self._pair_up(side, [await self._prometheus_window(namespace, name, spec, pod_names, start, end)])

    async def _prometheus_window(  # noqa: PLR0917 - private
        self,
        namespace: str,
        name: str,
        spec: SpeculativeDeploymentSpec,
        pod_names: tuple[str, ...],
        start: float,
        end: float,
    ) -> Window:
        """One window of ``pod_names`` from Prometheus; a failed query is a window that holds and says why."""
        assert spec.metrics.prometheus is not None
        selector = PodSelector(labels=(("namespace", namespace),), pods=pod_names)
        ask = PrometheusAsker(
            POOLS.prometheus_session(),
            str(spec.metrics.prometheus.url),
            timeout=capped_timeout(spec.metrics.timeout_seconds),
            turn=lambda: POOLS.turn(namespace, name),
        )
        try:
            counters = await ask.counters(selector, end - start, at=end)
        except PrometheusQueryError as e:
            exporter.count_scrape_error(namespace, name, "prometheus")
            # The error rides on the window so that status.acceptance.message says which server failed and how.
            error = PodError(pod="prometheus", reason=str(e), count=1)
            return Window(
                start=start,
                end=end,
                counters=None,
                acceptance=None,
                incomplete_pods=("prometheus",),
                errors=(error,),
            )
        try:
            speed = await ask.speed(selector, end - start, at=end)
        except PrometheusQueryError:
            exporter.count_scrape_error(namespace, name, "prometheus")
            speed = None  # the window keeps its acceptance; only its speed is unknown
        return Window.from_counters(start, end, counters, pod_names, speed=speed)

    # ------------------------------------------------------------------ verdict
    def finding(
        self,
        spec: SpeculativeDeploymentSpec,
        namespace: str = "",
        name: str = "",
        validation: Mapping[str, Any] | None = None,
    ) -> MonitorFinding | None:
        """The finding for ``rollout.plan``, with ``status.acceptance`` only when it changed meaningfully.

        ``validation`` is ``status.validation``: while it belongs to the serving revision, its ``parameterRatio``
        (the validator's draft/target parameter estimate) is remembered as that revision's cost of a draft step
        in the depth recommendation (see :meth:`cost_ratio`). The canary's verdict rides along (``canary``) even
        when the serving revision has nothing new to say.
        """
        if not self.serving_id:
            return None
        canary = self.judge_canary(spec)
        performance = self._publish_performance(spec)
        if namespace and name:
            self._export_speed(namespace, name)
        if not self.speculation or self.decision is None:
            if canary is None and performance is None:
                return None
            return MonitorFinding(revision=self.serving_id, canary=canary, performance=performance)
        d = self.decision
        latest = next((w for w in reversed(self.windows) if w.acceptance is not None and w.rate is not None), None)
        acc = latest.acceptance if latest is not None else None
        per_position = acc.per_position if acc is not None else ()
        rec = recommend_depth(per_position, self.cost_ratio(validation)) if per_position else None
        if acc is not None and namespace and name:
            exporter.record_acceptance(namespace, name, acc, rec.k if rec else None)
        trip, trip_reason, message = d.verdict is Verdict.ROLLBACK, None, d.message
        # Issue 14 (payoff): spec.rollback.minSpeedup against the control group trips like a low acceptance rate.
        speed, _ = speed_decision(spec, self.control, self.windows, self.ready_since)
        if not trip and speed is not None and speed.verdict is Verdict.ROLLBACK:
            trip, trip_reason, message = True, str(speed.reason), speed.message
        return MonitorFinding(
            schedule=self._propose(spec, per_position, validation),
            revision=self.serving_id,
            trip=trip,
            trip_reason=trip_reason,
            healthy=d.verdict is Verdict.HEALTHY and not trip,
            healthy_seconds=time.time() - self.healthy_since if self.healthy_since is not None else 0.0,
            message=message,
            acceptance=self._publish(acceptance_status(self.serving_id, d, latest, rec.k if rec else None)),
            canary=canary,
            performance=performance,
        )

    def _propose(
        self, spec: SpeculativeDeploymentSpec, per_position: Sequence[float], validation: Mapping[str, Any] | None
    ) -> ScheduleChoice | None:
        """Issue 14 item 3: the schedule proposed for the serving revision (monitor.proposal), when adaptive is on."""
        adaptive = spec.speculation.adaptive
        if adaptive is None or not adaptive.enabled or not per_position or self.serving_id is None:
            return None
        self.cost_ratio(validation)  # remembers the serving revision's own estimate while status.validation is its
        return propose_schedule(
            spec,
            per_position,
            self.cost_ratios.get(self.serving_id),  # its own estimate, or none (never another revision's)
            self.speedup,
            self.serving_schedule,
        )

    def _publish_performance(self, spec: SpeculativeDeploymentSpec) -> dict[str, Any] | None:
        """status.performance of the serving revision, rewritten only when it changed meaningfully; None until a
        window after warm-up measured its speed (warm-up traffic is not the revision's speed, and the status stays
        untouched while it lasts). The speedup is ``speed_decision``'s: the windows the minSpeedup rule judged, pooled
        (None without a control group)."""
        assert self.serving_id is not None
        if self.ready_since is None:
            return self.performance
        judged = [w for w in self.windows if w.start >= self.ready_since + float(spec.rollback.warmup_seconds)]
        latest = latest_with_tokens(judged)
        if latest is None and self.performance is None:
            return None
        # Issue 14 (payoff): the serving windows beside their control twins (monitor.control), with a control group.
        _, self.speedup = speed_decision(spec, self.control, self.windows, self.ready_since)
        candidate = performance_status(self.serving_id, latest, self.speedup)
        if meaningful(self.performance, candidate):
            model = PerformanceStatus.model_validate(candidate)
            self.performance = model.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
        return self.performance

    def _export_speed(self, namespace: str, name: str) -> None:
        """The operator's own per-revision speed gauges: the serving revision's and, while compared, the canary's."""
        revisions: dict[str, Window | None] = {}
        if self.serving_id is not None:
            revisions[self.serving_id] = latest_with_tokens(self.windows)
        if self.canary_id is not None:
            revisions[self.canary_id] = latest_with_tokens([p.canary for p in self.pairs])
        exporter.record_speed(
            namespace, name, {rev: (w.speed if w is not None else None) for rev, w in revisions.items()}
        )

    def _publish(self, candidate: dict[str, Any]) -> dict[str, Any] | None:
        """``candidate`` when it differs meaningfully from what was published last, else that (see ``_meaningful``)."""
        if self._meaningful(candidate):
            model = AcceptanceStatus.model_validate(candidate)
            self.published = model.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
        return self.published

    def _meaningful(self, candidate: Mapping[str, Any]) -> bool:
        old = self.published
        if old is None:
            return True
        for key in ("revision", "verdict", "reason", "podsCounted", "recommendedNumSpeculativeTokens"):
            if old.get(key) != candidate.get(key):
                return True
        # While nothing qualifies, the message is the only place that says why (HTTP 500, a page that does not
        # parse, no traffic); it stays the same while the situation does, so following it costs no steady writes.
        if candidate.get("reason") == str(Reason.NO_DATA) and old.get("message") != candidate.get("message"):
            return True
        for key in ("rate", "meanAcceptedLength"):
            a, b = old.get(key), candidate.get(key)
            if (a is None) != (b is None):
                return True
            # The mean accepted length (1..k+1) moves k times as much as the rate for the same change in accepted
            # tokens, so it is compared relative to its size: the same sensitivity as the rate, not k times more.
            tolerance = RATE_EPSILON * (max(1.0, abs(float(a))) if key == "meanAcceptedLength" and a is not None else 1)
            if a is not None and b is not None and abs(float(a) - float(b)) >= tolerance:
                return True
        return False

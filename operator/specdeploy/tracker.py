"""Per-object acceptance tracking: scrape the serving pods, close windows, ask the decision, remember the verdict.

This is the stateful glue between the reconcile daemon and the pure ``monitor`` package. It holds, in memory,
the window accumulator and the closed windows of the revision that serves now; it does the only I/O of the
monitor (HTTP scrapes of pods, or PromQL queries) and turns the decision into the ``MonitorFinding`` that
``rollout.plan`` acts on.

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
from specdeploy.monitor import exporter
from specdeploy.monitor.decision import Decision, Policy, Reason, Verdict, decide
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.monitor.pools import POOLS, capped_timeout, scrape_object
from specdeploy.monitor.prometheus_source import PodSelector, PrometheusQueryError, query_window
from specdeploy.monitor.speedup import recommend_depth
from specdeploy.monitor.window import PodError, PodSample, Window, WindowAccumulator
from specdeploy.rollout.history import ServingChoice
from specdeploy.rollout.progress import fully_ready

# Cost of one draft step relative to one target step when the parameter ratio is unknown (Leviathan et al.'s c).
DEFAULT_COST_RATIO = 0.1
# Keep at most this many closed windows (the decision looks at the last consecutiveWindows qualifying ones).
MAX_WINDOWS = 64
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


def _draft_cost(validation: Mapping[str, Any] | None, serving_id: str) -> float:
    """The cost of a draft step relative to a target step: the validator's estimate for this revision, else 0.1."""
    if validation and validation.get("revision") == serving_id:
        ratio = validation.get("parameterRatio")
        if isinstance(ratio, int | float) and not isinstance(ratio, bool) and math.isfinite(ratio) and ratio > 0:
            return float(ratio)
    return DEFAULT_COST_RATIO


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
        if self.serving_id is None:
            return
        replicas = int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
        ready = replicas > 0 and fully_ready(deployment, self.serving_id, replicas)
        if ready and self.ready_since is None:
            self.ready_since = now
        elif not ready and int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0) == 0:
            self.ready_since = None

    # ------------------------------------------------------------------ scraping
    async def scrape(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]]
    ) -> None:
        """One scrape interval: read every ready pod of the serving revision, close windows, decide."""
        if not self.serving_id or not self.speculation:
            return
        now = time.time()
        window_seconds = float(spec.rollback.window_seconds)
        if self.accumulator is None or self.accumulator.window_seconds != window_seconds:
            self.accumulator = WindowAccumulator(window_seconds, start=now)
            self.windows = []
        if str(spec.metrics.source) == "Prometheus" and spec.metrics.prometheus is not None:
            await self._query_prometheus(namespace, name, spec, pods, now)
        else:
            await self._scrape_pods(namespace, name, spec, pods, now)
        self.windows.extend(self.accumulator.advance(time.time()))
        del self.windows[:-MAX_WINDOWS]
        self.decision = decide(policy_of(spec), self.ready_since, time.time(), self.windows)
        if self.decision.verdict is Verdict.HEALTHY:
            self.healthy_since = self.healthy_since or time.time()
        else:
            self.healthy_since = None

    def _targets(self, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        port = int(spec.serving.port)
        return {
            p["name"]: f"http://{p['ip']}:{port}/metrics"
            for p in pods
            if p.get("component") == "server"
            and p.get("revision") == self.serving_id
            and p.get("ready")
            and p.get("ip")
        }

    async def _scrape_pods(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]], now: float
    ) -> None:
        assert self.accumulator is not None
        targets = self._targets(spec, pods)
        if not targets:
            return
        # Connection budgets, timeout cap, bounded pages: see monitor.pools (issue 11, items 3 and 5).
        outcomes = await scrape_object(POOLS, namespace, name, targets.values(), timeout=spec.metrics.timeout_seconds)
        for pod, url in targets.items():
            outcome = outcomes[url]
            exporter.SCRAPE_DURATION.observe(outcome.seconds)
            sample: PodSample
            if outcome.error is not None:
                exporter.count_scrape_error(namespace, name, outcome.error.reason)
                sample = PodSample(timestamp=now, pod=pod, error=f"{outcome.error.reason}: {outcome.error.detail}")
            else:
                sample = PodSample(timestamp=now, pod=pod, counters=outcome.counters)
            self.windows.extend(self.accumulator.add(sample))

    async def _query_prometheus(
        self, namespace: str, name: str, spec: SpeculativeDeploymentSpec, pods: Sequence[Mapping[str, Any]], now: float
    ) -> None:
        """With metrics.source Prometheus, each closing window is one set of increase() queries."""
        assert self.accumulator is not None and spec.metrics.prometheus is not None
        if now < self.accumulator.end:
            return
        pod_names = tuple(sorted(self._targets(spec, pods)))
        selector = PodSelector(labels=(("namespace", namespace),), pods=pod_names)
        start, end = self.accumulator.start, self.accumulator.end
        self.accumulator.advance(now)
        try:
            counters = await query_window(
                POOLS.prometheus_session(),
                str(spec.metrics.prometheus.url),
                selector,
                end - start,
                at=end,
                timeout=capped_timeout(spec.metrics.timeout_seconds),
                turn=lambda: POOLS.turn(namespace, name),
            )
        except PrometheusQueryError as e:
            exporter.count_scrape_error(namespace, name, "prometheus")
            # The error rides on the window so that status.acceptance.message says which server failed and how.
            error = PodError(pod="prometheus", reason=str(e), count=1)
            self.windows.append(
                Window(
                    start=start,
                    end=end,
                    counters=None,
                    acceptance=None,
                    incomplete_pods=("prometheus",),
                    errors=(error,),
                )
            )
            return
        self.windows.append(Window.from_counters(start, end, counters, pod_names))

    # ------------------------------------------------------------------ verdict
    def finding(
        self,
        spec: SpeculativeDeploymentSpec,
        namespace: str = "",
        name: str = "",
        validation: Mapping[str, Any] | None = None,
    ) -> MonitorFinding | None:
        """The finding for ``rollout.plan``, with ``status.acceptance`` only when it changed meaningfully.

        ``validation`` is ``status.validation``: when it belongs to the serving revision, its ``parameterRatio``
        (the validator's draft/target parameter estimate) is the cost of a draft step in the depth recommendation.
        """
        if not self.serving_id or not self.speculation or self.decision is None:
            return None
        d = self.decision
        latest = next((w for w in reversed(self.windows) if w.acceptance is not None and w.rate is not None), None)
        acc = latest.acceptance if latest is not None else None
        per_position = acc.per_position if acc is not None else ()
        rec = recommend_depth(per_position, _draft_cost(validation, self.serving_id)) if per_position else None
        if acc is not None and namespace and name:
            exporter.record_acceptance(namespace, name, acc, rec.k if rec else None)
        return MonitorFinding(
            revision=self.serving_id,
            trip=d.verdict is Verdict.ROLLBACK,
            healthy=d.verdict is Verdict.HEALTHY,
            healthy_seconds=time.time() - self.healthy_since if self.healthy_since is not None else 0.0,
            message=d.message,
            acceptance=self._publish(acceptance_status(self.serving_id, d, latest, rec.k if rec else None)),
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

"""The control group beside the serving revision (issue 14 item 2): its windows, paired with the serving ones.

The tracker (the monitor's stateful shell) keeps one :class:`ControlGroup` while the serving revision speculates and
``spec.speculation.control`` has pods. The control pods are scraped in the same interval as the serving pods and
accumulated into windows that tile time exactly like the serving revision's (same length, same start), so a serving
window and the control window with the same start cover the same span of the same traffic. With metrics.source
Prometheus each control window is one set of queries over the serving window's span, selecting the control pods
(:meth:`ControlGroup.put`). Each pair becomes one
``monitor.payoff.measure`` comparison; ``monitor.payoff.decide_speed`` turns the comparisons since warm-up into the
``spec.rollback.minSpeedup`` verdict, and the windows it judged (the last ``consecutiveWindows`` that qualified),
pooled, are the speedup status.performance publishes and the adaptive schedule is computed from: one computation.

Time per output token is compared like with like: the request histogram's mean when both windows have one, else the
inter-token latency's when both have that (with speculation one engine step gives several tokens, so the two series
are never mixed in one ratio). A window without speed series, without the load gauge, or without a pod of either
group compares nothing (it does not qualify: no data holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.monitor.payoff import Payoff, SpeedDecision, SpeedObservation, decide_speed, measure, pool
from specdeploy.monitor.speed import Speed
from specdeploy.monitor.window import PodSample, Window, WindowAccumulator

#: Closed control windows kept (the decision looks at most at consecutiveWindows qualifying ones, <= 100).
MAX_CONTROL_WINDOWS = 128


def _observations(ours: Speed | None, theirs: Speed | None) -> tuple[list[SpeedObservation], list[SpeedObservation]]:
    """The two sides of one window pair as observations, with the same latency series on both sides."""
    if ours is None or theirs is None:
        return [], []
    requests = ours.request_tpot_seconds is not None and theirs.request_tpot_seconds is not None
    if not requests and (ours.inter_token_seconds is None or theirs.inter_token_seconds is None):
        return [], []

    def one(speed: Speed) -> list[SpeedObservation]:
        tpot = speed.request_tpot_seconds if requests else speed.inter_token_seconds
        if speed.output_tokens is None or speed.running_requests is None or tpot is None:
            return []
        samples = speed.requests if requests else speed.steps
        return [SpeedObservation(speed.running_requests, tpot, speed.output_tokens, samples)]

    return one(ours), one(theirs)


def compare(serving: Window, control: Window, min_tokens: float) -> Payoff:
    """One pair of windows over the same span: the speculative pods' speed against the control pods'. Its span is
    the scrapes the speculative pods' increase lies between (the window's bounds when those are not known)."""
    ours, theirs = _observations(serving.speed, control.speed)
    speed = serving.speed
    start = speed.since if speed is not None and speed.since is not None else serving.start
    end = speed.until if speed is not None and speed.until is not None else serving.end
    return measure(ours, theirs, min_tokens, start=start, end=end)


@dataclass
class ControlGroup:
    """The control pods' windows (revision label ``revision``), tiled like the serving revision's accumulator."""

    revision: str
    accumulator: WindowAccumulator
    closed: dict[float, Window]

    @classmethod
    def beside(cls, revision: str, serving: WindowAccumulator) -> ControlGroup:
        """Start at the serving accumulator's current window, with its length: the windows then share starts."""
        return cls(revision, WindowAccumulator(serving.window_seconds, start=serving.start), {})

    def add(self, sample: PodSample) -> None:
        self._keep(self.accumulator.add(sample))

    def advance(self, now: float) -> None:
        self._keep(self.accumulator.advance(now))

    def put(self, window: Window) -> None:
        """A control window made elsewhere over a serving window's span (metrics.source Prometheus)."""
        self._keep([window])

    def _keep(self, windows: Sequence[Window]) -> None:
        for window in windows:
            self.closed[window.start] = window
        while len(self.closed) > MAX_CONTROL_WINDOWS:
            del self.closed[min(self.closed)]

    def payoffs(self, serving: Sequence[Window], min_tokens: float, judged_from: float) -> list[Payoff]:
        """The comparison of every serving window since ``judged_from`` that has its control twin, oldest first."""
        return [
            compare(window, self.closed[window.start], min_tokens)
            for window in serving
            if window.start >= judged_from and window.start in self.closed
        ]


def speed_decision(
    spec: SpeculativeDeploymentSpec, group: ControlGroup | None, serving: Sequence[Window], ready_since: float | None
) -> tuple[SpeedDecision | None, Payoff | None]:
    """The minSpeedup verdict (None when minSpeedup is unset or nothing is compared yet) and the measured speedup:
    the last ``consecutiveWindows`` qualifying comparisons since warm-up, pooled (None before the first)."""
    control = spec.speculation.control
    if group is None or control is None or ready_since is None:
        return None, None
    payoffs = group.payoffs(serving, control.min_output_tokens, ready_since + spec.rollback.warmup_seconds)
    judged = [p for p in payoffs if p.qualifies][-spec.rollback.consecutive_windows :]
    pooled = pool(judged, control.min_output_tokens) if judged else None
    if spec.rollback.min_speedup is None or not payoffs:
        return None, pooled
    return decide_speed(spec.rollback.min_speedup, spec.rollback.consecutive_windows, payoffs), pooled

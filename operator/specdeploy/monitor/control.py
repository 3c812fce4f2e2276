"""The control group beside the serving revision (issue 14 item 2): its windows, paired with the serving ones.

The tracker (the monitor's stateful shell) keeps one :class:`ControlGroup` while the serving revision speculates and
``spec.speculation.control`` has pods. The control pods are scraped in the same interval as the serving pods and
accumulated into windows that tile time exactly like the serving revision's (same length, same start), so a serving
window and the control window with the same start cover the same span of the same traffic. Each pair becomes one
``monitor.payoff.measure`` comparison; ``monitor.payoff.decide_speed`` turns the comparisons since warm-up into the
``spec.rollback.minSpeedup`` verdict.

Time per output token is compared like with like: the request histogram's mean when both windows have one, else the
inter-token latency's when both have that (with speculation one engine step gives several tokens, so the two series
are never mixed in one ratio). A window without speed series, without the load gauge, or without a pod of either
group compares nothing (it does not qualify: no data holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.monitor.payoff import Payoff, SpeedDecision, SpeedObservation, decide_speed, measure
from specdeploy.monitor.speed import Speed
from specdeploy.monitor.window import PodSample, Window, WindowAccumulator

#: Closed control windows kept (the decision looks at most at consecutiveWindows qualifying ones, <= 100).
MAX_CONTROL_WINDOWS = 128


def _observations(ours: Speed | None, theirs: Speed | None) -> tuple[list[SpeedObservation], list[SpeedObservation]]:
    """The two sides of one window pair as observations, with the same latency series on both sides."""
    if ours is None or theirs is None:
        return [], []
    if ours.request_tpot_seconds is not None and theirs.request_tpot_seconds is not None:
        mine, other = ours.request_tpot_seconds, theirs.request_tpot_seconds
    elif ours.inter_token_seconds is not None and theirs.inter_token_seconds is not None:
        mine, other = ours.inter_token_seconds, theirs.inter_token_seconds
    else:
        return [], []

    def one(speed: Speed, tpot: float) -> list[SpeedObservation]:
        if speed.output_tokens is None or speed.running_requests is None:
            return []
        return [SpeedObservation(running=speed.running_requests, tpot=tpot, tokens=speed.output_tokens)]

    return one(ours, mine), one(theirs, other)


def compare(serving: Window, control: Window, min_tokens: float) -> Payoff:
    """One pair of windows over the same span: the speculative pods' speed against the control pods'."""
    ours, theirs = _observations(serving.speed, control.speed)
    return measure(ours, theirs, min_tokens, start=serving.start, end=serving.end)


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
    """The minSpeedup verdict (None when minSpeedup is unset or nothing is compared yet) and the latest comparison
    that qualified (for status.performance), from the serving windows since warm-up and their control twins."""
    control = spec.speculation.control
    if group is None or control is None or ready_since is None:
        return None, None
    payoffs = group.payoffs(serving, control.min_output_tokens, ready_since + spec.rollback.warmup_seconds)
    latest = next((p for p in reversed(payoffs) if p.qualifies), None)
    if spec.rollback.min_speedup is None or not payoffs:
        return None, latest
    return decide_speed(spec.rollback.min_speedup, spec.rollback.consecutive_windows, payoffs), latest


def paired_speeds(group: ControlGroup | None, serving: Sequence[Window]) -> tuple[list[Speed], list[Speed]]:
    """The speeds of the serving windows that have a control twin with speed, and their twins', aligned (for
    ``monitor.performance.measured_speedup``, which pairs them by position)."""
    if group is None:
        return [w.speed for w in serving if w.speed is not None], []
    ours: list[Speed] = []
    theirs: list[Speed] = []
    for window in serving:
        twin = group.closed.get(window.start)
        if window.speed is not None and twin is not None and twin.speed is not None:
            ours.append(window.speed)
            theirs.append(twin.speed)
    return ours, theirs


def performance_speedup(latest: Payoff | None) -> dict[str, object]:
    """The ``speedup`` and ``speedupByLoad`` of status.performance from the latest qualifying comparison."""
    if latest is None or latest.speedup is None:
        return {"speedup": None, "speedupByLoad": None}
    return {
        "speedup": round(latest.speedup, 3),
        "speedupByLoad": [b.status() for b in latest.by_load if b.speedup is not None],
    }

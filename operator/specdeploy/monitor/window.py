"""Accumulate per-pod scrapes into fixed windows of ``windowSeconds``: the unit the rollback decision judges.

Why windows and not the latest scrape: one scrape interval of a lightly loaded pod holds a handful of drafts, and
counters only mean something as a difference between two readings. A window is the increase, per pod, from the
pod's last good reading before the window (or its first reading inside it, for a pod seen for the first time) to
its last good reading inside it, summed over the pods that have both. Consecutive windows therefore tile time with
nothing counted twice or lost, and a pod restart is handled by ``acceptance.delta``.

Pure: the caller feeds :class:`PodSample` events (timestamp, pod, parsed counters or an error reason) and gets the
windows that closed. Windows are aligned to ``start + n * window_seconds``; a window closes when an event (or
``advance(now)``) reaches its end. After a gap with no events the next window is the one containing the new time
(empty windows in the gap are not emitted: they would only say "no data").

What a window records beyond the numbers: the pods counted, the pods that errored (reason and count), the pods
that errored *and could not be counted* (``incomplete_pods``: such a window does not show the whole revision, and the
decision holds on it), and the pods whose page had no spec-decode series. While a window is open it keeps, per
pod, only its first and last good reading and its failures (count and last reason), not every scrape.
A pod seen for the first time is counted
from its second good reading. A pod with no event in a window is forgotten (it was deleted or is not ready). A pod
whose counters went down without a restart (``acceptance.inconsistency``) is an incomplete pod, not a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from specdeploy.monitor.acceptance import Acceptance, combine, delta, inconsistency, summarize
from specdeploy.monitor.parse import SpecDecodeCounters
from specdeploy.monitor.speed import PodSpeed, Speed, SpeedCounters, speed_delta, summarize_speed


@dataclass(frozen=True)
class PodSample:
    """One scrape of one pod: counters, or ``counters=None`` (no spec-decode series), or an ``error`` reason;
    ``speed``: its latency, token and load series (``monitor.speed``), None when the page has none."""

    timestamp: float
    pod: str
    counters: SpecDecodeCounters | None = None
    error: str | None = None
    speed: SpeedCounters | None = None


@dataclass(frozen=True)
class PodError:
    pod: str
    reason: str
    count: int


@dataclass(frozen=True)
class Window:
    """A closed window: summed per-pod increases over ``[start, end)`` and who contributed."""

    start: float
    end: float
    counters: SpecDecodeCounters | None
    acceptance: Acceptance | None
    pods_counted: tuple[str, ...] = ()
    errors: tuple[PodError, ...] = ()
    incomplete_pods: tuple[str, ...] = ()
    pods_without_data: tuple[str, ...] = field(default=())
    speed: Speed | None = None  # time per output token, tokens/s, load (monitor.speed); None: no speed series

    @property
    def rate(self) -> float | None:
        return None if self.acceptance is None else self.acceptance.rate

    @property
    def draft_tokens(self) -> float | None:
        return None if self.acceptance is None else self.acceptance.draft_tokens

    @property
    def accepted_tokens(self) -> float | None:
        return None if self.acceptance is None else self.acceptance.accepted_tokens

    @classmethod
    def from_counters(
        cls,
        start: float,
        end: float,
        counters: SpecDecodeCounters | None,
        pods_counted: Sequence[str] = (),
        speed: Speed | None = None,
    ) -> Window:
        """A window whose summed increase is already known (e.g. from PromQL ``increase()``)."""
        return cls(
            start=start,
            end=end,
            counters=counters,
            acceptance=None if counters is None else summarize(counters),
            pods_counted=tuple(pods_counted),
            speed=speed,
        )


class WindowAccumulator:
    """Collects :class:`PodSample` events and closes :class:`Window` objects; holds no clock and does no I/O."""

    def __init__(self, window_seconds: float, start: float) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        self.window_seconds = float(window_seconds)
        self.start = float(start)
        self.late_events = 0
        self._baseline: dict[str, PodSample] = {}
        self._speed_baseline: dict[str, PodSample] = {}
        self._pods: dict[str, _PodReadings] = {}

    @property
    def end(self) -> float:
        return self.start + self.window_seconds

    def add(self, sample: PodSample) -> list[Window]:
        """Record one scrape; returns the window it closed, if its timestamp passed the current window's end.

        An event older than the current window is dropped and counted in ``late_events``.
        """
        closed = self.advance(sample.timestamp)
        if sample.timestamp < self.start:
            self.late_events += 1
        else:
            self._pods.setdefault(sample.pod, _PodReadings()).add(sample)
        return closed

    def advance(self, now: float) -> list[Window]:
        """Close the current window if ``now`` reached its end, then move to the window containing ``now``."""
        if now < self.end:
            return []
        closed = self._close()
        skipped = int((now - self.end) // self.window_seconds)
        self.start = self.end + skipped * self.window_seconds
        return [closed]

    def _close(self) -> Window:
        by_pod, self._pods = self._pods, {}
        deltas: dict[str, SpecDecodeCounters] = {}
        errors: list[PodError] = []
        incomplete: list[str] = []
        without_data: list[str] = []
        baseline: dict[str, PodSample] = {}
        speeds: list[PodSpeed] = []
        speed_baseline: dict[str, PodSample] = {}
        for pod, readings in sorted(by_pod.items()):
            part, keep_speed = self._speed_of(pod, readings)
            if part is not None:
                speeds.append(part)
            if keep_speed is not None:
                speed_baseline[pod] = keep_speed
            if readings.failed:
                assert readings.last_failed is not None
                errors.append(PodError(pod=pod, reason=str(readings.last_failed.error), count=readings.failed))
            first, last = readings.first_good, readings.last_good
            base = self._baseline.get(pod) or first
            if base is not None and last is not None and last is not base:
                assert base.counters is not None and last.counters is not None
                broken = inconsistency(base.counters, last.counters)
                if broken is None:
                    deltas[pod] = delta(base.counters, last.counters)
                else:  # the page contradicts itself: count nothing from it, hold, and start over from here
                    errors.append(PodError(pod=pod, reason=f"counters: {broken}", count=1))
                    incomplete.append(pod)
            elif readings.failed:
                incomplete.append(pod)
            elif last is None:
                without_data.append(pod)
            keep = last or base
            if keep is not None:
                baseline[pod] = keep
        self._baseline = baseline
        self._speed_baseline = speed_baseline
        deltas, mixed = _one_engine(deltas)
        for pod in mixed:
            errors.append(PodError(pod=pod, reason="engine_mismatch", count=1))
            incomplete.append(pod)
        counters = combine(deltas.values())
        return Window(
            start=self.start,
            end=self.end,
            counters=counters,
            acceptance=None if counters is None else summarize(counters),
            pods_counted=tuple(deltas),
            errors=tuple(errors),
            incomplete_pods=tuple(sorted(incomplete)),
            pods_without_data=tuple(without_data),
            speed=summarize_speed(speeds),
        )

    def _speed_of(self, pod: str, readings: _PodReadings) -> tuple[PodSpeed | None, PodSample | None]:
        """One pod's speed increase in the closing window (same tiling as the counters), and its next baseline."""
        first, last = readings.first_speed, readings.last_speed
        base = self._speed_baseline.get(pod) or first
        keep = last or base
        if base is None or last is None or last is base:
            return None, keep
        assert base.speed is not None and last.speed is not None
        increase = speed_delta(base.speed, last.speed)
        if increase is None:
            return None, keep
        return (
            PodSpeed(
                increase=increase,
                seconds=last.timestamp - base.timestamp,
                running=readings.running_sum / readings.gauges_running if readings.gauges_running else None,
                waiting=readings.waiting_sum / readings.gauges_waiting if readings.gauges_waiting else None,
                since=base.timestamp,
                until=last.timestamp,
            ),
            keep,
        )


class _PodReadings:
    """What a window keeps of one pod's scrapes: its first and last good reading and its failures.

    Not every sample: a window's increase is last minus baseline (or first), so the readings in between are
    dropped as they arrive, and memory per pod stays at two readings whatever the scrape interval.
    Ties in time keep the order of arrival (the first of equal times is first, the last is last).
    """

    __slots__ = (
        "failed",
        "first_good",
        "first_speed",
        "gauges_running",
        "gauges_waiting",
        "last_failed",
        "last_good",
        "last_speed",
        "running_sum",
        "waiting_sum",
    )

    def __init__(self) -> None:
        self.first_good: PodSample | None = None
        self.last_good: PodSample | None = None
        self.last_failed: PodSample | None = None
        self.failed = 0
        # Speed series: first and last reading, and the load gauges' running sums (their mean over the window).
        self.first_speed: PodSample | None = None
        self.last_speed: PodSample | None = None
        self.gauges_running = 0
        self.gauges_waiting = 0
        self.running_sum = 0.0
        self.waiting_sum = 0.0

    def add(self, sample: PodSample) -> None:
        if sample.error is not None:
            self.failed += 1
            if self.last_failed is None or sample.timestamp >= self.last_failed.timestamp:
                self.last_failed = sample
        elif sample.counters is not None:
            if self.first_good is None or sample.timestamp < self.first_good.timestamp:
                self.first_good = sample
            if self.last_good is None or sample.timestamp >= self.last_good.timestamp:
                self.last_good = sample
        if sample.error is None and sample.speed is not None:
            if self.first_speed is None or sample.timestamp < self.first_speed.timestamp:
                self.first_speed = sample
            if self.last_speed is None or sample.timestamp >= self.last_speed.timestamp:
                self.last_speed = sample
            if sample.speed.running is not None:
                self.gauges_running += 1
                self.running_sum += sample.speed.running
            if sample.speed.waiting is not None:
                self.gauges_waiting += 1
                self.waiting_sum += sample.speed.waiting


def _one_engine(deltas: dict[str, SpecDecodeCounters]) -> tuple[dict[str, SpecDecodeCounters], list[str]]:
    """Pods of one revision run one vLLM; if V1 and V0 pods ever mix, count the V1 ones and flag the others."""
    engines = {c.engine for c in deltas.values()}
    if len(engines) <= 1:
        return deltas, []
    kept = {pod: c for pod, c in deltas.items() if c.engine == "v1"}
    return kept, sorted(pod for pod in deltas if pod not in kept)

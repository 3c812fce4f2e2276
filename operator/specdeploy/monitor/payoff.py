"""Does speculation pay: the speedup of the speculative pods over the control pods, and what to do about it.

Why measure against a control group: acceptance is a proxy. Under load the verification of k extra tokens per
sequence stops being free, and a draft that is too costly makes serving slower at any acceptance rate (on the CPU
build a copy draft with acceptance 1.00 served 0.58x at 8 concurrent requests). The only honest speedup is the time
per output token of pods with speculation off, serving the same traffic at the same time, over ours.

Why per load bucket: the two groups get different shares of the traffic and finish at different speeds, so their
mean running requests differ; a speculative engine at batch 2 must be compared with a control engine at batch 2,
not with one at batch 6 (where the control has no window in a bucket, its windows within a factor of 2 of the
load stand in: see ``_near``). An observation is one pod over one window (its mean running requests, its mean time per
output token, its output tokens); observations are grouped by running requests into buckets that are also the
ranges of vLLM's ``num_speculative_tokens_per_batch_size``, so a measurement per bucket maps onto the schedule.

Three pure parts, each a function of data:

* :func:`measure`: one window's observations of both groups -> speedup overall and per bucket (``Payoff``).
* :func:`pool`: several windows' comparisons -> one over all their observations (status.performance publishes the
  windows the decision judged, pooled: one number over all their tokens rather than the last window's alone).
* :func:`decide_speed`: the last ``consecutiveWindows`` qualifying windows all below ``rollback.minSpeedup`` ->
  roll back with reason ``SlowerThanControl`` (the same rules as the acceptance decision in ``decision.py``:
  windows that do not qualify hold, they neither count nor clear).
* :func:`choose_schedule` and :func:`next_schedule`: a ``num_speculative_tokens_per_batch_size`` schedule with 0 in
  the buckets where speculation loses, changed at most once per ``adaptive.minIntervalSeconds``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from specdeploy.api.payoff import MAX_BATCH_SIZE
from specdeploy.monitor.decision import Verdict
from specdeploy.monitor.speedup import recommend_depth

#: Running-request ranges (inclusive), powers of two: fine where depth matters most (small batches), bounded count.
DEFAULT_BUCKETS: Final[tuple[tuple[int, int], ...]] = (
    (1, 1),
    (2, 3),
    (4, 7),
    (8, 15),
    (16, 31),
    (32, 63),
    (64, 127),
    (128, MAX_BATCH_SIZE),
)


#: A bucket the control pods did not run in is compared with control windows at most this factor of load away.
LOAD_TOLERANCE: Final = 2.0


@dataclass(frozen=True)
class SpeedObservation:
    """One pod (or group) over one window: mean running requests, mean time per output token (seconds), output
    tokens, and how many histogram observations the mean is over (``samples``: finished requests for the request
    histogram, engine steps for the inter-token one). Means of several observations are weighted by ``samples``,
    which makes them the histogram's own mean over all of them (sum over count); without it, by ``tokens``."""

    running: float
    tpot: float
    tokens: float
    samples: float | None = None


@dataclass(frozen=True)
class BucketSpeedup:
    """The comparison at one load level; ``speedup`` is None unless both groups generated tokens there."""

    start: int
    end: int
    speedup: float | None
    tokens: float  # output tokens of the speculative pods in this bucket
    control_tokens: float
    tpot: float | None
    control_tpot: float | None

    def status(self) -> dict[str, Any]:
        """An entry of status.performance.speedupByLoad (the pinned ``{running range, speedup, tokens}``)."""
        return {
            "running": f"{self.start}" if self.start == self.end else f"{self.start}-{self.end}",
            "speedup": None if self.speedup is None else round(self.speedup, 3),
            "tokens": int(self.tokens),
        }


#: Per bucket (its index), our observations and the control observations compared with them.
Matched = tuple[tuple[int, tuple[SpeedObservation, ...], tuple[SpeedObservation, ...]], ...]


@dataclass(frozen=True)
class Payoff:
    """One window's comparison (or several pooled). ``qualifies`` when both groups generated at least the minimum
    of tokens and met at one load level at least; ``speedup`` is then the speculative-token-weighted mean of the
    bucket speedups. ``start``/``end``: the span the observations cover; ``windows``: how many were pooled."""

    speedup: float | None
    by_load: tuple[BucketSpeedup, ...]
    tokens: float
    control_tokens: float
    qualifies: bool
    message: str
    start: float | None = None
    end: float | None = None
    matched: Matched = ()
    windows: int = 1


def _bucket_of(running: float, buckets: Sequence[tuple[int, int]]) -> int:
    level = max(1, round(running))  # an idle-looking mean (< 0.5) still generated tokens at batch 1
    for index, (start, end) in enumerate(buckets):
        if start <= level <= end:
            return index
    return len(buckets) - 1


def _mean_tpot(observations: Sequence[SpeedObservation]) -> tuple[float | None, float]:
    tokens = sum(o.tokens for o in observations)
    weights = [o.samples if o.samples is not None and o.samples > 0 else o.tokens for o in observations]
    if tokens <= 0 or sum(weights) <= 0:
        return None, 0.0
    return sum(o.tpot * w for o, w in zip(observations, weights, strict=True)) / sum(weights), tokens


def _usable(observations: Sequence[SpeedObservation]) -> list[SpeedObservation]:
    return [
        o
        for o in observations
        if math.isfinite(o.tpot)
        and o.tpot > 0
        and math.isfinite(o.tokens)
        and o.tokens > 0
        and math.isfinite(o.running)
    ]


def measure(
    speculative: Sequence[SpeedObservation],
    control: Sequence[SpeedObservation],
    min_tokens: float,
    *,
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
    start: float | None = None,
    end: float | None = None,
) -> Payoff:
    """Speedup = control's mean time per output token / ours, per bucket of running requests and overall."""
    ours, theirs = _usable(speculative), _usable(control)
    matched: list[tuple[int, tuple[SpeedObservation, ...], tuple[SpeedObservation, ...]]] = []
    for index in range(len(buckets)):
        mine = [o for o in ours if _bucket_of(o.running, buckets) == index]
        other = [o for o in theirs if _bucket_of(o.running, buckets) == index]
        if mine and not other:
            other = _near(mine, theirs)
        elif not mine:
            continue
        matched.append((index, tuple(mine), tuple(other)))
    return _compare(
        tuple(matched),
        sum(o.tokens for o in ours),
        sum(o.tokens for o in theirs),
        min_tokens,
        buckets,
        (start, end, 1),
        levels=(_levels(ours), _levels(theirs)),
    )


def pool(
    payoffs: Sequence[Payoff], min_tokens: float, *, buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS
) -> Payoff:
    """One comparison over ``payoffs`` (oldest first, measured with the same ``buckets``), spanning from the
    first's start to the last's end: each bucket's speedup is over every window's observations at that load, each
    compared with the control observations its own window matched to it (the same pairs the windows judged), not
    a mean of the windows' ratios."""
    if not payoffs:
        raise ValueError("pool needs at least one comparison")
    merged: dict[int, tuple[list[SpeedObservation], list[SpeedObservation]]] = {}
    for payoff in payoffs:
        for index, mine, other in payoff.matched:
            ours, theirs = merged.setdefault(index, ([], []))
            ours.extend(mine)
            theirs.extend(other)
    return _compare(
        tuple((index, tuple(mine), tuple(other)) for index, (mine, other) in sorted(merged.items())),
        sum(p.tokens for p in payoffs),
        sum(p.control_tokens for p in payoffs),
        min_tokens,
        buckets,
        (payoffs[0].start, payoffs[-1].end, sum(p.windows for p in payoffs)),
    )


def _compare(  # noqa: PLR0917 - private
    matched: Matched,
    total: float,
    control_total: float,
    min_tokens: float,
    buckets: Sequence[tuple[int, int]],
    span: tuple[float | None, float | None, int],
    *,
    levels: tuple[str, str] | None = None,
) -> Payoff:
    """The comparison of matched observations: per bucket, control's mean time per output token over ours."""
    by_load: list[BucketSpeedup] = []
    weighted, weight = 0.0, 0.0
    for index, mine, other in matched:
        low, high = buckets[index]
        tpot, tokens = _mean_tpot(mine)
        control_tpot, control_tokens = _mean_tpot(other)
        ratio = control_tpot / tpot if tpot and control_tpot else None
        by_load.append(BucketSpeedup(low, high, ratio, tokens, control_tokens, tpot, control_tpot))
        if ratio is not None:
            weighted += ratio * tokens
            weight += tokens
    start, end, windows = span
    speedup = weighted / weight if weight > 0 else None
    enough = total >= min_tokens and control_total >= min_tokens
    qualifies = enough and speedup is not None
    where = "in the window" if windows == 1 else f"in {windows} windows"
    if not enough:
        message = (
            f"not compared: {total:,.0f} output tokens from the speculative pods and {control_total:,.0f} from the "
            f"control pods {where}, {min_tokens:,.0f} each needed"
        )
    elif speedup is None:
        seen = f" (running requests {levels[0]} vs {levels[1]})" if levels is not None else ""
        message = f"not compared: the speculative and control pods never ran at the same load {where}{seen}"
    else:
        at = ", ".join(f"{b.speedup:.2f}x at {b.status()['running']} running" for b in by_load if b.speedup is not None)
        message = (
            f"speculation is {speedup:.2f}x the control group's speed (time per output token, same load): {at}; "
            f"over {total:,.0f} speculative and {control_total:,.0f} control output tokens"
            + ("" if windows == 1 else f" in {windows} windows")
        )
    return Payoff(speedup, tuple(by_load), total, control_total, qualifies, message, start, end, matched, windows)


def _near(mine: Sequence[SpeedObservation], theirs: Sequence[SpeedObservation]) -> list[SpeedObservation]:
    """Control observations within a factor ``LOAD_TOLERANCE`` of our mean load, for a bucket the control missed.

    At the same offered traffic the speculative engines run fewer requests at once (they finish them sooner), so a
    window's mean load often falls one bucket below the control's; a factor of 2 still compares like with like.
    """
    tokens = sum(o.tokens for o in mine)
    level = max(1.0, sum(o.running * o.tokens for o in mine) / tokens)
    return [o for o in theirs if max(level, 1.0, o.running) / min(level, max(1.0, o.running)) <= LOAD_TOLERANCE]


def _levels(observations: Sequence[SpeedObservation]) -> str:
    values = sorted({max(1, round(o.running)) for o in observations})
    return ", ".join(str(v) for v in values[:6]) or "none"


class SpeedReason(StrEnum):
    NO_CONTROL = "NoControlData"
    COLLECTING = "CollectingWindows"
    MIXED = "MixedWindows"
    FAST_ENOUGH = "AsFastAsRequired"
    SLOWER = "SlowerThanControl"


@dataclass(frozen=True)
class SpeedDecision:
    """The minSpeedup verdict, shaped like ``decision.Decision`` (verdict, reason code, message with the numbers)."""

    verdict: Verdict
    reason: SpeedReason
    message: str
    threshold: float
    speedup: float | None = None
    qualifying_windows: int = 0
    slow_windows: int = 0


def decide_speed(min_speedup: float, consecutive_windows: int, windows: Sequence[Payoff]) -> SpeedDecision:
    """ROLLBACK when the last ``consecutive_windows`` qualifying windows are all below ``min_speedup``.

    ``windows`` are the comparisons of closed windows after warm-up, oldest first. Windows that do not qualify
    (too few tokens on either side, no common load) hold. HEALTHY when the last K are all at or above.
    """
    if consecutive_windows < 1:
        raise ValueError(f"consecutiveWindows must be >= 1, got {consecutive_windows!r}")
    if not (math.isfinite(min_speedup) and min_speedup > 0):
        raise ValueError(f"minSpeedup must be a positive number, got {min_speedup!r}")
    counted = [w for w in windows if w.qualifies and w.speedup is not None]
    if not counted:
        why = windows[-1].message if windows else "no window has closed"
        return SpeedDecision(Verdict.HOLD, SpeedReason.NO_CONTROL, f"{why}: holding", min_speedup)
    k = consecutive_windows
    recent = counted[-k:]
    slow = [w for w in recent if _speed(w) < min_speedup]
    latest = recent[-1]
    values = ", ".join(f"{_speed(w):.2f}x" for w in recent)

    def judged(verdict: Verdict, reason: SpeedReason, message: str) -> SpeedDecision:
        return SpeedDecision(verdict, reason, message, min_speedup, latest.speedup, len(counted), len(slow))

    if len(recent) == k and len(slow) == k:
        return judged(
            Verdict.ROLLBACK,
            SpeedReason.SLOWER,
            f"speculation is slower than the control group: {_speed(latest):.2f}x its speed, below minSpeedup "
            f"{min_speedup:.2f} in {k} consecutive qualifying window(s) (speedups {values}); latest: {latest.message}",
        )
    if len(recent) == k and not slow:
        return judged(
            Verdict.HEALTHY,
            SpeedReason.FAST_ENOUGH,
            f"speculation is at least minSpeedup {min_speedup:.2f} in the last {k} qualifying window(s) "
            f"(speedups {values})",
        )
    if len(recent) < k:
        return judged(
            Verdict.HOLD,
            SpeedReason.COLLECTING,
            f"{len(recent)} of {k} qualifying window(s) so far (speedups {values}, minSpeedup {min_speedup:.2f})",
        )
    return judged(
        Verdict.HOLD,
        SpeedReason.MIXED,
        f"{len(slow)} of the last {k} qualifying windows are below minSpeedup {min_speedup:.2f} (speedups {values}); "
        f"a rollback needs {k} in a row",
    )


def _speed(window: Payoff) -> float:
    assert window.speedup is not None  # qualifying windows have one
    return window.speedup


Schedule = tuple[tuple[int, int, int], ...]  # vLLM's (range_start, range_end, num_speculative_tokens), merged


@dataclass(frozen=True)
class ScheduleChoice:
    """A schedule and why, in words (for status)."""

    schedule: Schedule
    reason: str


def _merge(entries: Sequence[tuple[int, int, int]]) -> Schedule:
    merged: list[tuple[int, int, int]] = []
    for start, end, tokens in entries:
        if merged and merged[-1][2] == tokens and merged[-1][1] + 1 == start:
            merged[-1] = (merged[-1][0], end, tokens)
        else:
            merged.append((start, end, tokens))
    return tuple(merged)


def choose_schedule(
    k: int,
    per_position: Sequence[float] | None,
    cost_ratio: float | None,
    *,
    measured: Sequence[BucketSpeedup] = (),
    min_tokens: float = 0.0,
    current: Schedule | None = None,
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
) -> ScheduleChoice | None:
    """The depth per bucket of running requests: 0 where speculation loses, else the best modelled depth (<= k).

    The depth where it pays comes from the Leviathan model over the live per-position acceptance and the cost
    estimate (``monitor.speedup.recommend_depth``), capped at the spec's k; without a cost estimate it is k.
    With a control group (``measured``), a bucket whose speedup is below 1 over at least ``min_tokens`` speculative
    and control tokens gets 0, and so does every larger load without enough data (the verification of k extra
    tokens per sequence only gets dearer with load); a bucket that pays, or a smaller load without enough data,
    gets the depth. A bucket at
    0 today stays 0: its pods do not speculate there, so its measurement says nothing about speculation.
    Without a control group the model alone decides, the same depth at every load (it has no term for load; it is
    an upper bound of the gain). None when there is nothing to decide from (no acceptance measured yet).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not per_position:
        return None
    depth, why_depth = k, f"k={k} from the spec (no cost estimate)"
    if cost_ratio is not None:
        best = recommend_depth(per_position, cost_ratio, max_k=k)
        if best is not None:
            depth = best.k if best.worthwhile else 0
            why_depth = (
                f"modelled depth {best.k} ({best.speedup:.2f}x modelled, acceptance per position "
                f"{', '.join(f'{p:.2f}' for p in per_position[:k])}, draft cost {cost_ratio:.3f})"
                if best.worthwhile
                else f"no depth pays in the model ({best.speedup:.2f}x at best, draft cost {cost_ratio:.3f})"
            )
    by_range = {(b.start, b.end): b for b in measured}
    entries: list[tuple[int, int, int]] = []
    losing: list[str] = []
    paying: list[str] = []
    lost_below = False  # the nearest measured smaller load lost: unmeasured larger loads lose too
    for start, end in buckets:
        off_today = current is not None and _depth_in(current, start, end) == 0
        tokens = 0 if lost_below or off_today else depth
        bucket = by_range.get((start, end))
        if (
            bucket is not None
            and bucket.speedup is not None
            and min(bucket.tokens, bucket.control_tokens) >= min_tokens
        ):
            label = f"{start}" if start == end else f"{start}-{end}"
            if bucket.speedup < 1.0:
                tokens, lost_below = 0, True
                losing.append(f"{bucket.speedup:.2f}x at {label}")
            else:
                tokens, lost_below = (0 if off_today else depth), False
                paying.append(f"{bucket.speedup:.2f}x at {label}")
        entries.append((start, end, tokens))
    schedule = _merge(entries)
    if measured:
        reason = (
            f"measured against the control group: speculation off where it loses ({', '.join(losing) or 'nowhere'}), "
            f"kept where it pays ({', '.join(paying) or 'no bucket measured'}); depth: {why_depth}"
        )
    else:
        reason = f"no control group: the same depth at every load, {why_depth}"
    return ScheduleChoice(schedule, reason)


def _depth_in(schedule: Schedule, start: int, end: int) -> int | None:
    """The depth ``schedule`` gives to every batch size in start..end, or None when it varies there."""
    depths = set()
    carried: int | None = None
    for s, e, tokens in schedule:
        if s > end:
            break
        carried = tokens
        if e >= start:
            depths.add(tokens)
    if not depths and carried is not None:
        depths.add(carried)  # the range lies in the carried-forward tail
    return depths.pop() if len(depths) == 1 else None


def next_schedule(
    current: Schedule | None,
    proposed: ScheduleChoice | None,
    last_change: float | None,
    now: float,
    min_interval_seconds: float,
) -> ScheduleChoice | None:
    """The schedule to roll out now, or None: only a different one, and at most once per ``min_interval_seconds``."""
    if proposed is None or proposed.schedule == current:
        return None
    if last_change is not None and now - last_change < min_interval_seconds:
        return None
    return proposed

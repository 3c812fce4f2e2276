"""The adaptive loop's proposal (issue 14 item 3): the live measurements of the serving revision -> a schedule.

Why its own module: ``monitor.payoff.choose_schedule`` is the rule (0 where speculation loses, the modelled depth
where it pays); this is the adapter from what the tracker holds to that rule's inputs. The measured speedup per load
comes from ``monitor.performance.measured_speedup`` (the control group's paired windows), whose load ranges are
``performance.LOAD_BUCKETS``; they become the schedule's ranges (0 -> 1, no upper end -> the largest batch size), so
a measurement per range maps onto one entry of ``num_speculative_tokens_per_batch_size``. Without a control group
the model alone decides (``cost_ratio``: the serving revision's own draft cost estimate, or None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from specdeploy.api.payoff import MAX_BATCH_SIZE
from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.monitor.payoff import BucketSpeedup, Schedule, ScheduleChoice, choose_schedule
from specdeploy.monitor.performance import LOAD_BUCKETS, Speedup

#: The schedule's ranges: the load ranges the speedup is measured in.
SCHEDULE_BUCKETS: Final[tuple[tuple[int, int], ...]] = tuple(
    (max(1, low), MAX_BATCH_SIZE if high is None else high) for low, high in LOAD_BUCKETS
)


def _bucket(low: int, high: int | None, speedup: float, tokens: float) -> BucketSpeedup:
    start, end = max(1, low), MAX_BATCH_SIZE if high is None else high
    # measured_speedup counted only window pairs where both sides generated at least minOutputTokens
    return BucketSpeedup(start, end, speedup, tokens, tokens, None, None)


def propose_schedule(
    spec: SpeculativeDeploymentSpec,
    per_position: Sequence[float],
    cost_ratio: float | None,
    speedup: Speedup | None,
    current: Schedule | None,
) -> ScheduleChoice | None:
    """The schedule for ``spec`` from the live per-position acceptance and, with a control group, the measured
    speedup per load; None with nothing measured yet (no acceptance, or a control group that measured nothing)."""
    if spec.speculation.control is not None and spec.speculation.control.replicas > 0:
        if speedup is None or not speedup.by_load:
            return None  # a control group exists: wait for its measurement rather than decide from the model
        measured = [_bucket(low, high, value, tokens) for low, high, value, tokens in speedup.by_load]
        min_tokens = float(spec.speculation.control.min_output_tokens)
    else:
        measured, min_tokens = [], 0.0
    return choose_schedule(
        spec.speculation.k,
        per_position,
        cost_ratio,
        measured=measured,
        min_tokens=min_tokens,
        current=current,
        buckets=SCHEDULE_BUCKETS,
    )


def revision_schedule(snapshot: Mapping[str, Any]) -> Schedule | None:
    """The batch-size schedule a revision's serving snapshot runs with (None: the same depth at every load)."""
    speculation = snapshot.get("speculation")
    entries = speculation.get("numSpeculativeTokensPerBatchSize") if isinstance(speculation, Mapping) else None
    if not isinstance(entries, list) or not entries:
        return None
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            return None
        try:
            out.append((int(entry["start"]), int(entry["end"]), int(entry["tokens"])))
        except (KeyError, TypeError, ValueError):
            return None
    return tuple(out)

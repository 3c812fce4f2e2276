"""The adaptive loop's proposal (issue 14 item 3): the live measurements of the serving revision -> a schedule.

Why its own module: ``monitor.payoff.choose_schedule`` is the rule (0 where speculation loses, the modelled depth
where it pays); this is the adapter from what the tracker holds to that rule's inputs. The measured speedup per load
is the control group's pooled comparison (``monitor.control.speed_decision``: the windows the minSpeedup decision
judged), measured in ``payoff.DEFAULT_BUCKETS``, which are also the schedule's ranges, so a measurement per range
maps onto one entry of ``num_speculative_tokens_per_batch_size``. Without a control group the model alone decides
(``cost_ratio``: the serving revision's own draft cost estimate, or None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.monitor.payoff import DEFAULT_BUCKETS, Payoff, Schedule, ScheduleChoice, choose_schedule


def propose_schedule(
    spec: SpeculativeDeploymentSpec,
    per_position: Sequence[float],
    cost_ratio: float | None,
    speedup: Payoff | None,
    current: Schedule | None,
) -> ScheduleChoice | None:
    """The schedule for ``spec`` from the live per-position acceptance and, with a control group, the measured
    speedup per load; None with nothing measured yet (no acceptance, or a control group that measured nothing)."""
    if spec.speculation.control is not None and spec.speculation.control.replicas > 0:
        if speedup is None or not any(b.speedup is not None for b in speedup.by_load):
            return None  # a control group exists: wait for its measurement rather than decide from the model
        measured = list(speedup.by_load)
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
        buckets=DEFAULT_BUCKETS,
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

"""What the monitor tells the planner about the revision that serves: the one type crossing that boundary.

The tracker (the stateful shell around this package) turns ``decision.decide``'s word on the latest windows into a
``MonitorFinding``; ``rollout.plan`` acts on it (a trip marks the revision failed, a long enough healthy run marks
it stable). It lives here, below both, so the rollout package does not define what the monitor reports and the
tracker does not import the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from specdeploy.monitor.payoff import ScheduleChoice


class CanaryVerdict(StrEnum):
    """The monitor's word on a canary judged beside the serving revision (issue 13)."""

    STARTING = "Starting"  # the canary's pods are not all Ready yet, or it is in warm-up: no window yet
    ANALYZING = "Analyzing"  # windows are being compared; fewer than analysisWindows passed, none failed
    PASSED = "Passed"  # analysisWindows qualifying windows passed: promote
    FAILED = "Failed"  # a qualifying window failed (low, dropped, or slower): abort


@dataclass(frozen=True)
class CanaryFinding:
    """The monitor's latest word on the canary revision, compared with the serving one over the same windows."""

    revision: str  # the canary's serving id
    serving: str  # the serving id it is compared with
    verdict: CanaryVerdict = CanaryVerdict.STARTING
    windows_passed: int = 0
    acceptance_canary: float | None = None  # rate over the qualifying windows so far (or the failing window)
    acceptance_serving: float | None = None
    tpot_canary: float | None = None  # mean time per output token, seconds
    tpot_serving: float | None = None
    message: str = ""  # in words: what was compared, over how many tokens, and the decision


@dataclass(frozen=True)
class MonitorFinding:
    """The monitor's latest word on the serving revision, carried in memory (never persisted)."""

    revision: str
    trip: bool = False  # the decision is Rollback: the acceptance rate stayed below the threshold
    healthy: bool = False  # the decision is Healthy: its last consecutiveWindows windows all qualified and passed
    healthy_seconds: float = 0.0  # how long the decision has been Healthy without a break
    message: str = ""
    acceptance: Mapping[str, Any] | None = None  # status.acceptance to publish, when it changed meaningfully
    canary: CanaryFinding | None = None  # issue 13: the canary under analysis beside ``revision``, if any
    performance: Mapping[str, Any] | None = None  # issue 14: status.performance to publish, when it changed
    # issue 14 (payoff): why ``trip`` is set when it is not the acceptance rate: "SlowerThanControl" (monitor/payoff.py)
    trip_reason: str | None = None
    # issue 14 item 3 (adaptive): the batch-size schedule the monitor proposes for the serving revision's spec, with
    # why in words (monitor.payoff.choose_schedule); None unless spec.speculation.adaptive.enabled and acceptance
    # was measured. rollout.adaptive decides whether it replaces the schedule in force.
    schedule: ScheduleChoice | None = None

"""What the monitor tells the planner about the revision that serves: the one type crossing that boundary.

The tracker (the stateful shell around this package) turns ``decision.decide``'s word on the latest windows into a
``MonitorFinding``; ``rollout.plan`` acts on it (a trip marks the revision failed, a long enough healthy run marks
it stable). It lives here, below both, so the rollout package does not define what the monitor reports and the
tracker does not import the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MonitorFinding:
    """The monitor's latest word on the serving revision, carried in memory (never persisted)."""

    revision: str
    trip: bool = False  # the decision is Rollback: the acceptance rate stayed below the threshold
    healthy: bool = False  # the decision is Healthy: its last consecutiveWindows windows all qualified and passed
    healthy_seconds: float = 0.0  # how long the decision has been Healthy without a break
    message: str = ""
    acceptance: Mapping[str, Any] | None = None  # status.acceptance to publish, when it changed meaningfully

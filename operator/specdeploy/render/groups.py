"""Ready groups of a LeaderWorkerSet, read from its status: what a multi-node revision reports instead of pods.

A replica of a multi-node revision is a group of pods that serve one engine; a ready worker without its leader
(or the reverse) serves nothing. The LWS controller counts a group ready only when all its pods are, in
``status.readyReplicas``; ``status.updatedReplicas`` counts groups on the current template. This module reads
those numbers (bounded, defaulting to 0 when the controller has not written them yet) so that the planner can
treat an LWS like a Deployment whose pods are groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_GROUPS = 1000  # spec.replicas is at most 1000


@dataclass(frozen=True)
class GroupStatus:
    """Groups wanted, ready and on the current template, and whether the controller has seen the latest spec."""

    desired: int
    ready: int
    updated: int
    observed: bool

    @property
    def complete(self) -> bool:
        """Every wanted group is ready and on the current template (the rollout of this revision is done)."""
        return self.observed and self.ready >= self.desired and self.updated >= self.desired


def _count(value: Any) -> int:
    return min(max(value, 0), MAX_GROUPS) if isinstance(value, int) and not isinstance(value, bool) else 0


def group_status(lws: Mapping[str, Any]) -> GroupStatus:
    """The :class:`GroupStatus` of a LeaderWorkerSet object as read from the API."""
    spec = lws.get("spec") or {}
    status = lws.get("status") or {}
    desired = _count(spec.get("replicas", 1))
    generation = (lws.get("metadata") or {}).get("generation")
    observed = generation is None or status.get("observedGeneration") == generation
    return GroupStatus(
        desired=desired,
        ready=_count(status.get("readyReplicas")),
        updated=_count(status.get("updatedReplicas")),
        observed=observed,
    )

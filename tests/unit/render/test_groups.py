"""Ready groups of a LeaderWorkerSet from its status, as the planner will read them."""

from __future__ import annotations

from typing import Any

from specdeploy.render.groups import GroupStatus, group_status


def lws(replicas: Any = 2, generation: int = 3, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas}, "status": status}


def test_all_groups_ready_and_updated_is_complete() -> None:
    got = group_status(lws(readyReplicas=2, updatedReplicas=2, observedGeneration=3))
    assert got == GroupStatus(desired=2, ready=2, updated=2, observed=True)
    assert got.complete


def test_a_group_short_or_an_unseen_generation_is_not_complete() -> None:
    assert not group_status(lws(readyReplicas=1, updatedReplicas=2, observedGeneration=3)).complete
    assert not group_status(lws(readyReplicas=2, updatedReplicas=1, observedGeneration=3)).complete
    assert not group_status(lws(readyReplicas=2, updatedReplicas=2, observedGeneration=2)).complete


def test_missing_or_hostile_numbers_read_as_zero_or_bounded() -> None:
    assert group_status({"spec": {}}) == GroupStatus(desired=1, ready=0, updated=0, observed=True)
    got = group_status(lws(replicas=True, readyReplicas="2", updatedReplicas=10**12, observedGeneration=3))
    assert (got.desired, got.ready, got.updated) == (0, 0, 1000)
    assert group_status(lws(readyReplicas=-5)).ready == 0

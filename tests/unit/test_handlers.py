"""The daemon's plumbing that needs no cluster: what the child indexes keep, and how one loop's writes are run.

Why: the indexes keep children packed (only the fields the plan reads, as JSON) to keep the operator's memory
small at 1,000 objects; if packing dropped a field the plan reads, the operator would re-patch children that are
fine, miss a user's change, or misjudge readiness. So the plan made from packed children must be the plan made
from the objects as the API server returns them.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import tracemalloc
from collections.abc import Mapping
from typing import Any

import pytest
from tests.unit.rollout.test_drift import as_served
from tests.unit.rollout.test_plan import BASE
from tests.unit.rollout.world import World

from specdeploy import handlers, kube
from specdeploy.rollout.drift import is_subset
from specdeploy.rollout.history import from_controller_revisions
from specdeploy.rollout.plan import Observed, Plan, plan

SKIP = {**BASE, "validation": {"policy": "Skip"}}


def packed(obj: Mapping[str, Any]) -> dict[str, Any]:
    return handlers._unpack(handlers._pack(obj))


def with_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """What a watch delivers beyond the plan's inputs: bookkeeping metadata and status conditions."""
    live = copy.deepcopy(obj)
    meta = live["metadata"]
    meta.setdefault("uid", "7c4a1d52-0000-4000-8000-000000000002")
    meta.update(
        resourceVersion="91850",
        creationTimestamp="2026-01-01T12:00:00Z",
        managedFields=[{"manager": "specdeploy", "operation": "Update", "fieldsV1": {"f:spec": {}}}],
    )
    status = live.setdefault("status", {})
    status["conditions"] = [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "x" * 200},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "y" * 200},
    ]
    return live


def plan_from_index(obs: Observed, world: World) -> Plan:
    """The plan as the daemon makes it: children and revisions read back from the packed indexes."""
    return plan(
        dataclasses.replace(
            obs,
            deployments=tuple(packed(d) for d in obs.deployments),
            service=packed(obs.service) if obs.service else None,
            history=from_controller_revisions([packed(cr) for cr in world.revisions.values()]),
        )
    )


@pytest.mark.parametrize("ready", [0, 1], ids=["rolling-out", "ready"])
def test_planning_from_packed_children_gives_the_plan_the_full_objects_give(ready: int) -> None:
    world = World(spec=copy.deepcopy(SKIP))
    world.step()
    assert world.deployment is not None and world.service is not None
    world.deployment = with_server_fields(as_served(world.deployment))
    world.roll_out(ready=ready)
    world.deployment = with_server_fields(world.deployment)
    world.service = with_server_fields(world.service)
    world.revisions = {k: with_server_fields(v) for k, v in world.revisions.items()}
    obs = world.observe()
    full = plan(obs)
    assert plan_from_index(obs, world) == full
    assert (full.status["phase"] == "Ready") == bool(ready)


def test_packed_children_keep_what_we_rendered_and_still_show_a_change_someone_made() -> None:
    world = World(spec=copy.deepcopy(SKIP))
    p = world.step()
    assert p.deployment is not None
    live = with_server_fields(as_served(world.deployment or {}))
    assert is_subset(p.deployment, packed(live))
    changed = copy.deepcopy(live)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:someone-elses"
    assert not is_subset(p.deployment, packed(changed))


def test_packing_drops_bookkeeping_and_status_conditions_only_and_takes_a_fraction_of_the_memory() -> None:
    live = with_server_fields(as_served(_rendered()))
    out = packed(live)
    assert "managedFields" not in out["metadata"] and "resourceVersion" not in out["metadata"]
    assert out["status"] == {k: v for k, v in live["status"].items() if k != "conditions"}
    assert out["spec"] == live["spec"]
    assert out["metadata"]["labels"] == live["metadata"]["labels"]
    assert out["metadata"]["ownerReferences"] == live["metadata"]["ownerReferences"]
    text = json.dumps(live)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parsed = [json.loads(text) for _ in range(20)]
        as_dicts = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        packs = [handlers._pack(live) for _ in range(20)]
        as_packed = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(parsed) == len(packs)
    assert as_packed < as_dicts / 3, (as_packed, as_dicts)


def _rendered() -> dict[str, Any]:
    world = World(spec=copy.deepcopy(SKIP))
    p = world.step()
    assert p.deployment is not None
    return p.deployment


def test_a_loops_writes_run_at_once_and_all_finish_before_the_first_failure_is_raised() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []
        first, second = asyncio.Event(), asyncio.Event()

        async def a() -> None:  # waits for b: would never finish if the calls ran one after another
            first.set()
            await asyncio.wait_for(second.wait(), 1)
            done.append("a")

        async def b() -> None:
            await asyncio.wait_for(first.wait(), 1)
            second.set()
            raise kube.KubeError("POST /api/v1/namespaces/llm/services: 409 exists", status=409)

        async def slow() -> None:
            await asyncio.sleep(0.05)
            done.append("slow")

        with pytest.raises(kube.KubeError) as err:
            await handlers._all([a(), b(), slow()])
        assert err.value.status == 409
        return done

    assert sorted(asyncio.run(scenario())) == ["a", "slow"]


def test_rest_paths_quote_names_and_an_unknown_kind_is_named() -> None:
    assert kube.path("Deployment", "llm", "coder") == "/apis/apps/v1/namespaces/llm/deployments/coder"
    assert (
        kube.path("SpeculativeDeployment", "llm", "coder", "status")
        == "/apis/specdeploy.io/v1alpha1/namespaces/llm/speculativedeployments/coder/status"
    )
    assert kube.path("Event", "llm") == "/api/v1/namespaces/llm/events"
    assert kube.path("Job", "llm", "a/b") == "/apis/batch/v1/namespaces/llm/jobs/a%2Fb"
    with pytest.raises(kube.KubeError, match="'Pod'"):
        kube.path("Pod", "llm")

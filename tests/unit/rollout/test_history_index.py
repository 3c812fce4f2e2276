"""The revision index keeps no spec snapshots; the plan made from it (plus the snapshots it needs) is the same plan.

Issue 11, item 3: the operator's ControllerRevision index held every revision's whole serving spec (up to 20 per
object). Now it keeps ids, numbers, verdicts and the validation summary (``history.index_entry``); the snapshots
of the revisions that may serve besides the current one (``history.snapshots_needed``: the stable one, the one the
Deployment runs) are read once and filled in (``history.with_snapshots``), and the current one's is its own spec.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from tests.unit.rollout.test_plan import (  # noqa: F401 - reports is a fixture
    Reports,
    next_revision,
    reports,
    rev,
    stable_world,
    with_k,
)
from tests.unit.rollout.world import World, monitor_finding

from specdeploy import handlers
from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id, serving_snapshot
from specdeploy.render import labels as lbl
from specdeploy.rollout import history as hist
from specdeploy.rollout.plan import Plan, plan


def plan_like_the_daemon(world: World) -> tuple[Plan, set[str]]:
    """The plan from index entries (packed, no ``data``), with the snapshots the daemon would read filled in."""
    obs = world.observe()
    entries = [handlers._unpack(handlers._pack(hist.index_entry(cr))) for cr in world.revisions.values()]
    assert all("data" not in e for e in entries)
    indexed = hist.from_controller_revisions(entries)
    live = (world.deployment or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    current = revision_id(obs.spec)
    needed = hist.snapshots_needed(indexed, current, live.get(lbl.SD_REVISION))
    read = {r: world.revisions[hist.controller_revision_name(world.name, r)]["data"]["spec"] for r in needed}
    history = hist.with_snapshots(indexed, {**read, current: serving_snapshot(obs.spec)})
    return plan(dataclasses.replace(obs, history=history)), needed


def full_plan(world: World) -> Plan:
    return plan(world.observe())


def test_a_rollback_planned_from_the_index_serves_the_stable_snapshot_read_on_demand(reports: Reports) -> None:  # noqa: F811
    world = stable_world(reports)
    good, bad_spec = rev(world.spec), with_k(7)
    next_revision(world, reports.compatible, bad_spec)
    # Serving the new revision: the stable one is the only other snapshot needed (a rollback would serve it).
    p, needed = plan_like_the_daemon(world)
    assert p == full_plan(world) and needed == {good}
    world.monitor = monitor_finding(world, [0.31, 0.29, 0.3])
    p, needed = plan_like_the_daemon(world)
    assert p == full_plan(world) and needed == {good}
    assert p.deployment is not None
    assert p.deployment["spec"]["template"]["metadata"]["labels"][lbl.SD_REVISION] == good


def test_index_entries_hold_no_spec_and_only_what_decisions_read() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "org/target-70b", "tensorParallelSize": 8},
            "draft": {"model": "org/draft-1b"},
            "serving": {"env": [{"name": f"VAR_{i}", "value": "x" * 200} for i in range(60)]},
        }
    )
    cr: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": "coder-0123456789",
            "labels": {lbl.SD_NAME: "coder", lbl.SD_REVISION: "0123456789"},
            "annotations": hist.verdict_annotations(hist.RevisionState.STABLE, "Healthy", "ok", "2026-01-01T00:00:00Z"),
        },
        "revision": 3,
        "data": {"spec": serving_snapshot(spec)},
    }
    entry = hist.index_entry(copy.deepcopy(cr))
    assert len(json.dumps(entry)) * 10 < len(json.dumps(cr))
    [full] = hist.from_controller_revisions([cr]).revisions
    [light] = hist.from_controller_revisions([entry]).revisions
    assert light == dataclasses.replace(full, spec={})
    assert hist.with_snapshots(hist.History((light,)), {light.id: full.spec}).revisions == (full,)


def test_snapshots_needed_are_the_stable_and_the_live_revision_never_the_current() -> None:
    def r(i: str, state: hist.RevisionState = hist.RevisionState.NEW) -> hist.RevisionRecord:
        return hist.RevisionRecord(id=i, number=len(i), spec={}, state=state)

    history = hist.History((r("a", hist.RevisionState.STABLE), r("bb", hist.RevisionState.FAILED), r("ccc")))
    assert hist.snapshots_needed(history, "ccc", None) == {"a"}
    assert hist.snapshots_needed(history, "ccc", "bb-nospec") == {"a", "bb"}
    assert hist.snapshots_needed(history, "a", "a") == set()
    assert hist.snapshots_needed(history, "ccc", "gone") == {"a"}

"""status stays under a fixed size however many revisions fail: the failed-revision history is capped.

Thirty revisions in a row, each rolled out and then rolled back by the monitor (the longest per-revision entry the
operator writes: the decision message with its rates and token counts), driven through the real ``plan()`` with
the world held as data (``tests/unit/rollout/world.py``). The status JSON is measured after every revision.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.unit.rollout.world import World, monitor_finding

from specdeploy.api.status import MAX_FAILED_REVISIONS
from specdeploy.rollout.history import MAX_REVISIONS

REVISIONS = 30
STATUS_LIMIT_BYTES = 16 * 1024
BASE: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-0"},
    "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
    "validation": {"policy": "Skip"},
    "rollback": {"stableAfterSeconds": 0},
    "rollout": {"strategy": "Replace"},  # each change rolls out and fails on the live rate (no canary)
}


def size(status: dict[str, Any]) -> int:
    return len(json.dumps(status, separators=(",", ":")).encode())


def test_status_size_is_capped_after_thirty_failed_revisions() -> None:
    world = World(spec=copy.deepcopy(BASE))
    sizes = []
    for i in range(REVISIONS):
        # a long draft id, so every failed entry and message is as long as a real one can be
        world.change_spec(draft={"model": f"some-organisation/draft-model-{i:02d}-" + "x" * 120})
        world.step()
        world.roll_out()
        world.settle()
        world.now += 3600
        world.monitor = monitor_finding(world, [0.21, 0.2, 0.19])
        world.settle()
        world.roll_out()
        world.monitor = None
        world.settle()
        assert world.condition("RolledBack")["status"] == "True", world.status
        sizes.append(size(world.status))
    failed = world.status["revision"]["failed"]
    print(
        f"\nstatus bytes after 1, 5, 10, 20, 30 failed revisions: "
        f"{', '.join(str(sizes[n - 1]) for n in (1, 5, 10, 20, 30))}; "
        f"failed entries kept: {len(failed)}; ControllerRevisions kept: {len(world.revisions)}"
    )
    assert len(failed) == MAX_FAILED_REVISIONS
    assert len(world.revisions) <= MAX_REVISIONS
    assert max(sizes) <= STATUS_LIMIT_BYTES
    assert max(sizes[MAX_FAILED_REVISIONS + 1 :]) <= sizes[MAX_FAILED_REVISIONS] + 512  # a plateau, not a slope

"""The executor's order as data (``rollout.writes``) and the read-your-writes overlays (``rollout.overlay``).

The order is what makes a crash safe: a verdict is on its ControllerRevision before anything acts on it, Events come
before the status write that records them, and the status is left alone when it did not change.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.rollout.test_plan import BASE
from tests.unit.rollout.world import World, monitor_finding

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.render import labels as lbl
from specdeploy.render import render_deployment
from specdeploy.render.meta import OwnerRef
from specdeploy.rollout import overlay
from specdeploy.rollout.plan import plan
from specdeploy.rollout.writes import Create, Patch, Say, child_write, writes_for

SKIP = {**BASE, "validation": {"policy": "Skip"}}


def test_first_pass_records_the_revision_alongside_the_children_when_there_is_no_verdict() -> None:
    world = World(spec=copy.deepcopy(SKIP))
    obs = world.observe()
    p = world.step()
    todo = writes_for(p, obs)
    assert todo.decisions == ()
    kinds = [w.manifest["kind"] for w in todo.acts if isinstance(w, Create)]
    assert kinds == ["ControllerRevision", "Service", "Deployment"]
    assert todo.status == p.status


def test_a_verdict_is_written_after_its_record_and_before_anything_acts_on_it() -> None:
    world = World(spec=copy.deepcopy(SKIP))
    world.step()
    world.roll_out()
    world.settle()
    world.monitor = monitor_finding(world, [0.2, 0.2, 0.2])
    obs = world.observe()
    todo = writes_for(plan(obs), obs)
    assert [type(w) for w in todo.decisions] == [Patch]
    assert todo.decisions[0].verdict is not None  # type: ignore[union-attr]
    assert any(isinstance(w, Say) and w.event.reason == "RolledBack" for w in todo.acts)
    assert not any(isinstance(w, Patch) and w.verdict for w in todo.acts)


def test_a_settled_world_asks_for_no_write_at_all() -> None:
    world = World(spec=copy.deepcopy(SKIP))
    world.step()
    world.roll_out()
    world.settle()
    obs = world.observe()
    todo = writes_for(plan(obs), obs)
    assert (todo.decisions, todo.acts, todo.status, todo.prune) == ((), (), None, ())


def test_child_write_creates_patches_only_what_differs_or_does_nothing() -> None:
    desired = {"kind": "Service", "metadata": {"name": "s", "namespace": "n", "labels": {"a": "1"}}, "spec": {"x": 1}}
    assert child_write(None, desired) == Create(desired)
    assert child_write({**desired, "spec": {"x": 1, "clusterIP": "127.0.0.1"}}, desired) is None
    changed = child_write({**desired, "spec": {"x": 2}}, desired)
    assert isinstance(changed, Patch) and changed.patch["spec"] == {"x": 1}
    assert child_write(desired, None) is None


# ----------------------------------------------------------------------------------------- overlays
def cr(rev_id: str, **ann: str) -> dict:
    return {"metadata": {"name": f"coder-{rev_id}", "labels": {"specdeploy.io/revision": rev_id}, "annotations": ann}}


def test_a_written_verdict_is_laid_over_a_stale_index_until_the_index_shows_it() -> None:
    written = {"a": {"specdeploy.io/state": "failed"}}
    seen, pending = overlay.with_written([cr("a")], written)
    assert seen[0]["metadata"]["annotations"] == {"specdeploy.io/state": "failed"} and pending == written
    caught_up, done = overlay.with_written([cr("a", **{"specdeploy.io/state": "failed"})], pending)
    assert done == {} and caught_up == [cr("a", **{"specdeploy.io/state": "failed"})]


def test_a_created_revision_stands_in_for_the_index_for_a_limited_time() -> None:
    recorded = {"coder-b": (100.0, cr("b"))}
    seen, pending = overlay.with_recorded([cr("a")], recorded, now=110.0, keep_seconds=30.0)
    assert [c["metadata"]["name"] for c in seen] == ["coder-a", "coder-b"] and pending == recorded
    shown, gone = overlay.with_recorded([cr("a"), cr("b")], recorded, now=110.0, keep_seconds=30.0)
    assert len(shown) == 2 and gone == {}
    _, expired = overlay.with_recorded([cr("a")], recorded, now=131.0, keep_seconds=30.0)
    assert expired == {}


def test_the_written_status_is_laid_over_only_while_the_body_is_the_version_it_was_written_over() -> None:
    written = {"phase": "Ready"}
    status, pending = overlay.with_status({"phase": "Pending"}, written, "7", "7")
    assert status == {"phase": "Ready"} and pending == written
    assert overlay.with_status({"phase": "Pending"}, written, "7", "8") == ({"phase": "Pending"}, {})
    assert overlay.with_status({"phase": "Ready"}, written, "7", "7") == ({"phase": "Ready"}, {})


def _deployment(**speculation: object) -> dict[str, Any]:
    spec = SpeculativeDeploymentSpec.model_validate({**SKIP, "speculation": {**BASE["speculation"], **speculation}})
    return render_deployment("coder", "llm", spec, revision_id(spec), owner=OWNER)


OWNER = OwnerRef(apiVersion="specdeploy.io/v1alpha1", kind="SpeculativeDeployment", name="coder", uid="u-1")


def test_an_operator_upgrade_keeps_the_running_pod_template_of_the_same_revision() -> None:
    # What an older operator rendered for this revision: other args, no template hash.
    desired = _deployment()
    live = copy.deepcopy(desired)
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--the-old", "--argv"]
    del live["metadata"]["annotations"][lbl.ANNOTATION_TEMPLATE_HASH]
    assert child_write(live, desired) is None, "the same revision's pods keep running"
    live["spec"]["replicas"] = 5  # kubectl scale, or drift of anything outside the template, is still put right
    write = child_write(live, desired)
    assert isinstance(write, Patch) and "template" not in write.patch["spec"]
    assert write.patch["spec"]["replicas"] == desired["spec"]["replicas"]


def test_a_template_edited_by_hand_is_put_back_and_a_new_revision_replaces_it() -> None:
    desired = _deployment()
    edited = copy.deepcopy(desired)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "attacker/image:1"
    write = child_write(edited, desired)
    assert isinstance(write, Patch) and write.patch["spec"]["template"] == desired["spec"]["template"]
    old = copy.deepcopy(desired)
    del old["metadata"]["annotations"][lbl.ANNOTATION_TEMPLATE_HASH]
    new = _deployment(numSpeculativeTokens=2)  # a new revision: its template goes out whoever rendered the old
    write = child_write(old, new)
    assert isinstance(write, Patch) and write.patch["spec"]["template"] == new["spec"]["template"]

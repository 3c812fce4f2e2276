"""Revision history: reading ControllerRevisions back, choosing what serves, finding the stable one, pruning."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specdeploy.api import RollbackAction
from specdeploy.render.labels import SD_NAME as LABEL_NAME
from specdeploy.render.labels import SD_REVISION as LABEL_REVISION
from specdeploy.rollout.history import (
    ANNOTATION_AT,
    ANNOTATION_MESSAGE,
    ANNOTATION_REASON,
    ANNOTATION_STATE,
    ANNOTATION_VALIDATION,
    MAX_REVISIONS,
    History,
    RevisionRecord,
    RevisionState,
    choose_serving,
    controller_revision_name,
    from_controller_revisions,
    prunable,
    verdict_annotations,
)

SNAPSHOT = {"target": {"model": "org/target"}, "draft": {"model": "org/draft"}}


def cr(rev_id: str, number: int, annotations: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A ControllerRevision as the API server returns it (server-set metadata included)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": controller_revision_name("coder", rev_id),
            "namespace": "llm",
            "uid": f"uid-{rev_id}",
            "resourceVersion": "4711",
            "creationTimestamp": "2026-01-01T12:00:00Z",
            "labels": {LABEL_NAME: "coder", LABEL_REVISION: rev_id, "app.kubernetes.io/managed-by": "specdeploy"},
            "annotations": annotations or {},
        },
        "revision": number,
        "data": {"spec": SNAPSHOT},
        **extra,
    }


def r(rev_id: str, number: int, state: RevisionState = RevisionState.NEW, reason: str = "") -> RevisionRecord:
    return RevisionRecord(id=rev_id, number=number, spec=SNAPSHOT, state=state, reason=reason)


STABLE, FAILED = RevisionState.STABLE, RevisionState.FAILED


# ----------------------------------------------------------------------------------------- reading
def test_controller_revisions_read_back_with_their_verdicts_in_revision_order() -> None:
    verdict = verdict_annotations(
        FAILED, "AcceptanceRateLow", "rate 0.31 < 0.50 over 3 windows", "2026-01-02T03:04:05Z"
    )
    validation = {"compatible": True, "exitCode": 0, "summary": "compatible"}
    objs = [
        cr("cccccccccc", 3, {**verdict, ANNOTATION_VALIDATION: json.dumps(validation)}),
        cr("aaaaaaaaaa", 1, verdict_annotations(STABLE, "Healthy", "0.8 over 3 windows", "2026-01-01T13:00:00Z")),
        cr("bbbbbbbbbb", 2),
    ]
    history = from_controller_revisions(objs)
    assert [x.id for x in history.revisions] == ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]
    first, second, third = history.revisions
    assert (first.state, first.reason) == (STABLE, "Healthy")
    assert second.state is RevisionState.NEW and second.validation is None and second.reason == ""
    assert (third.state, third.reason, third.at) == (FAILED, "AcceptanceRateLow", "2026-01-02T03:04:05Z")
    assert third.message == "rate 0.31 < 0.50 over 3 windows"
    assert third.validation == validation
    assert third.spec == SNAPSHOT
    assert history.get("bbbbbbbbbb") == second and history.get("dddddddddd") is None


def test_unlabelled_objects_and_damaged_annotations_do_not_break_reading() -> None:
    unlabelled = cr("aaaaaaaaaa", 1)
    del unlabelled["metadata"]["labels"][LABEL_REVISION]
    damaged = cr("bbbbbbbbbb", 2, {ANNOTATION_STATE: "exploded", ANNOTATION_VALIDATION: "{not json"})
    bare = {"metadata": {"labels": {LABEL_REVISION: "cccccccccc"}}}  # no annotations, number, or data at all
    history = from_controller_revisions([unlabelled, damaged, bare])
    assert [x.id for x in history.revisions] == ["cccccccccc", "bbbbbbbbbb"]
    bare_rev, damaged_rev = history.revisions
    assert (bare_rev.number, bare_rev.spec, bare_rev.state) == (0, {}, RevisionState.NEW)
    assert damaged_rev.state is RevisionState.NEW, "an unknown state is not a verdict"
    assert damaged_rev.validation is None


def test_a_verdict_message_is_cut_to_fit_an_annotation_and_reads_back_cut() -> None:
    long = "x" * 5000
    ann = verdict_annotations(FAILED, "AcceptanceRateLow", long, "2026-01-01T00:00:00Z")
    assert len(ann[ANNOTATION_MESSAGE]) == 1024
    assert ann[ANNOTATION_STATE] == "failed" and ann[ANNOTATION_REASON] == "AcceptanceRateLow"
    assert ann[ANNOTATION_AT] == "2026-01-01T00:00:00Z"
    (read,) = from_controller_revisions([cr("aaaaaaaaaa", 1, ann)]).revisions
    assert read.message == long[:1024]


def test_controller_revision_name_is_owner_and_revision() -> None:
    assert controller_revision_name("coder", "0123456789") == "coder-0123456789"


# ----------------------------------------------------------------------------------------- stable, failed, numbers
def test_stable_is_the_newest_stable_revision_and_failed_lists_newest_first() -> None:
    history = History(
        (
            r("a", 1, STABLE),
            r("b", 2, FAILED, "AcceptanceRateLow"),
            r("c", 3, STABLE),
            r("d", 4, FAILED, "ValidationFailed"),
            r("e", 5),
        )
    )
    stable = history.stable
    assert stable is not None and stable.id == "c"
    assert [x.id for x in history.failed] == ["d", "b"]
    assert history.next_number() == 6
    assert History().stable is None and History().failed == [] and History().next_number() == 1


def test_a_stable_revision_that_later_failed_is_no_longer_the_rollback_target() -> None:
    before = History((r("a", 1, STABLE), r("b", 2, STABLE), r("c", 3, FAILED, "AcceptanceRateLow")))
    stable = before.stable
    assert stable is not None and stable.id == "b"
    after = History((r("a", 1, STABLE), r("b", 2, FAILED, "AcceptanceRateLow"), before.revisions[2]))
    stable = after.stable
    assert stable is not None and stable.id == "a"
    assert History((r("a", 1, FAILED, "AcceptanceRateLow"),)).stable is None


# ----------------------------------------------------------------------------------------- choose_serving
@pytest.mark.parametrize("action", list(RollbackAction))
def test_a_revision_that_has_not_failed_serves_as_written_whatever_the_action(action: RollbackAction) -> None:
    history = History((r("a", 1, STABLE), r("b", 2)))
    serving = choose_serving(history, history.revisions[1], action)
    assert (serving.revision.id, serving.speculation, serving.id) == ("b", True, "b")


def test_rollback_to_last_good_serves_the_newest_stable_revision() -> None:
    history = History((r("a", 1, STABLE), r("b", 2, STABLE), r("c", 3, FAILED, "AcceptanceRateLow")))
    serving = choose_serving(history, history.revisions[2], RollbackAction.ROLLBACK_TO_LAST_GOOD)
    assert (serving.id, serving.speculation) == ("b", True)
    assert serving.revision is history.revisions[1]


def test_rollback_to_last_good_without_a_stable_revision_disables_speculation() -> None:
    history = History((r("a", 1, FAILED, "AcceptanceRateLow"), r("b", 2, FAILED, "AcceptanceRateLow")))
    serving = choose_serving(history, history.revisions[1], RollbackAction.ROLLBACK_TO_LAST_GOOD)
    assert (serving.revision.id, serving.speculation, serving.id) == ("b", False, "b-nospec")


def test_disable_speculation_ignores_stable_revisions() -> None:
    history = History((r("a", 1, STABLE), r("b", 2, FAILED, "AcceptanceRateLow")))
    serving = choose_serving(history, history.revisions[1], RollbackAction.DISABLE_SPECULATION)
    assert serving.id == "b-nospec" and not serving.speculation


def test_action_none_keeps_a_failed_revision_serving_with_speculation() -> None:
    history = History((r("a", 1, STABLE), r("b", 2, FAILED, "AcceptanceRateLow")))
    serving = choose_serving(history, history.revisions[1], RollbackAction.NONE)
    assert (serving.id, serving.speculation) == ("b", True)


@given(
    states=st.lists(st.sampled_from([RevisionState.NEW, STABLE, FAILED]), min_size=1, max_size=8),
    action=st.sampled_from(list(RollbackAction)),
    pick=st.integers(min_value=0),
)
def test_choose_serving_never_picks_a_failed_revision_with_speculation_unless_told_to(
    states: list[RevisionState], action: RollbackAction, pick: int
) -> None:
    history = History(tuple(r(f"rev{i:07d}", i + 1, s) for i, s in enumerate(states)))
    current = history.revisions[pick % len(states)]
    serving = choose_serving(history, current, action)
    if serving.speculation and serving.revision.state is FAILED:
        assert action is RollbackAction.NONE and serving.revision == current
    if serving.revision != current:
        assert serving.revision == history.stable and action is RollbackAction.ROLLBACK_TO_LAST_GOOD


# ----------------------------------------------------------------------------------------- pruning
def test_prunable_removes_the_oldest_revisions_beyond_the_limit_but_keeps_the_ones_in_use() -> None:
    history = History(tuple(r(f"r{i:02d}", i) for i in range(1, 26)))  # 25 revisions, limit 20
    doomed = prunable(history, keep={"r01", "r03", "r25"})
    assert [x.id for x in doomed] == ["r02", "r04", "r05", "r06", "r07"]
    assert len(history.revisions) - len(doomed) == MAX_REVISIONS
    assert prunable(History(history.revisions[:MAX_REVISIONS]), keep=set()) == []
    assert [x.id for x in prunable(history, keep=set(), limit=23)] == ["r01", "r02"]

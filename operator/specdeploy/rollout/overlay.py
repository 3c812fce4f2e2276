"""Read-your-writes: what this process wrote, laid over what its watch caches show, until they show it.

The daemon plans on kopf's indexes and body, which lag the API server by a watch event. Without these overlays a
stale index could undo a rollback for one loop (a verdict written but not yet seen), record the same revision
twice, and a stale status would make the same transition post its Event twice. Each function returns the view to
plan on and what is still to be laid over next time (the rest is shown by the caches now, or too old to matter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specdeploy.render import labels as lbl
from specdeploy.rollout.drift import is_subset

Revisions = list[dict[str, Any]]


def with_status(
    observed: dict[str, Any], written: dict[str, Any], written_over: str, seen_version: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The status to plan on, and the written status still to lay over.

    A status write names the resourceVersion it was computed over (its precondition), so once the body has moved
    past that version it holds the write, or another writer's newer one: the overlay is done either way.
    """
    if not written or seen_version != written_over or is_subset(written, observed):
        return observed, {}
    return {**observed, **written}, written


def with_recorded(
    revisions: Revisions, recorded: Mapping[str, tuple[float, dict[str, Any]]], now: float, keep_seconds: float
) -> tuple[Revisions, dict[str, tuple[float, dict[str, Any]]]]:
    """The index's ControllerRevisions plus those this process created (name -> (when, object)) that the index
    does not show yet, for at most ``keep_seconds``: a loop woken before the revision's own watch event does not
    record it again."""
    if not recorded:
        return revisions, {}
    shown = {str((cr.get("metadata") or {}).get("name")) for cr in revisions}
    pending = {n: entry for n, entry in recorded.items() if n not in shown and now - entry[0] <= keep_seconds}
    return [*revisions, *(cr for _, cr in pending.values())], pending


def with_written(
    revisions: Revisions, written: Mapping[str, Mapping[str, str]]
) -> tuple[Revisions, dict[str, dict[str, str]]]:
    """The ControllerRevisions with the verdict annotations this process wrote (revision id -> annotations) laid
    over those the index does not show with them yet."""
    pending = {rev_id: dict(ann) for rev_id, ann in written.items()}
    out = []
    for cr in revisions:
        meta = cr.get("metadata", {})
        rev_id = (meta.get("labels") or {}).get(lbl.SD_REVISION) or ""
        mine = pending.get(rev_id)
        ann = dict(meta.get("annotations") or {})
        if mine and all(ann.get(k) == v for k, v in mine.items()):
            del pending[rev_id]
        elif mine:
            ann.update(mine)
            out.append({**cr, "metadata": {**meta, "annotations": ann}})
            continue
        out.append(cr)
    return out, pending

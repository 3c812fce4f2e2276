"""Which pod speaks for a validation Job: the one the Job controls, by uid, never by a label.

The validator's report travels in its pod's termination message, and the operator reads it from its index of
pods. Labels (``job-name``, ``batch.kubernetes.io/job-name``) are set by whoever creates the pod: a user who may
create pods could carry the label of someone else's Job and supply a forged report. The Job controller instead
marks the pods it creates with an owner reference (``controller: true``, kind ``Job``, the Job's uid); the uid is
assigned by the API server, and the Job controller owns only the pods that name it so. Matching on that reference
is what ``kubectl`` and the garbage collector trust too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def controller_job_uid(owner_references: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The uid of the Job that controls a pod, from its ``metadata.ownerReferences``; None when no Job does."""
    for ref in owner_references or []:
        if (
            ref.get("controller") is True
            and ref.get("kind") == "Job"
            and str(ref.get("apiVersion") or "").startswith("batch/")
            and ref.get("uid")
        ):
            return str(ref["uid"])
    return None


def foreign_controller(owner_references: Sequence[Mapping[str, Any]] | None) -> bool:
    """True when another kind than a SpeculativeDeployment controls the object (issue 16).

    A StatefulSet copies its pod template's labels onto the ControllerRevisions it keeps; the LeaderWorkerSet's
    StatefulSets carry ours, so their revisions match the revision index's label selector. They are the
    StatefulSet's history, not ours, and must not be read as revisions of the object."""
    return any(
        ref.get("controller") is True and ref.get("kind") != "SpeculativeDeployment" for ref in owner_references or []
    )


def reporting_pod(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The terminated pod controlled by ``job`` (index entries: the Job's ``uid``, each pod's ``job_uid``)."""
    uid = job.get("uid")
    if not uid:
        return None
    return next((p for p in pods if p.get("job_uid") == uid and p.get("terminated")), None)

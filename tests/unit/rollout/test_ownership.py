"""The validation report comes only from a pod the Job controls (owner reference by uid), never from a label."""

from __future__ import annotations

from typing import Any

from specdeploy.rollout.ownership import controller_job_uid, reporting_pod
from specdeploy.rollout.validation import job_outcome

JOB_UID = "5d0c8a7e-2b1f-4c3d-9e8f-0a1b2c3d4e5f"
JOB_REF = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "name": "coder-validate-abc",
    "uid": JOB_UID,
    "controller": True,
    "blockOwnerDeletion": True,
}
REPORT = '{"checks": [{"name": "vocabulary", "status": "pass", "message": "same"}]}'


def test_only_a_controlling_job_reference_counts() -> None:
    assert controller_job_uid([JOB_REF]) == JOB_UID
    assert controller_job_uid([{**JOB_REF, "controller": False}]) is None
    assert controller_job_uid([{**JOB_REF, "kind": "ReplicaSet", "apiVersion": "apps/v1"}]) is None
    assert controller_job_uid([{**JOB_REF, "apiVersion": "example.com/v1"}]) is None
    assert controller_job_uid(None) is None


def _pod(name: str, job_uid: str | None, exit_code: int, message: str) -> dict[str, Any]:
    """A pods index entry; both carry the Job's name label ("job", what the index matched on before)."""
    return {
        "name": name,
        "job": "coder-validate-abc",
        "job_uid": job_uid,
        "terminated": {"exitCode": exit_code, "message": message, "reason": "x"},
    }


def test_a_labelled_pod_the_job_does_not_own_supplies_no_report() -> None:
    job = {
        "name": "coder-validate-abc",
        "uid": JOB_UID,
        "revision": "abc",
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
    }
    forged = _pod("coder-validate-abc-forged", None, 0, REPORT)
    real = _pod("coder-validate-abc-x7k2p", JOB_UID, 1, '{"checks": [{"name": "vocabulary", "status": "fail"}]}')
    assert reporting_pod(job, [forged, real]) is real
    assert reporting_pod(job, [forged]) is None
    assert reporting_pod({**job, "uid": None}, [real]) is None
    outcome = job_outcome([job], [forged, real], "coder-validate-abc")
    assert outcome is not None and outcome.exit_code == 1
    # with only the forged pod, the Job's own condition speaks (no report at all)
    alone = job_outcome([job], [forged], "coder-validate-abc")
    assert alone is not None and alone.exit_code is None and alone.report is None

"""Status conditions: set idempotently, lastTransitionTime honest, and the STATUS column derived from them."""

from __future__ import annotations

from typing import Any

import pytest

from specdeploy import conditions as cond
from specdeploy.api import Phase
from specdeploy.api.status import Condition as ConditionModel

T1, T2 = "2026-01-01T12:00:00Z", "2026-01-01T12:05:00Z"


def c(type_: str, status: str, reason: str = "Because", message: str = "") -> cond.Condition:
    return cond.Condition(type_, status, reason, message)


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {x["type"]: x for x in conditions}


# ----------------------------------------------------------------------------------------- set_conditions
def test_new_conditions_get_the_metav1_condition_shape() -> None:
    out = cond.set_conditions([], [c(cond.READY, cond.FALSE, "RollingOut", "0/1 replicas ready")], T1, 3)
    assert out == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "RollingOut",
            "message": "0/1 replicas ready",
            "lastTransitionTime": T1,
            "observedGeneration": 3,
        }
    ]
    ConditionModel.model_validate(out[0])


def test_last_transition_time_is_kept_while_the_status_stays_even_if_reason_or_message_change() -> None:
    first = cond.set_conditions([], [c(cond.READY, cond.FALSE, "RollingOut", "0/2 ready")], T1, 1)
    second = cond.set_conditions(first, [c(cond.READY, cond.FALSE, "NotServing", "no revision can serve")], T2, 2)
    (ready,) = second
    assert ready["lastTransitionTime"] == T1
    assert (ready["reason"], ready["message"], ready["observedGeneration"]) == (
        "NotServing",
        "no revision can serve",
        2,
    )


def test_last_transition_time_moves_when_the_status_flips() -> None:
    first = cond.set_conditions([], [c(cond.READY, cond.FALSE)], T1, 1)
    flipped = cond.set_conditions(first, [c(cond.READY, cond.TRUE)], T2, 1)
    assert flipped[0]["lastTransitionTime"] == T2
    back = cond.set_conditions(flipped, [c(cond.READY, cond.UNKNOWN)], "2026-01-01T12:09:00Z", 1)
    assert back[0]["lastTransitionTime"] == "2026-01-01T12:09:00Z"


def test_setting_the_same_conditions_again_changes_nothing() -> None:
    wanted = [c(cond.VALIDATED, cond.TRUE, "ValidationSucceeded", "compatible"), c(cond.READY, cond.TRUE, "Serving")]
    first = cond.set_conditions([], wanted, T1, 4)
    assert cond.set_conditions(first, wanted, T2, 4) == first


def test_a_condition_without_a_transition_time_gets_now() -> None:
    old = [{"type": "Ready", "status": "True", "reason": "Serving", "message": ""}]
    assert cond.set_conditions(old, [c(cond.READY, cond.TRUE, "Serving")], T2, 1)[0]["lastTransitionTime"] == T2


def test_long_messages_are_cut_and_conditions_set_by_others_are_kept_in_a_stable_order() -> None:
    foreign = {"type": "example.com/Audited", "status": "True", "reason": "Ok", "message": "", "lastTransitionTime": T1}
    out = cond.set_conditions(
        [foreign],
        [c(cond.ROLLED_BACK, cond.FALSE), c(cond.READY, cond.TRUE, message="m" * 5000), c(cond.VALIDATED, cond.TRUE)],
        T2,
        1,
    )
    assert [x["type"] for x in out] == ["Validated", "Ready", "RolledBack", "example.com/Audited"]
    assert len(by_type(out)["Ready"]["message"]) == cond.MAX_MESSAGE
    assert by_type(out)["example.com/Audited"] == foreign


def test_get_and_is_true() -> None:
    out = cond.set_conditions([], [c(cond.READY, cond.TRUE), c(cond.DEGRADED, cond.FALSE)], T1, 1)
    assert cond.is_true(out, cond.READY) and not cond.is_true(out, cond.DEGRADED)
    assert not cond.is_true(out, cond.ROLLED_BACK) and cond.get(out, cond.ROLLED_BACK) is None
    ready = cond.get(out, cond.READY)
    assert ready is not None and ready["status"] == "True"


# ----------------------------------------------------------------------------------------- phase
def phase_of(*wanted: cond.Condition) -> str:
    return cond.phase(cond.set_conditions([], list(wanted), T1, 1))


V_OK = c(cond.VALIDATED, cond.TRUE, "ValidationSucceeded")
V_RUNNING = c(cond.VALIDATED, cond.UNKNOWN, "ValidationRunning")
V_REJECTED = c(cond.VALIDATED, cond.FALSE, "ValidationFailed")
V_ERROR = c(cond.VALIDATED, cond.FALSE, "ValidationError")
READY = c(cond.READY, cond.TRUE, "Serving")
NOT_READY = c(cond.READY, cond.FALSE, "RollingOut")
PROGRESSING = c(cond.PROGRESSING, cond.TRUE, "RollingOut")
CANARY = c(cond.PROGRESSING, cond.TRUE, "Canary")
IDLE = c(cond.PROGRESSING, cond.FALSE, "Complete")
ROLLED_BACK = c(cond.ROLLED_BACK, cond.TRUE, "AcceptanceRateLow")
NOT_ROLLED_BACK = c(cond.ROLLED_BACK, cond.FALSE, "NotRolledBack")
DEGRADED_LOW = c(cond.DEGRADED, cond.TRUE, "AcceptanceRateLow")
DEGRADED_REJECTED = c(cond.DEGRADED, cond.TRUE, "ValidationFailed")
DEGRADED_ERROR = c(cond.DEGRADED, cond.TRUE, "ValidationError")
FINE = c(cond.DEGRADED, cond.FALSE, "AsExpected")


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        # refused by validation and nothing serves: the worst news
        ((V_REJECTED, NOT_READY, IDLE, DEGRADED_REJECTED, NOT_ROLLED_BACK), "Failed"),
        ((V_ERROR, NOT_READY, IDLE, DEGRADED_ERROR, NOT_ROLLED_BACK), "Failed"),
        # refused, but the previous revision still serves
        ((V_REJECTED, READY, IDLE, DEGRADED_REJECTED, NOT_ROLLED_BACK), "Degraded"),
        # policy Warn: findings, but it rolls out and then serves
        ((V_REJECTED, NOT_READY, PROGRESSING, FINE, NOT_ROLLED_BACK), "Progressing"),
        ((V_REJECTED, READY, IDLE, FINE, NOT_ROLLED_BACK), "Ready"),
        # a rollback outranks Degraded and Ready, also while the fallback is rolling out
        ((V_OK, READY, IDLE, DEGRADED_LOW, ROLLED_BACK), "RolledBack"),
        ((V_OK, NOT_READY, PROGRESSING, DEGRADED_LOW, ROLLED_BACK), "RolledBack"),
        ((V_REJECTED, NOT_READY, PROGRESSING, DEGRADED_LOW, ROLLED_BACK), "RolledBack"),
        # action None: it keeps serving, degraded
        ((V_OK, READY, IDLE, DEGRADED_LOW, NOT_ROLLED_BACK), "Degraded"),
        ((V_OK, READY, IDLE, FINE, NOT_ROLLED_BACK), "Ready"),
        # serving while a canary of the next revision runs beside it (issue 13): STATUS says so
        ((V_OK, READY, CANARY, FINE, NOT_ROLLED_BACK), "Canary"),
        ((V_OK, NOT_READY, CANARY, FINE, NOT_ROLLED_BACK), "Progressing"),
        # Ready outranks a validation of the next revision in progress (the old one serves)
        ((V_RUNNING, READY, PROGRESSING, FINE, NOT_ROLLED_BACK), "Ready"),
        ((V_RUNNING, NOT_READY, PROGRESSING, FINE, NOT_ROLLED_BACK), "Validating"),
        ((V_OK, NOT_READY, PROGRESSING, FINE, NOT_ROLLED_BACK), "Progressing"),
        ((V_OK, NOT_READY, IDLE, FINE, NOT_ROLLED_BACK), "Pending"),
        ((), "Pending"),
    ],
)
def test_phase_is_derived_worst_first(wanted: tuple[cond.Condition, ...], expected: str) -> None:
    assert phase_of(*wanted) == expected
    assert expected in {p.value for p in Phase}, "a phase the CRD's enum accepts"

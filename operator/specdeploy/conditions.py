"""Status conditions in the ``metav1.Condition`` shape, set idempotently, and the one-word phase derived from them.

Setting a condition to the status and reason it already has changes nothing (so an unchanged world produces
an identical status and no API write); ``lastTransitionTime`` moves only when ``status`` flips, as Kubernetes
API conventions require. The phase for ``kubectl get`` is derived from the conditions, never stored
independently, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy.api.status import Phase

VALIDATED = "Validated"
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
ROLLED_BACK = "RolledBack"
TYPES = (VALIDATED, READY, PROGRESSING, DEGRADED, ROLLED_BACK)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
INVALID_SPEC = "InvalidSpec"  # Ready's reason when the stored spec does not parse
CANARY = "Canary"  # Progressing's reason while a canary runs beside the serving revision (rollout.canary)
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


def set_conditions(
    existing: Sequence[Mapping[str, Any]], wanted: Sequence[Condition], now: str, generation: int
) -> list[dict[str, Any]]:
    """Merge ``wanted`` into ``existing`` (keyed by type); keep lastTransitionTime unless the status flips."""
    by_type = {c.get("type"): dict(c) for c in existing}
    out: list[dict[str, Any]] = []
    for want in wanted:
        old = by_type.pop(want.type, None)
        ltt = now
        if old is not None and old.get("status") == want.status and old.get("lastTransitionTime"):
            ltt = old["lastTransitionTime"]
        out.append(
            {
                "type": want.type,
                "status": want.status,
                "reason": want.reason,
                "message": want.message[:MAX_MESSAGE],
                "lastTransitionTime": ltt,
                "observedGeneration": generation,
            }
        )
    # conditions of types we did not set this time are kept as they were (e.g. written by someone else)
    out.extend(c for t, c in by_type.items() if t not in {w.type for w in wanted})
    order = {t: i for i, t in enumerate(TYPES)}
    out.sort(key=lambda c: (order.get(c.get("type", ""), len(order)), c.get("type", "")))
    return out


def get(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    c = get(conditions, type_)
    return c is not None and c.get("status") == TRUE


def phase(conditions: Sequence[Mapping[str, Any]]) -> Phase:
    """One word for the STATUS column, derived from the conditions (worst first).

    Failed means the spec was refused and nothing serves: validation said no (or could not check) under a policy
    that blocks the rollout, so Degraded is True for the same reason as Validated is False. Under policy Warn the
    findings leave Validated False while the revision rolls out, which is Progressing, not Failed.
    """
    validated = get(conditions, VALIDATED)
    degraded = get(conditions, DEGRADED)
    ready = get(conditions, READY)
    if ready is not None and ready.get("status") == FALSE and ready.get("reason") == INVALID_SPEC:
        return Phase.FAILED  # the operator cannot parse the spec (rollout.invalid): nothing of it can roll out
    if (
        validated is not None
        and validated.get("status") == FALSE
        and degraded is not None
        and degraded.get("status") == TRUE
        and degraded.get("reason") == validated.get("reason")
        and not is_true(conditions, READY)
    ):
        return Phase.FAILED
    if is_true(conditions, ROLLED_BACK):
        return Phase.ROLLED_BACK
    if is_true(conditions, DEGRADED):
        return Phase.DEGRADED
    if is_true(conditions, READY):
        progressing = get(conditions, PROGRESSING)
        if progressing is not None and progressing.get("status") == TRUE and progressing.get("reason") == CANARY:
            return Phase.CANARY  # serving, and a canary of the next revision runs beside it (rollout.canary)
        return Phase.READY
    if validated is not None and validated.get("status") == UNKNOWN:
        return Phase.VALIDATING
    if is_true(conditions, PROGRESSING):
        return Phase.PROGRESSING
    return Phase.PENDING

"""What the operator says about a spec the admin's policy refuses (``specdeploy.policy``), and nothing it does.

Why a separate step: a refused spec must change no child. The planner stops before it records a revision,
starts a validation Job or renders a Deployment, so the pods of the last spec that was allowed keep serving
exactly as they were. The status keeps everything it held (revision, validation, acceptance) and gains three
conditions with reason ``PolicyViolation``, each naming the refused fields; one Warning Event says the same,
named after the Ready condition it replaces (``rollout.events``), so it is said once per refusal and again only
when the refusal changes (another generation with another violation) or comes back after the spec was fixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy import conditions as cond
from specdeploy.policy import Violation
from specdeploy.rollout.events import Event, condition_facts, event_name

POLICY_VIOLATION = "PolicyViolation"


@dataclass(frozen=True)
class Refusal:
    status: dict[str, Any]
    events: tuple[Event, ...]


def refusal_message(violations: Sequence[Violation]) -> str:
    """The violations in one message, cut to what a condition holds."""
    head = "spec refused by the operator's policy: "
    return (head + "; ".join(v.message for v in violations))[: cond.MAX_MESSAGE]


def refuse(
    name: str,
    uid: str,
    generation: int,
    status: Mapping[str, Any],
    violations: Sequence[Violation],
    *,
    now_iso: str,
    reason: str = POLICY_VIOLATION,
    message: str | None = None,
) -> Refusal:
    """The status and Events for a refused spec; ``status`` is the observed one, kept apart from the conditions.

    ``reason`` and ``message``: another refusal said the same way (``rollout.workloads``: LeaderWorkerSetDisabled);
    the message is then the whole explanation instead of the violations'."""
    by = "the operator's policy" if reason == POLICY_VIOLATION else "this operator"
    message = refusal_message(violations) if message is None else message[: cond.MAX_MESSAGE]
    old_conditions: Sequence[Mapping[str, Any]] = status.get("conditions") or []
    serving = (status.get("revision") or {}).get("serving")
    keeps = f"revision {serving} keeps serving" if serving else "nothing is deployed"
    wanted = [
        cond.Condition(cond.READY, cond.FALSE, reason, message),
        cond.Condition(cond.PROGRESSING, cond.FALSE, reason, f"{by} refuses this spec"),
        cond.Condition(cond.DEGRADED, cond.TRUE, reason, f"the spec is refused by {by}; {keeps}"),
    ]
    conditions = cond.set_conditions(old_conditions, wanted, now_iso, generation)
    new_status = {**dict(status), "observedGeneration": generation, "conditions": conditions}
    new_status["phase"] = cond.phase(conditions)
    before = cond.get(old_conditions, cond.READY) or {}
    said = before.get("reason") == reason and before.get("message") == message
    events: tuple[Event, ...] = ()
    if not said:
        facts = (*condition_facts(old_conditions, cond.READY), message)
        events = (Event("Warning", reason, message, event_name(name, uid, reason, facts)),)
    return Refusal(status=new_status, events=events)

"""A spec the API server stored but the operator cannot parse: said once per generation, then left alone.

The CRD's schema and CEL rules are meant to refuse everything the pydantic models refuse, but a skew can always
slip through: a CRD older than the operator, a pattern whose regex dialect differs (Go's ``\\s`` is ASCII-only,
Python's is Unicode), a pydantic validator without a CEL twin. Such an object must not make the operator spin: the
daemon parses each ``metadata.generation`` once, and on failure writes what this module plans, once, and waits for
the next generation (no per-object loop runs faster than the resync interval for it).

What is written: ``Ready=False`` and ``Progressing=False`` with reason ``InvalidSpec`` and a message naming the
fields (a bounded number of lines, each input value cut short, never echoed whole), and one Warning Event named
after the object's uid and generation, so a second writer or a restarted operator is refused with 409 instead of
saying it again. Children are left as they are: what already serves keeps serving the last spec that parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from specdeploy import conditions as cond
from specdeploy import redact
from specdeploy.rollout.events import Event, cut_message, event_name

INVALID_SPEC = cond.INVALID_SPEC


def describe(error: ValidationError) -> str:
    """The findings as one bounded message naming each field, values quoted only in part (``specdeploy.redact``)."""
    return cut_message(f"spec does not parse: {redact.validation_error(error)}", cond.MAX_MESSAGE)


def status_for(status: Mapping[str, Any], generation: int, message: str, now_iso: str) -> dict[str, Any]:
    """The observed ``status`` with Ready and Progressing saying InvalidSpec for ``generation`` (other conditions,
    the revision history and the validation summary kept as they are)."""
    wanted = [
        cond.Condition(cond.READY, cond.FALSE, INVALID_SPEC, message),
        cond.Condition(cond.PROGRESSING, cond.FALSE, INVALID_SPEC, message),
    ]
    conditions = cond.set_conditions(status.get("conditions") or [], wanted, now_iso, generation)
    return {**status, "observedGeneration": generation, "conditions": conditions, "phase": cond.phase(conditions)}


def event_for(name: str, uid: str, generation: int, message: str) -> Event:
    """The one Warning Event for this generation: its name depends only on the uid and the generation."""
    return Event("Warning", INVALID_SPEC, message, event_name(name, uid, INVALID_SPEC, ("generation", str(generation))))

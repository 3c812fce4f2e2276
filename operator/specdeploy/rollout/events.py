"""Events that are said exactly once per transition, even across an operator crash.

An Event is news about a transition that the status records (a condition flipped, a revision failed or became
stable). The handler creates the Event *before* the status write that records the transition, under a name derived
only from what the observed status and the revision history hold at that moment: the object's uid, the reason,
and the state the transition starts from. So:

- a crash between the Event and the status write leaves the status as it was; after the restart the same
  transition is planned again under the same name, and the API server answers 409 AlreadyExists (no duplicate);
- a crash before the Event leaves nothing behind; after the restart it is created then (not lost);
- a later, genuine repeat of the same reason starts from a different recorded state (another
  lastTransitionTime, another verdict time), so it gets a new name and is said again.

Nothing here reads a clock for the name or counts in memory; ``event_manifest`` only stamps the times the Event
is shown with. Plain functions of data: ``handlers`` posts what they return through ``kube.create_event``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy.api import API_VERSION, KIND

# metadata.name of an Event: a DNS subdomain, at most 253 characters.
MAX_NAME = 253
HASH_HEX = 16
# The API server refuses an Event whose message is longer than this many bytes (NoteLengthLimit).
MAX_MESSAGE_BYTES = 1024
MAX_ACTION = 128  # action and reportingInstance, each
COMPONENT = "specdeploy"
_CUT = "..."


@dataclass(frozen=True)
class Event:
    """One Event to say; ``name`` identifies the transition it is about (see ``event_name``)."""

    type: str  # Normal | Warning
    reason: str
    message: str
    name: str


def event_name(object_name: str, uid: str, reason: str, facts: Sequence[str]) -> str:
    """``<object name>.<16 hex>``: the hex is a hash of the uid, the reason and ``facts``.

    ``facts`` are strings read from persisted state that tell this transition from a later repeat of the same
    reason (the old condition as the observed status records it; a revision id and its verdict time). The uid
    keeps a deleted and re-created object of the same name from colliding with the old one's Events that are
    still kept. A long object name is cut so the whole stays within 253 characters.
    """
    if not uid:
        raise ValueError(f"event_name: uid of {object_name!r} is empty; the Event name would not be unique")
    if not reason:
        raise ValueError(f"event_name: reason is empty for {object_name!r}")
    payload = json.dumps([uid, reason, *facts], separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:HASH_HEX]
    prefix = object_name[: MAX_NAME - HASH_HEX - 1].rstrip("-.")
    return f"{prefix}.{digest}" if prefix else digest


def condition_facts(conditions: Sequence[Mapping[str, Any]], type_: str) -> tuple[str, ...]:
    """The persisted state a transition of condition ``type_`` starts from, as recorded in the observed status.

    All of the old condition counts: ``lastTransitionTime`` (it moves when the status flips), and the message and
    observedGeneration, which tell apart two repeats within one second of each other (the old Ready message names
    the revision being rolled out). None of it changes between a crash and the restart, since the status write
    that would change it is the one the crash prevented.
    """
    before = next((c for c in conditions if c.get("type") == type_), None) or {}
    return (
        type_,
        str(before.get("status") or ""),
        str(before.get("reason") or ""),
        str(before.get("lastTransitionTime") or ""),
        str(before.get("observedGeneration") or ""),
        str(before.get("message") or ""),
    )


def cut_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """``message`` within ``limit`` UTF-8 bytes, ending in ``...`` when it had to be cut (never mid-character)."""
    raw = message.encode()
    if len(raw) <= limit:
        return message
    head = raw[: limit - len(_CUT)].decode(errors="ignore")
    return head + _CUT


def involved_object(name: str, namespace: str, uid: str, resource_version: str) -> dict[str, str]:
    """The reference to the SpeculativeDeployment an Event is about, as ``kubectl describe`` matches it."""
    ref = {"apiVersion": API_VERSION, "kind": KIND, "name": name, "namespace": namespace, "uid": uid}
    if resource_version:
        ref["resourceVersion"] = resource_version
    return ref


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_manifest(
    event: Event, involved: Mapping[str, str], now: dt.datetime, instance: str, component: str = COMPONENT
) -> dict[str, Any]:
    """The core/v1 Event to create for ``event``: the fields kubectl shows, under the event's own name.

    ``instance`` names the operator process (its pod), ``now`` (timezone-aware) stamps first/last time and
    eventTime; count is 1, since a name is said once.
    """
    if now.tzinfo is None:
        raise ValueError("event_manifest: now must be timezone-aware")
    namespace = involved.get("namespace")
    if not namespace:
        raise ValueError(f"event_manifest: involvedObject.namespace is missing for Event {event.name!r}")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event.name, "namespace": namespace},
        "involvedObject": dict(involved),
        "type": event.type,
        "reason": event.reason,
        "message": cut_message(event.message),
        "action": event.reason[:MAX_ACTION],
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": (instance or component)[:MAX_ACTION],
        "firstTimestamp": _time(now),
        "lastTimestamp": _time(now),
        "eventTime": _micro_time(now),
        "count": 1,
    }

"""Event names and manifests: the same transition gets the same name in any process, a repeat a new one, and the
API server accepts what is sent (DNS-subdomain name, message within its byte limit, the fields kubectl shows)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from specdeploy.api import API_VERSION, KIND
from specdeploy.api.types import DNS_SUBDOMAIN_PATTERN
from specdeploy.rollout.events import (
    MAX_MESSAGE_BYTES,
    MAX_NAME,
    Event,
    condition_facts,
    cut_message,
    event_manifest,
    event_name,
    involved_object,
)

UID = "0b6f5a52-9c1e-4a43-a1a8-6a1f1f0c2e11"
# A DNS-1123 subdomain, as the API server checks metadata.name of an Event.
SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)
READY_FALSE = {
    "type": "Ready",
    "status": "False",
    "reason": "RollingOut",
    "message": "0/1 replicas ready for revision 0b5d94552f",
    "lastTransitionTime": "2026-01-01T12:00:00Z",
    "observedGeneration": 2,
}


def ready_name(conditions: list[dict[str, object]], uid: str = UID) -> str:
    return event_name("coder", uid, "Ready", (*condition_facts(conditions, "Ready"), "True", "Serving"))


def test_the_same_transition_gets_the_same_name_in_any_process() -> None:
    first = ready_name([dict(READY_FALSE)])
    # a restarted process reads the same status back (JSON: key order and the int generation may come back as is)
    again = ready_name([dict(reversed(list(READY_FALSE.items())))])
    assert first == again
    assert re.fullmatch(r"coder\.[0-9a-f]{16}", first)


@pytest.mark.parametrize(
    "change",
    [
        {"lastTransitionTime": "2026-01-01T12:05:00Z"},  # False again later
        {"message": "0/1 replicas ready for revision c0f8bab6e8"},  # False again within the same second
        {"observedGeneration": 3},
        {"reason": "NotServing"},
    ],
)
def test_a_later_repeat_of_the_same_reason_gets_a_new_name(change: dict[str, object]) -> None:
    assert ready_name([{**READY_FALSE, **change}]) != ready_name([dict(READY_FALSE)])


def test_another_object_reason_or_fact_gets_another_name() -> None:
    base = ready_name([dict(READY_FALSE)])
    assert ready_name([dict(READY_FALSE)], uid="9d3c0c8e-1111-4a43-a1a8-6a1f1f0c2e11") != base  # re-created object
    facts = condition_facts([dict(READY_FALSE)], "Ready")
    assert event_name("coder", UID, "Degraded", facts) != event_name("coder", UID, "Recovered", facts)
    rollback = event_name("coder", UID, "RolledBack", ("verdict", "c0f8bab6e8", "2026-01-01T12:00:07Z"))
    assert rollback != event_name("coder", UID, "RolledBack", ("verdict", "c0f8bab6e8", "2026-01-01T13:00:07Z"))
    # facts are a sequence, not a string: ("ab", "c") and ("a", "bc") must differ
    assert event_name("x", UID, "R", ("ab", "c")) != event_name("x", UID, "R", ("a", "bc"))


def test_a_condition_never_seen_before_starts_from_nothing() -> None:
    assert condition_facts([], "Ready") == ("Ready", "", "", "", "", "")


@pytest.mark.parametrize("length", [1, 63, 236, 237, 253])
def test_long_object_names_are_cut_to_a_valid_name(length: int) -> None:
    sd_name = ("a-b." * 100)[:length].rstrip("-.") or "a"
    name = event_name(sd_name, UID, "RolledBack", ("verdict", "c0f8bab6e8", "t"))
    assert len(name) <= MAX_NAME
    assert SUBDOMAIN.fullmatch(name), name
    prefix, digest = name.rsplit(".", 1)
    assert len(digest) == 16 and sd_name.startswith(prefix)


def test_a_missing_uid_or_reason_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="uid"):
        event_name("coder", "", "Ready", ())
    with pytest.raises(ValueError, match="reason"):
        event_name("coder", UID, "", ())


def test_messages_are_cut_to_the_api_servers_byte_limit_without_splitting_a_character() -> None:
    assert cut_message("rate 0.3 < 0.5") == "rate 0.3 < 0.5"
    exact = "x" * MAX_MESSAGE_BYTES
    assert cut_message(exact) == exact
    long = "é" * 600  # 1200 bytes
    cut = cut_message(long)
    assert len(cut.encode()) <= MAX_MESSAGE_BYTES and cut.endswith("...")
    assert set(cut[:-3]) == {"é"}


def test_the_manifest_carries_what_kubectl_describe_shows() -> None:
    ev = Event("Warning", "RolledBack", "revision c0f8bab6e8 rolled back to 0b5d94552f: rate " + "9" * 2000, "coder.0f")
    involved = involved_object("coder", "llm", UID, "4711")
    now = dt.datetime(2026, 1, 1, 12, 0, 7, 123456, tzinfo=dt.UTC)
    body = event_manifest(ev, involved, now, "specdeploy-7d9f-abcde")
    assert body["metadata"] == {"name": "coder.0f", "namespace": "llm"}
    assert body["involvedObject"] == {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": "coder",
        "namespace": "llm",
        "uid": UID,
        "resourceVersion": "4711",
    }
    assert (body["type"], body["reason"], body["count"]) == ("Warning", "RolledBack", 1)
    assert body["message"].startswith("revision c0f8bab6e8 rolled back") and len(body["message"].encode()) <= 1024
    assert body["source"] == {"component": "specdeploy"} and body["reportingComponent"] == "specdeploy"
    assert body["reportingInstance"] == "specdeploy-7d9f-abcde" and body["action"] == "RolledBack"
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-01T12:00:07Z"
    assert body["eventTime"] == "2026-01-01T12:00:07.123456Z"


def test_the_manifest_refuses_a_naive_time_and_a_missing_namespace() -> None:
    ev = Event("Normal", "Ready", "1/1 replicas ready", "coder.00")
    with pytest.raises(ValueError, match="timezone"):
        event_manifest(ev, involved_object("coder", "llm", UID, ""), dt.datetime(2026, 1, 1), "i")
    with pytest.raises(ValueError, match=r"involvedObject\.namespace"):
        event_manifest(ev, {"name": "coder"}, dt.datetime.now(dt.UTC), "i")
    assert "resourceVersion" not in involved_object("coder", "llm", UID, "")

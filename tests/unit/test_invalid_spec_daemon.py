"""The per-object daemon on a stored spec that the model refuses: one status write and one Event per generation,
however often it is woken, and nothing posted through kopf's per-object logger (whose records kopf turns into
Events). The API calls are recorded by stand-ins for ``kube.create_event`` and ``kube.patch_status`` that apply the
status the way the watch would show it; the real API server run is in
tests/integration/test_failures_after_admission.py."""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from typing import Any

import pytest

from specdeploy import handlers, kube

UID = "0b6f5a52-9c1e-4a43-a1a8-6a1f1f0c2e11"
BAD = {
    "target": {"model": "org/target-70b"},
    "speculation": {"method": "ngram", "numSpeculativeTokens": 4},
    "serving": {"image": "vllm/vllm-openai:v1 beta"},
}


class Stopped:
    """What the daemon reads of kopf's ``stopped`` flag: truth, ``await wait()`` and the reason."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason = None

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def start_daemon(body: dict[str, Any], stopped: Stopped, logger: logging.Logger) -> asyncio.Task[None]:
    """The real per-object daemon for ``body`` with empty child indexes."""
    return asyncio.create_task(
        handlers.reconcile_daemon(
            stopped=stopped,  # type: ignore[arg-type]
            name="coder",
            namespace="llm",
            body=body,  # type: ignore[arg-type]
            logger=logger,
            **{f"{kind}_idx": {} for kind in ("deployments", "services", "jobs", "pods", "revisions")},
        )
    )


def test_a_spec_that_does_not_parse_is_said_once_per_generation_however_often_the_daemon_wakes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "coder", "namespace": "llm", "uid": UID, "generation": 1, "resourceVersion": "1"},
        "spec": copy.deepcopy(BAD),
        "status": {},
    }
    calls: list[tuple[str, Any]] = []

    async def create_event(manifest: dict[str, Any]) -> bool:
        calls.append(("event", (manifest["reason"], manifest["metadata"]["name"], manifest["message"])))
        return True

    async def patch_status(
        namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        assert resource_version == body["metadata"]["resourceVersion"]
        calls.append(("status", copy.deepcopy(status)))
        body["status"] = copy.deepcopy(status)  # what the watch shows next
        body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        return body

    monkeypatch.setattr(kube, "create_event", create_event)
    monkeypatch.setattr(kube, "patch_status", patch_status)
    object_logger = logging.getLogger("test.invalid.object")
    records = Records()
    object_logger.addHandler(records)

    async def scenario() -> None:
        stopped = Stopped()
        daemon = start_daemon(body, stopped, object_logger)
        for _ in range(40):  # 2 s of wake-ups, as the object's and its children's watch events would give
            await asyncio.sleep(0.05)
            handlers._wake("llm", "coder")
        body["metadata"]["generation"] = 2  # another edit, still refused
        body["spec"]["serving"]["image"] = "vllm/vllm-openai:v2 beta"
        for _ in range(20):
            await asyncio.sleep(0.05)
            handlers._wake("llm", "coder")
        stopped.event.set()
        await asyncio.wait_for(daemon, 15)

    asyncio.run(scenario())
    events = [c[1] for c in calls if c[0] == "event"]
    statuses = [c[1] for c in calls if c[0] == "status"]
    assert [e[0] for e in events] == ["InvalidSpec", "InvalidSpec"] and events[0][1] != events[1][1]
    assert "spec.serving.image" in events[0][2]
    assert len(statuses) == 2
    ready = next(c for c in statuses[-1]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("False", "InvalidSpec", 2)
    assert statuses[-1]["phase"] == "Failed"
    assert [r.getMessage() for r in records.records if r.levelno >= logging.INFO] == []


def test_a_failing_write_backs_off_and_is_announced_on_the_object_once(monkeypatch: pytest.MonkeyPatch) -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "coder", "namespace": "llm", "uid": UID, "generation": 1, "resourceVersion": "1"},
        "spec": copy.deepcopy(BAD),
        "status": {},
    }
    tries: list[float] = []
    events: list[tuple[str, str]] = []

    async def create_event(manifest: dict[str, Any]) -> bool:
        events.append((manifest["reason"], manifest["message"]))
        return True

    async def patch_status(namespace: str, name: str, status: dict[str, Any], **_: Any) -> dict[str, Any]:
        tries.append(asyncio.get_running_loop().time())
        raise kube.KubeError("PATCH .../status: 503 Service Unavailable", status=503)

    monkeypatch.setattr(kube, "create_event", create_event)
    monkeypatch.setattr(kube, "patch_status", patch_status)
    object_logger = logging.getLogger("test.invalid.backoff")
    records = Records()
    object_logger.addHandler(records)

    async def scenario() -> None:
        stopped = Stopped()
        daemon = start_daemon(body, stopped, object_logger)
        for _ in range(70):  # 3.5 s; wake-ups do not cut a back-off short
            await asyncio.sleep(0.05)
            handlers._wake("llm", "coder")
        stopped.event.set()
        await asyncio.wait_for(daemon, 15)

    asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert 2 <= len(tries) <= 4, tries
    # the n-th pause is at least half of 2**n seconds (equal jitter over a doubling pause)
    assert all(gap >= 0.9 * 0.5 * 2**n for n, gap in enumerate(gaps)), gaps
    warnings = [r.getMessage() for r in records.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "503" in warnings[0], warnings
    failed = [message for reason, message in events if reason == "ReconcileFailed"]
    assert len(failed) == 1 and "503 Service Unavailable" in failed[0], events

"""Failed loops back off exponentially with jitter, and each cause is announced on the object once."""

from __future__ import annotations

import pytest

from specdeploy.rollout import retry


def test_the_pause_doubles_up_to_the_cap_and_jitter_spreads_half_of_it() -> None:
    lows = [retry.delay(n, 0.0) for n in range(1, 10)]
    highs = [retry.delay(n, 1.0) for n in range(1, 10)]
    assert highs == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert lows == [h / 2 for h in highs]
    assert retry.delay(10_000, 1.0) == retry.CAP_SECONDS
    with pytest.raises(ValueError, match="failures"):
        retry.delay(0, 0.5)
    with pytest.raises(ValueError, match="draw"):
        retry.delay(1, 1.5)


def test_a_cause_is_announced_once_then_again_only_after_a_while() -> None:
    r = retry.Retries()
    said = [r.failed("503", now=float(t), draw=0.5)[1] for t in range(30)]
    assert said == [True] + [False] * 29
    assert r.failed("403", now=31.0, draw=0.5)[1] is True  # another cause is news
    r.succeeded()
    pause, announce = r.failed("503", now=40.0, draw=1.0)
    assert (pause, announce) == (1.0, False)  # the streak starts over; the cause was said already
    assert r.failed("503", now=40.0 + retry.ANNOUNCE_AGAIN_SECONDS, draw=1.0)[1] is True


def test_the_failure_event_is_named_after_the_cause_and_the_generation() -> None:
    uid = "0b6f5a52-9c1e-4a43-a1a8-6a1f1f0c2e11"
    first = retry.failure_event("coder", uid, 3, "503", "PATCH: 503")
    assert (first.type, first.reason) == ("Warning", "ReconcileFailed") and "503" in first.message
    assert retry.failure_event("coder", uid, 3, "503", "other words").name == first.name  # said once per cause
    assert retry.failure_event("coder", uid, 3, "403", "PATCH: 403").name != first.name
    assert retry.failure_event("coder", uid, 4, "503", "PATCH: 503").name != first.name

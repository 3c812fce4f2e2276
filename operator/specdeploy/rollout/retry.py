"""When a reconcile loop's writes fail: how long to wait before the next try, and whether to say so on the object.

A fixed pause (it was 2 s) keeps a broken object, or every object during an API server outage, hammering the API
server at the same rate for as long as the failure lasts, all of them in step; and a Warning per failure buries
the object's Events under copies of one message. Here the pause doubles with each failure in a row up to a cap,
with jitter so that objects that failed together do not retry together ("equal jitter": half the pause fixed, half
random), and a cause (the HTTP status: 0 for no answer, 403, 422, 5xx...) is announced once, then only again after
``ANNOUNCE_AGAIN_SECONDS``; repeats go to the operator's log only.

State lives in one small object per daemon; the clock and the random draw are arguments, so the rules are tested
without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specdeploy.rollout.events import Event, event_name

BASE_SECONDS = 1.0
CAP_SECONDS = 60.0
ANNOUNCE_AGAIN_SECONDS = 600.0
RECONCILE_FAILED = "ReconcileFailed"


def delay(failures: int, draw: float, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """The pause after the ``failures``-th failure in a row (1 for the first): ``base * 2**(failures-1)`` capped at
    ``cap``, of which half is fixed and half scaled by ``draw`` (a random number in [0, 1])."""
    if failures < 1:
        raise ValueError(f"delay: failures must be at least 1, got {failures}")
    if not 0.0 <= draw <= 1.0:
        raise ValueError(f"delay: draw must be within [0, 1], got {draw}")
    full = min(cap, base * 2.0 ** min(failures - 1, 62))
    return full / 2 + full / 2 * draw


@dataclass
class Retries:
    """One daemon's failures in a row and the causes it has announced (cause -> when)."""

    failures: int = 0
    announced: dict[str, float] = field(default_factory=dict)

    def failed(self, cause: str, now: float, draw: float) -> tuple[float, bool]:
        """Record a failure: the pause before the next try, and whether to announce this cause on the object."""
        self.failures += 1
        last = self.announced.get(cause)
        announce = last is None or now - last >= ANNOUNCE_AGAIN_SECONDS
        if announce:
            self.announced = {c: t for c, t in self.announced.items() if now - t < ANNOUNCE_AGAIN_SECONDS}
            self.announced[cause] = now
        return delay(self.failures, draw), announce

    def succeeded(self) -> None:
        """A loop went through: the next failure waits the shortest pause again (causes stay announced)."""
        self.failures = 0


def failure_event(name: str, uid: str, generation: int, cause: str, message: str) -> Event:
    """The Warning that says a cause of failed loops, once per cause and generation of the object."""
    return Event(
        "Warning",
        RECONCILE_FAILED,
        f"reconcile failed, retrying with back-off: {message}",
        event_name(name, uid, RECONCILE_FAILED, ("generation", str(generation), "cause", cause)),
    )

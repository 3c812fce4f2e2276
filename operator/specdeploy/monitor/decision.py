"""The rollback decision: given the policy and the closed windows, hold, call the revision healthy, or roll back.

Why a pure function: this is the one place where the operator takes an action on its own, so the rules must be
readable in one screen and checked by property tests (``tests/unit/monitor/test_decision.py``), not spread through
handlers.

The rules:

* Nothing is judged before the revision has been Ready for ``warmup_seconds``; windows that started before that
  are ignored (their traffic includes warm-up).
* A window *qualifies* when it has an acceptance rate, at least ``min_draft_tokens`` draft tokens, and no pod that
  errored and could not be counted (``Window.incomplete_pods``: it does not show the whole revision). A window that
  does not qualify *holds*: it neither counts toward a rollback nor clears one in progress. So scrape errors, no
  data and thin traffic can never cause a rollback, and cannot hide a run of bad windows either.
* A qualifying window is *bad* when its rate is strictly below ``min_acceptance_rate``.
* ROLLBACK exactly when the last ``consecutive_windows`` qualifying windows are all bad. HEALTHY when they are all
  good. Anything else (fewer qualifying windows than that, or a mix: a rate flapping around the threshold) HOLDs.
* V0 engines give no trustworthy token counts, so their windows qualify only when ``min_draft_tokens`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from specdeploy.monitor.window import Window


class Verdict(StrEnum):
    HOLD = "Hold"
    HEALTHY = "Healthy"
    ROLLBACK = "Rollback"


class Reason(StrEnum):
    NOT_READY = "NotReady"
    WARMING_UP = "WarmingUp"
    NO_DATA = "NoData"
    COLLECTING = "CollectingWindows"
    MIXED = "MixedWindows"
    HEALTHY = "AcceptanceHealthy"
    BELOW_THRESHOLD = "AcceptanceBelowThreshold"


@dataclass(frozen=True)
class Policy:
    """``spec.rollback`` as the decision needs it."""

    min_acceptance_rate: float
    consecutive_windows: int
    min_draft_tokens: float
    warmup_seconds: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_acceptance_rate <= 1.0:
            raise ValueError(f"minAcceptanceRate must be within [0, 1], got {self.min_acceptance_rate!r}")
        if self.consecutive_windows < 1:
            raise ValueError(f"consecutiveWindows must be >= 1, got {self.consecutive_windows!r}")
        if not self.min_draft_tokens >= 0:
            raise ValueError(f"minDraftTokens must be >= 0, got {self.min_draft_tokens!r}")
        if not self.warmup_seconds >= 0:
            raise ValueError(f"warmupSeconds must be >= 0, got {self.warmup_seconds!r}")


@dataclass(frozen=True)
class Decision:
    """The verdict with a reason code (for conditions) and a message (for Events) carrying the numbers.

    ``rate``, ``draft_tokens``, ``accepted_tokens`` and ``window_start``/``window_end`` describe the latest
    qualifying window, when there is one; ``bad_windows`` counts the bad ones among the last K qualifying.
    """

    verdict: Verdict
    reason: Reason
    message: str
    threshold: float
    rate: float | None = None
    window_start: float | None = None
    window_end: float | None = None
    draft_tokens: float | None = None
    accepted_tokens: float | None = None
    qualifying_windows: int = 0
    bad_windows: int = 0


def qualifies(window: Window, policy: Policy) -> bool:
    """Whether the window counts toward a verdict (see the module docstring)."""
    if window.incomplete_pods or window.rate is None:
        return False
    tokens = window.draft_tokens
    if tokens is None:
        return policy.min_draft_tokens == 0
    return tokens >= policy.min_draft_tokens


def decide(policy: Policy, ready_at: float | None, now: float, windows: Sequence[Window]) -> Decision:
    """Judge the serving revision. ``windows`` are closed windows, oldest first; ``ready_at`` when it became Ready."""
    threshold = policy.min_acceptance_rate
    if ready_at is None:
        return Decision(Verdict.HOLD, Reason.NOT_READY, "the revision is not Ready yet", threshold)
    judged_from = ready_at + policy.warmup_seconds
    if now < judged_from:
        return Decision(
            Verdict.HOLD,
            Reason.WARMING_UP,
            f"warming up: acceptance is judged from {_when(judged_from)} ({judged_from - now:.0f}s from now)",
            threshold,
        )
    after_warmup = [w for w in windows if w.start >= judged_from]
    counted = [w for w in after_warmup if qualifies(w, policy)]
    if not counted:
        return Decision(Verdict.HOLD, Reason.NO_DATA, _no_data_message(after_warmup, policy), threshold)
    k = policy.consecutive_windows
    recent = counted[-k:]
    bad = [w for w in recent if _rate(w) < threshold]
    latest = recent[-1]

    def judged(verdict: Verdict, reason: Reason, message: str) -> Decision:
        return Decision(
            verdict,
            reason,
            message,
            threshold,
            rate=latest.rate,
            window_start=latest.start,
            window_end=latest.end,
            draft_tokens=latest.draft_tokens,
            accepted_tokens=latest.accepted_tokens,
            qualifying_windows=len(counted),
            bad_windows=len(bad),
        )

    rates = ", ".join(f"{_rate(w):.3f}" for w in recent)
    if len(recent) == k and len(bad) == k:
        message = (
            f"acceptance rate {_rate(latest):.3f} is below the threshold {threshold:.3f} in {k} consecutive "
            f"qualifying window(s) (rates {rates}); latest window {_span(latest)}: {_tokens(latest)}"
        )
        return judged(Verdict.ROLLBACK, Reason.BELOW_THRESHOLD, message)
    if len(recent) == k and not bad:
        message = (
            f"acceptance rate {_rate(latest):.3f} is at or above the threshold {threshold:.3f} in the last {k} "
            f"qualifying window(s) (rates {rates}); latest window {_span(latest)}: {_tokens(latest)}"
        )
        return judged(Verdict.HEALTHY, Reason.HEALTHY, message)
    if len(recent) < k:
        message = (
            f"{len(recent)} of {k} qualifying window(s) so far (rates {rates}, threshold {threshold:.3f}); "
            f"latest window {_span(latest)}: {_tokens(latest)}"
        )
        return judged(Verdict.HOLD, Reason.COLLECTING, message)
    message = (
        f"{len(bad)} of the last {k} qualifying windows are below the threshold {threshold:.3f} (rates {rates}); "
        f"a rollback needs {k} in a row"
    )
    return judged(Verdict.HOLD, Reason.MIXED, message)


def _rate(window: Window) -> float:
    assert window.rate is not None  # qualifying windows have a rate
    return window.rate


def _no_data_message(windows: Sequence[Window], policy: Policy) -> str:
    """Why nothing qualifies, from the last ``consecutive_windows`` windows (the ones a verdict would need).

    Counts over that fixed span, not over all windows since warm-up, so the message stays the same while the
    situation does (a status write only when something changed), and each pod that could not be read is named
    with its latest reason (the HTTP status, the timeout, the line of the page that did not parse).
    """
    if not windows:
        return "no window has closed since warm-up ended: holding"
    recent = windows[-policy.consecutive_windows :]
    incomplete = [w for w in recent if w.incomplete_pods]
    complete = [w for w in recent if not w.incomplete_pods]
    no_series = sum(1 for w in complete if w.rate is None and w.counters is None)
    no_tokens = sum(1 for w in complete if w.rate is None and w.counters is not None)
    unknown = sum(1 for w in complete if w.rate is not None and w.draft_tokens is None)
    thin = len(complete) - no_series - no_tokens - unknown
    parts = []
    if no_series:
        pods = sorted({p for w in complete for p in w.pods_without_data})
        where = f" on {', '.join(pods[:3])}" if pods else " (no ready pod was scraped)"
        parts.append(f"{no_series} without spec-decode data{where}")
    if no_tokens:
        parts.append(f"{no_tokens} with no draft tokens (no traffic)")
    if thin:
        parts.append(f"{thin} with fewer than {policy.min_draft_tokens:g} draft tokens")
    if unknown:
        parts.append(f"{unknown} from a V0 engine, which gives no token counts (minDraftTokens 0 would judge them)")
    if incomplete:
        latest: dict[str, str] = {}
        for w in incomplete:
            for err in w.errors:
                latest[err.pod] = err.reason
        pods = sorted({p for w in incomplete for p in w.incomplete_pods})
        named = [f"{pod}: {_clip(latest[pod])}" if pod in latest else pod for pod in pods[:2]]
        more = f" and {len(pods) - 2} more" if len(pods) > 2 else ""
        parts.append(f"{len(incomplete)} with pods that could not be read ({'; '.join(named)}{more})")
    return f"no qualifying window since warm-up; of the last {len(recent)}: {'; '.join(parts)}: holding"


def _clip(text: str, width: int = 200) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(window: Window) -> str:
    return f"{_when(window.start)} to {_when(window.end)}"


def _tokens(window: Window) -> str:
    if window.draft_tokens is None or window.accepted_tokens is None:
        return "token counts unknown (V0 engine)"
    return f"{window.accepted_tokens:,.0f} of {window.draft_tokens:,.0f} draft tokens accepted"

"""status.performance: the serving revision's measured speed, and its measured speedup against a control group.

Why its own module: what is published, and when a new number is worth a status write, are decisions, so they are
plain functions of the windows (``monitor.speed``) tested without a cluster; the tracker only calls them.

* :func:`performance_status` builds the status from the latest window that generated tokens: mean time per output
  token, output tokens per second (all pods), mean running requests per pod, and a message in words.
* The speedup against a control group (issue 14) is not computed here: it is ``monitor.control.speed_decision``'s
  pooled comparison of the windows the minSpeedup decision judged (``monitor.payoff``), passed in as a ``Payoff``,
  so what status says and what the rollback acts on are one number over the same span (``speedupFrom``/``To``).
* :func:`meaningful` keeps steady state free of writes (the "zero API writes per object per minute" budget): a new
  status only when the revision, the verdict of what is known, or a number moved by more than its noise margin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from specdeploy.monitor.payoff import Payoff
from specdeploy.monitor.window import Window

#: Relative change of time per output token or tokens per second that is worth a status write.
SPEED_EPSILON = 0.1
#: Change of mean running requests per pod worth a write: this much, or SPEED_EPSILON of itself if more.
RUNNING_EPSILON = 1.0
#: Change of a speedup worth a write: this fraction of it, and at least SPEEDUP_FLOOR.
SPEEDUP_EPSILON = 0.05
SPEEDUP_FLOOR = 0.002  # two steps of the published rounding (three decimals)

NO_CONTROL = (
    "speedup not measured: it needs a control group with speculation off (spec.speculation.control) and a window "
    "after warm-up where both groups generated minOutputTokens"
)


def latest_with_tokens(windows: Sequence[Window]) -> Window | None:
    """The newest window whose pods generated output tokens and measured a time per output token."""
    return next(
        (
            w
            for w in reversed(windows)
            if w.speed is not None and (w.speed.output_tokens or 0) > 0 and w.speed.time_per_output_token is not None
        ),
        None,
    )


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _iso_ms(ts: float | None) -> str | None:
    """To the millisecond: a client lining its own requests up with the span needs better than a second."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def performance_status(revision: str, window: Window | None, speedup: Payoff | None = None) -> dict[str, Any]:
    """status.performance (every key present, None where unknown, so a change of what is known is a change).
    ``speedup``: the pooled comparison against the control group (``monitor.control.speed_decision``), or None;
    one that does not qualify (too few tokens) publishes no number."""
    measured = speedup if speedup is not None and speedup.qualifies and speedup.speedup is not None else None
    out: dict[str, Any] = {
        "revision": revision,
        "timePerOutputTokenSeconds": None,
        "generationTokensPerSecond": None,
        "runningRequests": None,
        "speedup": _round(measured.speedup, 3) if measured is not None else None,
        "speedupByLoad": [
            {"runningMin": b.start, "runningMax": b.end, "speedup": round(b.speedup, 3), "tokens": int(b.tokens)}
            for b in (measured.by_load if measured is not None else ())
            if b.speedup is not None
        ][:16],
        "speedupFrom": _iso_ms(measured.start) if measured is not None else None,
        "speedupTo": _iso_ms(measured.end) if measured is not None else None,
        "windowEnd": None,
    }
    speed = window.speed if window is not None else None
    if window is None or speed is None:
        out["message"] = f"no window with output tokens yet for revision {revision}: speed not measured"
        return out
    tpot = speed.time_per_output_token
    out.update(
        {
            "timePerOutputTokenSeconds": _round(tpot, 6),
            "generationTokensPerSecond": _round(speed.tokens_per_second, 2),
            "runningRequests": _round(speed.running_requests, 2),
            "windowEnd": _iso(window.end),
        }
    )
    source = (
        f"vllm:request_time_per_output_token_seconds, {speed.requests:,.0f} finished request(s)"
        if speed.request_tpot_seconds is not None
        else "vllm:inter_token_latency_seconds: no request finished in the window"
    )
    words = [
        f"time per output token {tpot * 1000:.1f} ms ({source})" if tpot is not None else "",
        f"{speed.tokens_per_second:,.1f} output tokens/s" if speed.tokens_per_second is not None else "",
        f"{speed.output_tokens or 0:,.0f} output tokens on {speed.pods} pod(s)",
        f"{speed.running_requests:.1f} requests running per pod" if speed.running_requests is not None else "",
    ]
    said = ", ".join(w for w in words if w)
    tail = (
        f"speedup {measured.speedup:.2f}x against the control group over {measured.tokens:,.0f} speculative and "
        f"{measured.control_tokens:,.0f} control output tokens in the last {measured.windows} qualifying window(s)"
        if measured is not None and measured.speedup is not None
        else NO_CONTROL
    )
    out["message"] = f"revision {revision}, window ending {_iso(window.end)}: {said}; {tail}"[:1024]
    return out


def meaningful(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` is worth a status write over ``old`` (see the module docstring)."""
    if old is None:
        return True
    if old.get("revision") != new.get("revision"):
        return True
    if [(b["runningMin"], b["runningMax"]) for b in old.get("speedupByLoad") or []] != [
        (b["runningMin"], b["runningMax"]) for b in new.get("speedupByLoad") or []
    ]:
        return True
    if new.get("timePerOutputTokenSeconds") is None and old.get("message") != new.get("message"):
        return True  # nothing measured: the message is the only place that says why
    for key, relative, absolute in (
        ("timePerOutputTokenSeconds", SPEED_EPSILON, 0.0),
        ("generationTokensPerSecond", SPEED_EPSILON, 0.0),
        ("runningRequests", SPEED_EPSILON, RUNNING_EPSILON),
        ("speedup", SPEEDUP_EPSILON, SPEEDUP_FLOOR),
    ):
        a, b = old.get(key), new.get(key)
        if (a is None) != (b is None):
            return True
        if a is not None and b is not None and _moved(float(a), float(b), relative, absolute):
            return True
    old_load = {(b["runningMin"], b["runningMax"]): b["speedup"] for b in old.get("speedupByLoad") or []}
    return any(
        _moved(old_load[load], b["speedup"], SPEEDUP_EPSILON, SPEEDUP_FLOOR)
        for b in new.get("speedupByLoad") or []
        if (load := (b["runningMin"], b["runningMax"])) in old_load
    )


def _moved(a: float, b: float, relative: float, floor: float) -> bool:
    """``b`` differs from ``a`` by at least ``relative`` of ``a`` and at least ``floor``."""
    moved = abs(b - a)
    return moved > 0 and moved >= max(floor, relative * abs(a))

"""status.performance: the serving revision's measured speed, and the slot for its speedup against a control.

Why its own module: what is published, and when a new number is worth a status write, are decisions, so they are
plain functions of the windows (``monitor.speed``) tested without a cluster; the tracker only calls them.

* :func:`performance_status` builds the status from the latest window that generated tokens: mean time per output
  token, output tokens per second (all pods), mean running requests per pod, and a message in words.
* :func:`measured_speedup` is the slot for issue 14's control group: given windows of the speculative pods and of
  control pods (speculation off) over the same spans, the speedup is control time per output token / speculative
  time per output token, overall and per range of running requests. Until the operator runs a control group the
  tracker passes no control windows, the speedup is None, and the message says why.
* :func:`meaningful` keeps steady state free of writes (the "zero API writes per object per minute" budget): a new
  status only when the revision, the verdict of what is known, or a number moved by more than its noise margin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy.monitor.speed import Speed
from specdeploy.monitor.window import Window

#: Ranges of mean running requests per pod (inclusive; None: no upper end), as vLLM's
#: ``num_speculative_tokens_per_batch_size`` ranges are written.
LOAD_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 1), (2, 4), (5, 8), (9, 16), (17, 64), (65, None))
#: Relative change of time per output token or tokens per second that is worth a status write.
SPEED_EPSILON = 0.1
#: Change of mean running requests per pod worth a write: this much, or SPEED_EPSILON of itself if more.
RUNNING_EPSILON = 1.0
#: Change of a speedup worth a write.
SPEEDUP_EPSILON = 0.05

NO_CONTROL = "speedup needs a control group with speculation off (spec.speculation.control): not measured"


@dataclass(frozen=True)
class Speedup:
    """Measured speedup (control / speculative time per output token), overall and per load range."""

    overall: float | None
    by_load: tuple[tuple[int, int | None, float, float], ...] = ()  # (running min, max, speedup, spec tokens)
    tokens: float = 0.0


def _tpot_weighted(windows: Sequence[Speed]) -> tuple[float | None, float]:
    """Mean time per output token over ``windows`` weighted by their output tokens, and those tokens."""
    pairs = [(w.time_per_output_token, w.output_tokens or 0.0) for w in windows]
    usable = [(t, n) for t, n in pairs if t is not None and n > 0]
    tokens = sum(n for _, n in usable)
    return (sum(t * n for t, n in usable) / tokens if tokens > 0 else None), tokens


def bucket_of(running: float | None) -> tuple[int, int | None] | None:
    """The load range that a mean running-requests figure falls in (rounded to a whole batch size)."""
    if running is None:
        return None
    n = round(running)
    return next((b for b in LOAD_BUCKETS if n >= b[0] and (b[1] is None or n <= b[1])), None)


def measured_speedup(speculative: Sequence[Speed], control: Sequence[Speed], min_tokens: float = 0.0) -> Speedup | None:
    """Speedup of speculation over ``control`` from windows over the same spans (``speculative[i]`` beside
    ``control[i]``); a pair counts when both sides generated at least ``min_tokens`` output tokens and measured a
    time per output token. None without any counted pair (no control group, or no traffic)."""
    counted = [
        (s, c)
        for s, c in zip(speculative, control, strict=False)
        if (s.output_tokens or 0) >= max(min_tokens, 1e-9)
        and (c.output_tokens or 0) >= max(min_tokens, 1e-9)
        and s.time_per_output_token
        and c.time_per_output_token
    ]
    if not counted:
        return None

    def ratio(pairs: Sequence[tuple[Speed, Speed]]) -> tuple[float | None, float]:
        spec_tpot, tokens = _tpot_weighted([s for s, _ in pairs])
        control_tpot, _ = _tpot_weighted([c for _, c in pairs])
        if spec_tpot is None or control_tpot is None or spec_tpot <= 0:
            return None, tokens
        return control_tpot / spec_tpot, tokens

    overall, tokens = ratio(counted)
    by_load: list[tuple[int, int | None, float, float]] = []
    for bucket in LOAD_BUCKETS:
        inside = [(s, c) for s, c in counted if bucket_of(s.running_requests) == bucket]
        value, n = ratio(inside) if inside else (None, 0.0)
        if value is not None:
            by_load.append((bucket[0], bucket[1], value, n))
    return Speedup(overall=overall, by_load=tuple(by_load), tokens=tokens)


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


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def performance_status(revision: str, window: Window | None, speedup: Speedup | None = None) -> dict[str, Any]:
    """status.performance (every key present, None where unknown, so a change of what is known is a change)."""
    out: dict[str, Any] = {
        "revision": revision,
        "timePerOutputTokenSeconds": None,
        "generationTokensPerSecond": None,
        "runningRequests": None,
        "speedup": _round(speedup.overall, 3) if speedup is not None else None,
        "speedupByLoad": [
            {"runningMin": lo, "runningMax": hi, "speedup": round(value, 3), "tokens": int(tokens)}
            for lo, hi, value, tokens in (speedup.by_load if speedup is not None else ())
        ][:16],
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
        f"speedup {speedup.overall:.2f}x against the control group over {speedup.tokens:,.0f} tokens"
        if speedup is not None and speedup.overall is not None
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
        ("speedup", 0.0, SPEEDUP_EPSILON),
    ):
        a, b = old.get(key), new.get(key)
        if (a is None) != (b is None):
            return True
        if a is not None and b is not None:
            moved = abs(float(b) - float(a))
            if moved > 0 and moved >= max(absolute, relative * abs(float(a))):
                return True
    old_load = {(b["runningMin"], b["runningMax"]): b["speedup"] for b in old.get("speedupByLoad") or []}
    return any(
        abs(b["speedup"] - old_load.get((b["runningMin"], b["runningMax"]), b["speedup"])) >= SPEEDUP_EPSILON
        for b in new.get("speedupByLoad") or []
    )

"""Speed per revision from vLLM's own series: time per output token, output tokens per second, load.

Why its own module: acceptance is a proxy; what a user pays for is tokens per second, and a canary with a fine
acceptance rate can still be slower than what serves (issue 13), or speculation can lose under load (issue 14).
vLLM 0.32 exports what is needed on the same ``/metrics`` page the monitor already reads:

* ``vllm:request_time_per_output_token_seconds`` (histogram, one observation per finished request: its decode time
  divided by its output tokens). A window's mean time per output token is ``Δ_sum / Δ_count``, the mean over the
  requests that finished in the window.
* ``vllm:inter_token_latency_seconds`` (histogram, one observation per request per engine step that gave it
  tokens). ``Δ_sum / Δ_count`` is the fallback when no request finished in the window. With speculation one step
  can give several tokens, so this is time per *step*, an upper bound on the time per token: it is only ever
  compared with the same series of another revision (see ``monitor.canary``), never mixed with the request one.
* ``vllm:generation_tokens_total`` (counter): output tokens, hence tokens per second.
* ``vllm:iteration_tokens_total`` (histogram, tokens per engine step): ``_sum``/``_count`` only.
* ``vllm:num_requests_running`` / ``vllm:num_requests_waiting`` (gauges): the load, averaged over the window's
  scrapes.

Only ``_sum`` and ``_count`` of the histograms are read, never their buckets, so a page adds at most fifteen lines
per engine to what the monitor keeps (``monitor.pagefilter`` keeps exactly the names in :data:`KEPT_NAMES`).

Counter resets are handled like the acceptance counters (``monitor.acceptance``): any series that went down, or a
``_created`` start time that moved, means the process restarted and the increase is the current value; a series
that went down while its start time stayed the same is a page that contradicts itself, and gives no speed (hold).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from specdeploy.monitor.parse import Labels, MetricsParseError, SeriesKey, parse_sample_line

TPOT = "vllm:request_time_per_output_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
GENERATION_TOKENS = "vllm:generation_tokens_total"
ITERATION_TOKENS = "vllm:iteration_tokens_total"
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"

TPOT_SUM, TPOT_COUNT = TPOT + "_sum", TPOT + "_count"
ITL_SUM, ITL_COUNT = ITL + "_sum", ITL + "_count"
ITERATION_SUM, ITERATION_COUNT = ITERATION_TOKENS + "_sum", ITERATION_TOKENS + "_count"

#: Counter-like series (histogram sums and counts, and the token counter).
COUNTER_SERIES = frozenset(
    {TPOT_SUM, TPOT_COUNT, ITL_SUM, ITL_COUNT, GENERATION_TOKENS, ITERATION_SUM, ITERATION_COUNT}
)
GAUGE_SERIES = frozenset({RUNNING, WAITING})
#: ``_created`` line name -> the series whose start time it gives.
CREATED_OF: Mapping[str, tuple[str, ...]] = {
    TPOT + "_created": (TPOT_SUM, TPOT_COUNT),
    ITL + "_created": (ITL_SUM, ITL_COUNT),
    "vllm:generation_tokens_created": (GENERATION_TOKENS,),
    ITERATION_TOKENS + "_created": (ITERATION_SUM, ITERATION_COUNT),
}
#: Every line name the page filter keeps for this module.
KEPT_NAMES = COUNTER_SERIES | GAUGE_SERIES | frozenset(CREATED_OF)


@dataclass(frozen=True)
class SpeedCounters:
    """One pod's speed series as read (or the increase between two readings): counters per series, their start
    times, and the gauges summed over the pod's engines (None when the page has none)."""

    series: tuple[tuple[SeriesKey, float], ...] = ()
    created: tuple[tuple[SeriesKey, float], ...] = field(default=(), repr=False)
    running: float | None = None
    waiting: float | None = None

    def series_map(self) -> dict[SeriesKey, float]:
        return dict(self.series)

    def total(self, name: str) -> float | None:
        """The sum of ``name`` over every label set, None when the page has no such series."""
        values = [v for (n, _), v in self.series if n == name]
        return sum(values) if values else None


def parse_speed_lines(lines: Iterable[tuple[int, str]]) -> SpeedCounters | None:
    """Read the speed lines a page filter kept (``(line number, text)``). None when there are none.

    Raises :class:`~specdeploy.monitor.parse.MetricsParseError` naming the line for a value that cannot be a
    counter or gauge (not a number, NaN, infinite, negative) or a duplicated series.
    """
    series: dict[SeriesKey, float] = {}
    created: dict[SeriesKey, float] = {}
    gauges: dict[str, dict[Labels, float]] = {}
    seen = False
    for line_no, text in lines:
        line = text[:-1] if text.endswith("\r") else text
        try:
            name, labels, value = parse_sample_line(line)
        except MetricsParseError as err:
            raise MetricsParseError(f"line {line_no}: {err}") from None
        if name not in KEPT_NAMES:
            continue
        seen = True
        if name in CREATED_OF:
            if math.isfinite(value):
                for counter in CREATED_OF[name]:
                    created[(counter, labels)] = value
            continue
        if not math.isfinite(value) or value < 0:
            raise MetricsParseError(f"line {line_no}: {name} has value {value!r}; expected a finite number >= 0")
        if name in GAUGE_SERIES:
            per_label = gauges.setdefault(name, {})
            if labels in per_label:
                raise MetricsParseError(f"line {line_no}: duplicate series {name}")
            per_label[labels] = value
            continue
        if (name, labels) in series:
            raise MetricsParseError(f"line {line_no}: duplicate series {name}")
        series[(name, labels)] = value
    if not seen:
        return None
    running, waiting = gauges.get(RUNNING), gauges.get(WAITING)
    return SpeedCounters(
        series=tuple(sorted(series.items())),
        created=tuple(sorted(created.items())),
        running=sum(running.values()) if running else None,
        waiting=sum(waiting.values()) if waiting else None,
    )


def speed_delta(prev: SpeedCounters, cur: SpeedCounters) -> SpeedCounters | None:
    """The increase from ``prev`` to ``cur`` of one pod (resets handled, see the module docstring); None when the
    page contradicts itself. The gauges are ``cur``'s."""
    before = prev.series_map()
    started_before, started_now = dict(prev.created), dict(cur.created)
    restarted = any(started_before.get(key, when) != when for key, when in cur.created)
    for key, value in cur.series:
        old = before.get(key)
        if old is None or value >= old:
            continue
        if key in started_before and started_before[key] == started_now.get(key):
            return None  # went down without a restart: not a reading to trust
        restarted = True
    increase = dict(cur.series) if restarted else {key: value - before.get(key, 0.0) for key, value in cur.series}
    return SpeedCounters(
        series=tuple(sorted(increase.items())), created=cur.created, running=cur.running, waiting=cur.waiting
    )


@dataclass(frozen=True)
class PodSpeed:
    """What one pod contributes to a window: its increase over ``seconds``, and its gauges' mean over the window.

    ``since``/``until``: the scrape times the increase lies between (a window's data spans its scrapes, not its
    nominal bounds: a request that finished between two scrapes counts in the window of the later one).
    """

    increase: SpeedCounters
    seconds: float
    running: float | None = None
    waiting: float | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class Speed:
    """A revision's speed over one window (summed over its pods). None where the window cannot say.

    ``request_tpot_seconds``: mean time per output token of the requests that finished (``requests`` of them);
    ``inter_token_seconds``: mean inter-token latency (``steps`` observations); ``output_tokens``: generated tokens;
    ``tokens_per_second``: the pods' output token rates added up; ``running_requests``/``waiting_requests``: mean
    requests running / waiting per pod; ``tokens_per_step``: mean tokens per engine step; ``since``/``until``: the
    earliest and latest scrape time the pods' increases lie between (None when not known, e.g. from Prometheus).
    """

    output_tokens: float | None = None
    tokens_per_second: float | None = None
    request_tpot_seconds: float | None = None
    requests: float = 0.0
    inter_token_seconds: float | None = None
    steps: float = 0.0
    running_requests: float | None = None
    waiting_requests: float | None = None
    tokens_per_step: float | None = None
    pods: int = 0
    since: float | None = None
    until: float | None = None

    @property
    def time_per_output_token(self) -> float | None:
        """The request histogram's mean when a request finished, else the inter-token latency's."""
        return self.request_tpot_seconds if self.request_tpot_seconds is not None else self.inter_token_seconds


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den is not None and den > 0 else None


def summarize_speed(parts: Sequence[PodSpeed]) -> Speed | None:
    """Sum the pods' increases into a :class:`Speed`; None without any pod."""
    if not parts:
        return None

    def total(name: str) -> float | None:
        values = [v for v in (p.increase.total(name) for p in parts) if v is not None]
        return sum(values) if values else None

    rates = [
        tokens / p.seconds
        for p in parts
        if p.seconds > 0 and (tokens := p.increase.total(GENERATION_TOKENS)) is not None
    ]
    running = [p.running for p in parts if p.running is not None]
    waiting = [p.waiting for p in parts if p.waiting is not None]
    tpot_count, itl_count = total(TPOT_COUNT), total(ITL_COUNT)
    since = [p.since for p in parts if p.since is not None]
    until = [p.until for p in parts if p.until is not None]
    return Speed(
        output_tokens=total(GENERATION_TOKENS),
        tokens_per_second=sum(rates) if rates else None,
        request_tpot_seconds=_ratio(total(TPOT_SUM), tpot_count),
        requests=tpot_count or 0.0,
        inter_token_seconds=_ratio(total(ITL_SUM), itl_count),
        steps=itl_count or 0.0,
        running_requests=sum(running) / len(running) if running else None,
        waiting_requests=sum(waiting) / len(waiting) if waiting else None,
        tokens_per_step=_ratio(total(ITERATION_SUM), total(ITERATION_COUNT)),
        pods=len(parts),
        since=min(since) if since else None,
        until=max(until) if until else None,
    )


def speed_from_totals(totals: Mapping[str, float | None], seconds: float) -> Speed | None:
    """A :class:`Speed` from window totals already summed over pods (e.g. PromQL ``increase()``), keyed by series
    name, plus ``running``/``waiting`` means and the number of ``pods``; None when nothing is known."""
    known = {k: v for k, v in totals.items() if v is not None}
    if not known:
        return None
    tokens = known.get(GENERATION_TOKENS)
    tpot_count, itl_count = known.get(TPOT_COUNT), known.get(ITL_COUNT)
    return Speed(
        output_tokens=tokens,
        tokens_per_second=tokens / seconds if tokens is not None and seconds > 0 else None,
        request_tpot_seconds=_ratio(known.get(TPOT_SUM), tpot_count),
        requests=tpot_count or 0.0,
        inter_token_seconds=_ratio(known.get(ITL_SUM), itl_count),
        steps=itl_count or 0.0,
        running_requests=known.get(RUNNING),
        waiting_requests=known.get(WAITING),
        tokens_per_step=_ratio(known.get(ITERATION_SUM), known.get(ITERATION_COUNT)),
        pods=int(known.get("pods") or 0),
    )

"""Get a window's spec-decode increases from Prometheus instead of scraping pods (``metrics.source: Prometheus``).

Why: clusters that already scrape vLLM with Prometheus (or that block the operator from reaching pods) should get
the same numbers from PromQL. ``increase()`` handles counter resets per series before ``sum`` adds up engines and
pods, which is the same arithmetic as :mod:`specdeploy.monitor.acceptance` (Prometheus extrapolates to the window
edges, so its counts are not whole numbers). The result is a :class:`SpecDecodeCounters` like a scraped delta, so
the window, the decision and the status code do not care where the numbers came from.

Queries (one per number, run concurrently; ``{sel}`` is the pod selector, ``w`` the window):
``sum(increase(vllm:spec_decode_num_drafts_total{sel}[w]))`` and likewise for draft and accepted tokens,
``sum by (position) (increase(vllm:spec_decode_num_accepted_tokens_per_pos_total{sel}[w]))``, and the V0 fallback
``avg(vllm:spec_decode_draft_acceptance_rate{sel})``. An empty answer means no data (the caller holds).

Speed (``monitor.speed``), six more queries per window (:func:`build_speed_queries`):
``sum(increase(X{sel}[w]))`` for the ``_sum`` and ``_count`` of ``vllm:request_time_per_output_token_seconds`` and
``vllm:inter_token_latency_seconds`` and for ``vllm:generation_tokens_total``, and
``avg(sum by (pod) (avg_over_time(vllm:num_requests_running{sel}[w])))``, the mean running requests per pod, as the
pod source computes them. A failed speed query costs the window its speed, never its acceptance.

Bounded: redirects are refused (a 3xx is an error, so the object holds), an answer's body is read with
:func:`specdeploy.monitor.body.read_body` under :data:`MAX_ANSWER_BYTES` on the wire and after decompression
(a summed query answers in a few hundred bytes), and an answer with more than :data:`MAX_RESULT_SAMPLES` samples
is refused before any of them is converted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp

from specdeploy.monitor.body import ACCEPT_ENCODING, BodyTooLargeError, BodyUnreadableError, read_body
from specdeploy.monitor.parse import (
    ACCEPTED_PER_POS,
    ACCEPTED_TOKENS,
    DRAFT_TOKENS,
    DRAFTS,
    V0_ACCEPTANCE_RATE,
    SpecDecodeCounters,
)
from specdeploy.monitor.speed import (
    GENERATION_TOKENS,
    ITL_COUNT,
    ITL_SUM,
    RUNNING,
    TPOT_COUNT,
    TPOT_SUM,
    Speed,
    speed_from_totals,
)

#: Largest Prometheus answer read, in bytes (on the wire and decompressed).
MAX_ANSWER_BYTES = 1024 * 1024
#: Most samples accepted in one answer (the queries are sums: one sample, or one per draft position).
MAX_RESULT_SAMPLES = 1024

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")

Sample = tuple[dict[str, str], float]


class PrometheusQueryError(RuntimeError):
    """Prometheus could not answer, or answered something that is not an instant vector; the message says which."""


@dataclass(frozen=True)
class PodSelector:
    """Which series belong to the object: label equalities plus, optionally, an exact list of pod names."""

    labels: tuple[tuple[str, str], ...] = ()
    pods: tuple[str, ...] = ()
    pod_label: str = "pod"

    def matchers(self) -> str:
        parts: list[str] = []
        for name, value in self.labels:
            _check_label_name(name)
            parts.append(f'{name}="{_promql_string(value)}"')
        if self.pods:
            _check_label_name(self.pod_label)
            alternatives = "|".join(_RE2_SPECIAL.sub(r"\\\1", pod) for pod in sorted(set(self.pods)))
            parts.append(f'{self.pod_label}=~"{_promql_string(alternatives)}"')
        return "{" + ",".join(parts) + "}"


def _span(window_seconds: float) -> str:
    if not (math.isfinite(window_seconds) and window_seconds > 0):
        raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
    return f"{round(window_seconds)}s" if float(window_seconds).is_integer() else f"{round(window_seconds * 1000)}ms"


def build_speed_queries(selector: PodSelector, window_seconds: float) -> dict[str, str]:
    """The PromQL per speed number, keyed by the series name ``monitor.speed`` sums (see the module docstring)."""
    span, sel = _span(window_seconds), selector.matchers()
    queries = {name: f"sum(increase({name}{sel}[{span}]))" for name in (TPOT_SUM, TPOT_COUNT, ITL_SUM, ITL_COUNT)}
    queries[GENERATION_TOKENS] = f"sum(increase({GENERATION_TOKENS}{sel}[{span}]))"
    queries[RUNNING] = f"avg(sum by ({selector.pod_label}) (avg_over_time({RUNNING}{sel}[{span}])))"
    return queries


def speed_from_results(results: Mapping[str, Sequence[Sample]], window_seconds: float, pods: int) -> Speed | None:
    """Combine the answers to :func:`build_speed_queries`; None when Prometheus has none of the speed series."""
    totals: dict[str, float | None] = {}
    for key, rows in results.items():
        if len(rows) > 1:
            raise PrometheusQueryError(f"{key}: expected one summed sample, got {len(rows)}")
        totals[key] = _finite(rows[0][1], key) if rows else None
    totals["pods"] = float(pods)
    if all(v is None for k, v in totals.items() if k != "pods"):
        return None
    return speed_from_totals(totals, window_seconds)


def build_queries(selector: PodSelector, window_seconds: float) -> dict[str, str]:
    """The PromQL per number: keys ``drafts``, ``draft_tokens``, ``accepted_tokens``, ``per_position``, ``v0_rate``."""
    span = _span(window_seconds)
    sel = selector.matchers()
    return {
        "drafts": f"sum(increase({DRAFTS}{sel}[{span}]))",
        "draft_tokens": f"sum(increase({DRAFT_TOKENS}{sel}[{span}]))",
        "accepted_tokens": f"sum(increase({ACCEPTED_TOKENS}{sel}[{span}]))",
        "per_position": f"sum by (position) (increase({ACCEPTED_PER_POS}{sel}[{span}]))",
        "v0_rate": f"avg({V0_ACCEPTANCE_RATE}{sel})",
    }


def parse_vector(payload: Any, query: str = "") -> list[Sample]:
    """Read an ``/api/v1/query`` response body (decoded JSON) into (labels, value) pairs."""
    where = f" for {query!r}" if query else ""
    if not isinstance(payload, dict):
        raise PrometheusQueryError(f"Prometheus answer{where} is not a JSON object")
    if payload.get("status") != "success":
        kind = payload.get("errorType", "unknown")
        raise PrometheusQueryError(f"Prometheus error{where}: {kind}: {payload.get('error', 'no message')}")
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise PrometheusQueryError(f"Prometheus answer{where} is not an instant vector")
    if len(data["result"]) > MAX_RESULT_SAMPLES:
        raise PrometheusQueryError(
            f"Prometheus answer{where} has {len(data['result'])} samples, more than {MAX_RESULT_SAMPLES}"
        )
    samples: list[Sample] = []
    for item in data["result"]:
        metric = item.get("metric") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(metric, dict) or not isinstance(value, list) or len(value) != 2:
            raise PrometheusQueryError(f"Prometheus answer{where} has a malformed sample: {item!r:.200}")
        try:
            number = float(value[1])
        except (TypeError, ValueError):
            raise PrometheusQueryError(f"Prometheus answer{where} has a non-numeric value {value[1]!r:.50}") from None
        samples.append(({str(k): str(v) for k, v in metric.items()}, number))
    return samples


def counters_from_results(results: Mapping[str, Sequence[Sample]]) -> SpecDecodeCounters | None:
    """Combine the answers to :func:`build_queries` into counters; None when Prometheus has no spec-decode data."""
    totals: dict[str, float | None] = {}
    for key in ("drafts", "draft_tokens", "accepted_tokens"):
        rows = results.get(key, ())
        if len(rows) > 1:
            raise PrometheusQueryError(f"{key}: expected one summed sample, got {len(rows)}")
        totals[key] = _finite(rows[0][1], key) if rows else None
    v0_rows = results.get("v0_rate", ())
    v0_rate = v0_rows[0][1] if v0_rows and not math.isnan(v0_rows[0][1]) else None
    if totals["drafts"] is not None:
        missing = [k for k, v in totals.items() if v is None]
        if missing:
            raise PrometheusQueryError(f"Prometheus has drafts but no {', '.join(missing)} for the same pods")
        return SpecDecodeCounters(
            engine="v1",
            drafts=totals["drafts"] or 0.0,
            draft_tokens=totals["draft_tokens"] or 0.0,
            accepted_tokens=totals["accepted_tokens"] or 0.0,
            per_position=_per_position(results.get("per_position", ())),
            v0_acceptance_rate=v0_rate,
        )
    if v0_rate is not None:
        return SpecDecodeCounters(
            engine="v0", drafts=0.0, draft_tokens=0.0, accepted_tokens=0.0, v0_acceptance_rate=v0_rate
        )
    return None


async def query_window(
    session: aiohttp.ClientSession,
    base_url: str,
    selector: PodSelector,
    window_seconds: float,
    *,
    at: float | None = None,
    timeout: float = 10.0,
    turn: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> SpecDecodeCounters | None:
    """Ask Prometheus at ``base_url`` for the increases over the window ending at ``at`` (its "now" if None).

    ``turn``, if given, is entered around each query (the object's connection budget, see ``monitor.pools``).
    """
    answers = await _ask_all(
        session, base_url, build_queries(selector, window_seconds), at=at, timeout=timeout, turn=turn
    )
    return counters_from_results(answers)


async def query_speed(
    session: aiohttp.ClientSession,
    base_url: str,
    selector: PodSelector,
    window_seconds: float,
    *,
    at: float | None = None,
    timeout: float = 10.0,
    turn: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> Speed | None:
    """Ask Prometheus for the speed of the selected pods over the window ending at ``at``."""
    queries = build_speed_queries(selector, window_seconds)
    answers = await _ask_all(session, base_url, queries, at=at, timeout=timeout, turn=turn)
    return speed_from_results(answers, window_seconds, len(selector.pods))


@dataclass(frozen=True)
class PrometheusAsker:
    """One Prometheus as one object's windows ask it: the connection, the address, the time limit per query and the
    object's connection budget (``turn``), given once for the acceptance and the speed questions of a window."""

    session: aiohttp.ClientSession
    base_url: str
    timeout: float = 10.0
    turn: Callable[[], AbstractAsyncContextManager[None]] | None = None

    async def counters(self, selector: PodSelector, window_seconds: float, at: float) -> SpecDecodeCounters | None:
        """:func:`query_window` over the window of ``window_seconds`` ending at ``at``."""
        return await query_window(
            self.session, self.base_url, selector, window_seconds, at=at, timeout=self.timeout, turn=self.turn
        )

    async def speed(self, selector: PodSelector, window_seconds: float, at: float) -> Speed | None:
        """:func:`query_speed` over the same window."""
        return await query_speed(
            self.session, self.base_url, selector, window_seconds, at=at, timeout=self.timeout, turn=self.turn
        )


async def _ask_all(
    session: aiohttp.ClientSession,
    base_url: str,
    queries: Mapping[str, str],
    *,
    at: float | None,
    timeout: float,
    turn: Callable[[], AbstractAsyncContextManager[None]] | None,
) -> dict[str, list[Sample]]:
    endpoint = base_url.rstrip("/") + "/api/v1/query"

    async def ask(key: str, query: str) -> tuple[str, list[Sample]]:
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        async with turn() if turn is not None else contextlib.nullcontext():
            payload = await _get_json(session, endpoint, params, timeout)
        return key, parse_vector(payload, query)

    return dict(await asyncio.gather(*(ask(key, query) for key, query in queries.items())))


async def _get_json(session: aiohttp.ClientSession, endpoint: str, params: Mapping[str, str], timeout: float) -> Any:
    """GET one query: no redirects, the body capped at :data:`MAX_ANSWER_BYTES`, decoded as JSON."""
    body = bytearray()
    try:
        async with session.get(
            endpoint,
            params=params,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
            headers={"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
        ) as resp:
            if 300 <= resp.status < 400:
                location = resp.headers.get("Location", "")[:200]
                raise PrometheusQueryError(f"{endpoint}: HTTP {resp.status} redirect to {location!r} refused")
            await read_body(resp, body.extend, max_bytes=MAX_ANSWER_BYTES, auto_decompressed=session.auto_decompress)
            status = resp.status
    except (BodyTooLargeError, BodyUnreadableError) as err:
        raise PrometheusQueryError(f"{endpoint}: {err}") from None
    except TimeoutError:
        raise PrometheusQueryError(f"{endpoint}: no answer within {timeout:g}s") from None
    except aiohttp.ClientError as err:
        raise PrometheusQueryError(f"{endpoint}: {type(err).__name__}: {err}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise PrometheusQueryError(f"{endpoint}: HTTP {status}, body is not JSON") from None


def _per_position(rows: Sequence[Sample]) -> tuple[float, ...]:
    by_position: dict[int, float] = {}
    for labels, value in rows:
        raw = labels.get("position", "")
        if not (raw.isdigit() and raw.isascii()):
            raise PrometheusQueryError(f"per_position: sample without a numeric position label: {labels}")
        by_position[int(raw)] = _finite(value, f"per_position[{raw}]")
    if sorted(by_position) != list(range(len(by_position))):
        return ()  # a gap means some positions had no data in the window: no per-position view rather than a wrong one
    return tuple(by_position[i] for i in range(len(by_position)))


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise PrometheusQueryError(f"{what}: Prometheus returned {value!r}")
    return value


def _check_label_name(name: str) -> None:
    if not _LABEL_NAME.match(name):
        raise ValueError(f"invalid Prometheus label name {name!r}")


def _promql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

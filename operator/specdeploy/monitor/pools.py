"""Connection budgets: one tenant's slow endpoints must not take the scrapes of every other tenant down with them.

Why: every object's scrapes shared one aiohttp pool (256 connections). Objects whose pods (or Prometheus) accept a
connection and never answer held a connection each until their timeout (up to 300 s), so a few dozen such objects
filled the pool, every other object's requests waited for a free connection inside their own timeout, and every
tenant's monitor held: rollback protection stopped cluster-wide. The budgets here:

* a pool for pods (:data:`POD_POOL_CONNECTIONS`, at most :data:`POD_CONNECTIONS_PER_HOST` per pod address) and a
  separate pool for Prometheus (:data:`PROMETHEUS_POOL_CONNECTIONS`), so neither can starve the other;
* at most :data:`OBJECT_CONNECTIONS` requests in flight per SpeculativeDeployment and
  :data:`NAMESPACE_CONNECTIONS` per namespace; a request waits for its object's and namespace's turn before it
  asks the pool for a connection (and before its timeout starts), so a slow object delays only itself and a slow
  namespace only itself. The pool fills only when more than ``POD_POOL_CONNECTIONS / NAMESPACE_CONNECTIONS``
  (8) namespaces are all slow at once;
* a hard cap on a request's timeout, :data:`MAX_TIMEOUT_SECONDS`, whatever ``spec.metrics.timeoutSeconds`` says,
  so a connection is never held longer than that.

Also here: :func:`scrape_object`, one object's scrape interval under those budgets, parsing each kept page off
the event loop when it is large (more than :data:`INLINE_PARSE_LINES` spec-decode lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import aiohttp

from specdeploy.monitor.pagefilter import SpecDecodeLines
from specdeploy.monitor.parse import MetricsParseError, SpecDecodeCounters, parse_lines
from specdeploy.monitor.scrape import ScrapeError, new_session, scrape_spec_decode
from specdeploy.monitor.speed import SpeedCounters, parse_speed_lines

#: Longest a single scrape or query may take, whatever the spec asks (the API allows up to 300 s).
MAX_TIMEOUT_SECONDS = 30.0
#: Connections of the pod pool, in total and per pod address.
POD_POOL_CONNECTIONS = 1024
POD_CONNECTIONS_PER_HOST = 2
#: Connections of the Prometheus pool, in total and per Prometheus server.
PROMETHEUS_POOL_CONNECTIONS = 64
PROMETHEUS_CONNECTIONS_PER_HOST = 16
#: Requests in flight per object and per namespace (pods and Prometheus alike).
OBJECT_CONNECTIONS = 4
NAMESPACE_CONNECTIONS = 128
#: A page with more kept spec-decode lines than this is parsed in a worker thread, not on the event loop.
INLINE_PARSE_LINES = 64


def capped_timeout(seconds: float) -> float:
    """The timeout a request gets: the spec's, but never more than :data:`MAX_TIMEOUT_SECONDS`."""
    return min(float(seconds), MAX_TIMEOUT_SECONDS)


class Gates:
    """One semaphore of ``size`` per key, dropped again when no one holds or waits for it (memory stays bounded)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"gate size must be >= 1, got {size}")
        self.size = size
        self._gates: dict[object, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        entry = self._gates.get(key)
        if entry is None:
            entry = self._gates[key] = (asyncio.Semaphore(self.size), [0])
        entry[1][0] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if entry[1][0] == 0:
                del self._gates[key]

    def __len__(self) -> int:
        return len(self._gates)


class Pools:
    """The operator's two connection pools and its per-object and per-namespace gates."""

    def __init__(
        self,
        *,
        pod_connections: int = POD_POOL_CONNECTIONS,
        pod_connections_per_host: int = POD_CONNECTIONS_PER_HOST,
        prometheus_connections: int = PROMETHEUS_POOL_CONNECTIONS,
        prometheus_connections_per_host: int = PROMETHEUS_CONNECTIONS_PER_HOST,
        object_connections: int = OBJECT_CONNECTIONS,
        namespace_connections: int = NAMESPACE_CONNECTIONS,
    ) -> None:
        self._pod_limits = (pod_connections, pod_connections_per_host)
        self._prometheus_limits = (prometheus_connections, prometheus_connections_per_host)
        self.objects = Gates(object_connections)
        self.namespaces = Gates(namespace_connections)
        self._sessions: dict[str, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}

    def _session(self, which: str, limits: tuple[int, int]) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        held = self._sessions.get(which)
        if held is None or held[0] is not loop or held[1].closed:
            held = self._sessions[which] = (loop, new_session(limit=limits[0], limit_per_host=limits[1]))
        return held[1]

    def pods_session(self) -> aiohttp.ClientSession:
        """The pod pool (created lazily inside the running event loop)."""
        return self._session("pods", self._pod_limits)

    def prometheus_session(self) -> aiohttp.ClientSession:
        """The Prometheus pool, separate from the pods'."""
        return self._session("prometheus", self._prometheus_limits)

    @contextlib.asynccontextmanager
    async def turn(self, namespace: str, name: str) -> AsyncIterator[None]:
        """Wait for a slot of the object and then of its namespace (always in this order: no deadlock)."""
        async with self.objects.hold((namespace, name)), self.namespaces.hold(namespace):
            yield

    async def close(self) -> None:
        for loop, session in list(self._sessions.values()):
            if loop is asyncio.get_running_loop():
                await session.close()
        self._sessions.clear()


@dataclass(frozen=True)
class PodScrape:
    """One pod's page: its counters (None: no spec-decode series), or why there are none, and the time it took;
    ``speed``: its latency, token and load series (None: none on the page, or they could not be read)."""

    url: str
    counters: SpecDecodeCounters | None
    error: ScrapeError | None
    seconds: float
    speed: SpeedCounters | None = None


def read_speed(kept: SpecDecodeLines) -> SpeedCounters | None:
    """The speed series of a kept page, or None when it has none or they cannot be trusted (a cut-off or unreadable
    line): speed only ever makes a canary verdict or status.performance hold, so a bad speed line costs the pod its
    speed, not its acceptance."""
    if kept.speed_truncated or not kept.speed:
        return None
    try:
        return parse_speed_lines(kept.speed)
    except MetricsParseError:
        return None


async def scrape_object(
    pools: Pools, namespace: str, name: str, urls: Iterable[str], *, timeout: float
) -> dict[str, PodScrape]:
    """Scrape one object's pods within its budgets; one result per distinct URL, in input order."""
    timeout = capped_timeout(timeout)
    session = pools.pods_session()

    async def one(url: str) -> PodScrape:
        async with pools.turn(namespace, name):
            started = time.perf_counter()
            got = await scrape_spec_decode(session, url, timeout=timeout)
            seconds = time.perf_counter() - started
        if isinstance(got, ScrapeError):
            return PodScrape(url, None, got, seconds)
        try:
            if len(got.lines) + len(got.speed) <= INLINE_PARSE_LINES:
                counters, speed = parse_lines(got), read_speed(got)
            else:
                counters, speed = await asyncio.to_thread(lambda: (parse_lines(got), read_speed(got)))
        except MetricsParseError as err:
            return PodScrape(url, None, ScrapeError("parse", str(err)), seconds)
        return PodScrape(url, counters, None, seconds, speed)

    results = await asyncio.gather(*(one(url) for url in dict.fromkeys(urls)))
    return {r.url: r for r in results}


#: The operator's pools (one process, one set of budgets).
POOLS = Pools()

"""Connection budgets: objects whose pods never answer do not take other tenants' scrapes down with them.

Real sockets on 127.0.0.1: every slow pod is a listener of its own (its own address for the pool) that accepts
connections and never answers; the fast object's pod is an aiohttp server serving the real vLLM page. The slow
objects' scrapes are all in flight (as their daemons would have them) while the fast object scrapes once a
second; each of its scrapes must succeed well within its 1 s interval. The same scenario with the pool shape the
operator had before (one shared pool of 256 connections, no per-object or per-namespace budget) shows that the
scenario does starve a pool: there the fast object's scrapes time out.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from specdeploy.monitor import pools as pools_mod
from specdeploy.monitor.pools import Gates, Pools, capped_timeout, scrape_object

from .pages import REAL_PAGE

SLOW_OBJECTS = 40
PODS_PER_OBJECT = 8  # 320 slow pods: more than the old pool's 256 connections
SLOW_TIMEOUT_S = 30.0  # the cap; the slow scrapes are cancelled when the fast ones are done
FAST_TIMEOUT_S = 1.0
INTERVAL_S = 1.0
FAST_SCRAPES = 2
# The operator's pool before issue 11: one session, TCPConnector(limit=256, limit_per_host=4), nothing per object.
OLD_SHAPE = {
    "pod_connections": 256,
    "pod_connections_per_host": 4,
    "object_connections": 10**6,
    "namespace_connections": 10**6,
}


class Silent:
    """Listeners that accept connections and never answer (a pod stuck in a GC pause, or a tarpit)."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, count: int) -> list[str]:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)

        urls = []
        for _ in range(count):
            server = await asyncio.start_server(hold, "127.0.0.1", 0)
            self.servers.append(server)
            urls.append(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/metrics")
        return urls

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        for server in self.servers:
            server.close()


@pytest.fixture
async def fast_url() -> AsyncIterator[str]:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=REAL_PAGE.read_bytes(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/metrics"
    await runner.cleanup()


async def fast_latencies(pools: Pools, fast_url: str, slow_urls: list[str] | None) -> list[float | None]:
    """The fast object's scrape latencies (None: failed) while the slow objects' scrapes are in flight."""
    slow: list[asyncio.Task[object]] = []
    if slow_urls:
        for i in range(SLOW_OBJECTS):
            urls = slow_urls[i * PODS_PER_OBJECT : (i + 1) * PODS_PER_OBJECT]
            slow.append(
                asyncio.create_task(scrape_object(pools, "tenant-slow", f"slow-{i}", urls, timeout=SLOW_TIMEOUT_S))
            )
        await asyncio.sleep(0.5)  # every slow scrape has its connection (or is waiting for one)
    out: list[float | None] = []
    try:
        for _ in range(FAST_SCRAPES):
            started = time.perf_counter()
            got = await scrape_object(pools, "tenant-fast", "fast", [fast_url], timeout=FAST_TIMEOUT_S)
            result = got[fast_url]
            out.append(time.perf_counter() - started if result.counters is not None else None)
            await asyncio.sleep(max(0.0, INTERVAL_S - (time.perf_counter() - started)))
    finally:
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
        await pools.close()
    return out


def fmt(latencies: list[float | None]) -> str:
    ok = [x for x in latencies if x is not None]
    median = f"median {statistics.median(ok) * 1e3:.1f} ms" if ok else "no success"
    return f"{len(ok)}/{len(latencies)} succeeded, {median}"


async def test_slow_tenants_do_not_starve_a_fast_one(fast_url: str) -> None:
    silent = Silent()
    slow_urls = await silent.start(SLOW_OBJECTS * PODS_PER_OBJECT)
    try:
        alone = await fast_latencies(Pools(), fast_url, None)
        budgeted = await fast_latencies(Pools(), fast_url, slow_urls)
        old_shape = await fast_latencies(Pools(**OLD_SHAPE), fast_url, slow_urls)
    finally:
        await silent.stop()
    print(
        f"\nfast object's scrape ({FAST_SCRAPES} scrapes, {INTERVAL_S:g} s interval, {FAST_TIMEOUT_S:g} s timeout) "
        f"beside {SLOW_OBJECTS} objects x {PODS_PER_OBJECT} pods that never answer:"
        f"\n  alone:                         {fmt(alone)}"
        f"\n  with slow tenants, budgets:    {fmt(budgeted)}"
        f"\n  with slow tenants, old pool:   {fmt(old_shape)}"
    )
    assert all(x is not None and x < INTERVAL_S for x in budgeted), budgeted
    assert all(x is None for x in old_shape), "the scenario did not starve the old pool: it proves nothing"


async def test_a_spec_timeout_above_the_cap_is_cut_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert capped_timeout(300) == pools_mod.MAX_TIMEOUT_SECONDS == 30.0
    assert capped_timeout(5) == 5.0
    monkeypatch.setattr(pools_mod, "MAX_TIMEOUT_SECONDS", 0.3)
    silent = Silent()
    [url] = await silent.start(1)
    pools = Pools()
    try:
        started = time.perf_counter()
        got = await scrape_object(pools, "ns", "obj", [url], timeout=300)
        elapsed = time.perf_counter() - started
    finally:
        await pools.close()
        await silent.stop()
    error = got[url].error
    assert error is not None and error.reason == "timeout" and "within 0.3s" in error.detail
    assert elapsed < 2.0


async def test_gates_bound_concurrency_per_key_and_forget_idle_keys() -> None:
    gates = Gates(2)
    running: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with gates.hold(key):
            running[key] += 1
            peak[key] = max(peak[key], running[key])
            await asyncio.sleep(0.01)
            running[key] -= 1

    await asyncio.gather(*(work(k) for k in "ab" * 10))
    assert peak == {"a": 2, "b": 2}
    assert len(gates) == 0
    with pytest.raises(ValueError, match="gate size"):
        Gates(0)

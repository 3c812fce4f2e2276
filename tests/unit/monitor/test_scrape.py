"""Scraping against a real aiohttp server on 127.0.0.1: good, slow, failing, huge and garbage pages."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from specdeploy.monitor.parse import MAX_PAGE_BYTES, parse_spec_decode
from specdeploy.monitor.scrape import REASONS, ScrapeError, scrape, scrape_many

from .pages import REAL_PAGE


class Server:
    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.base = ""

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=REAL_PAGE.read_bytes(), content_type="text/plain")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(50):
            await response.write(b"# still here\n")
            await asyncio.sleep(0.1)
        return response

    async def error(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="engine dead")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/metrics")

    async def huge_chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: the cap must apply while reading
        await response.prepare(request)
        chunk = b"x" * (1024 * 1024)
        for _ in range(MAX_PAGE_BYTES // len(chunk) + 2):
            await response.write(chunk)
        return response

    async def declared(self, request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 5000)

    async def garbage(self, request: web.Request) -> web.Response:
        return web.Response(body=bytes(range(256)) * 40)

    async def counted(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.1)
        self.in_flight -= 1
        return web.Response(body=REAL_PAGE.read_bytes())


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", state.metrics),
            web.get("/slow", state.slow),
            web.get("/trickle", state.trickle),
            web.get("/error", state.error),
            web.get("/redirect", state.redirect),
            web.get("/huge", state.huge_chunked),
            web.get("/declared", state.declared),
            web.get("/garbage", state.garbage),
            web.get("/counted/{n}", state.counted),
        ]
    )
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base = f"http://{host}:{port}"
    yield state
    await runner.cleanup()


async def get(url: str, timeout: float = 2.0, max_bytes: int = MAX_PAGE_BYTES) -> str | ScrapeError:
    async with aiohttp.ClientSession() as session:
        return await scrape(session, url, timeout=timeout, max_bytes=max_bytes)


async def test_real_page_is_returned_and_parses(server: Server) -> None:
    text = await get(server.base + "/metrics")
    assert isinstance(text, str)
    counters = parse_spec_decode(text)
    assert counters is not None and counters.draft_tokens == 756


@pytest.mark.parametrize(
    ("path", "reason", "detail"),
    [
        ("/slow", "timeout", "within 0.3s"),
        ("/trickle", "timeout", "within 0.3s"),
        ("/error", "http_status", "HTTP 500"),
        ("/redirect", "http_status", "HTTP 302"),
    ],
)
async def test_failures_come_back_as_reasons(server: Server, path: str, reason: str, detail: str) -> None:
    started = time.perf_counter()
    result = await get(server.base + path, timeout=0.3)
    assert isinstance(result, ScrapeError)
    assert (result.reason, result.reason in REASONS) == (reason, True)
    assert detail in result.detail and path in result.detail
    assert time.perf_counter() - started < 2.0


async def test_size_cap_while_streaming_and_from_content_length(server: Server) -> None:
    result = await get(server.base + "/huge", timeout=10)
    assert isinstance(result, ScrapeError) and result.reason == "too_large"
    declared = await get(server.base + "/declared", max_bytes=1000)
    assert isinstance(declared, ScrapeError) and declared.reason == "too_large"
    assert "Content-Length 5000" in declared.detail


async def test_garbage_is_text_that_holds(server: Server) -> None:
    text = await get(server.base + "/garbage")
    assert isinstance(text, str)
    assert parse_spec_decode(text) is None


async def test_connection_refused_and_bad_urls() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await get(f"http://127.0.0.1:{port}/metrics")
    assert isinstance(refused, ScrapeError) and refused.reason == "connection"
    bad = await get("http://127.0.0.1:99999/metrics")
    assert isinstance(bad, ScrapeError) and bad.reason == "invalid_url"
    not_http = await get("ftp://127.0.0.1/metrics")
    assert isinstance(not_http, ScrapeError) and not_http.reason == "invalid_url"


async def test_scrape_many_is_concurrent_bounded_and_isolates_failures(server: Server) -> None:
    urls = [f"{server.base}/counted/{i}" for i in range(20)] + [server.base + "/error", server.base + "/slow"]
    started = time.perf_counter()
    outcomes = await scrape_many(urls, timeout=1.0, concurrency=5)
    elapsed = time.perf_counter() - started
    assert list(outcomes) == urls
    assert server.max_in_flight == 5
    assert all(isinstance(outcomes[u].result, str) for u in urls[:20])
    assert isinstance(outcomes[urls[20]].result, ScrapeError)
    slow = outcomes[urls[21]].result
    assert isinstance(slow, ScrapeError) and slow.reason == "timeout"
    assert 0.3 < elapsed < 3.0  # 20 x 0.1 s in batches of 5, and the slow one cut at 1 s
    assert all(o.seconds > 0 for o in outcomes.values())


async def test_scrape_many_reuses_a_given_session(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        first = await scrape_many([server.base + "/metrics"], timeout=2, session=session)
        second = await scrape_many([server.base + "/metrics"], timeout=2, session=session)
        assert not session.closed
    assert first.keys() == second.keys()
    with pytest.raises(ValueError, match="concurrency"):
        await scrape_many([], timeout=1, concurrency=0)

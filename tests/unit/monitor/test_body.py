"""Bodies are capped on the wire and after decompression, against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from specdeploy.monitor.parse import parse_lines, parse_spec_decode
from specdeploy.monitor.scrape import ScrapeError, new_session, scrape, scrape_spec_decode

from .pages import REAL_PAGE

CAP = 1024 * 1024


def bomb(decoded: int) -> bytes:
    """``decoded`` zero bytes, gzip-compressed (about 1000:1), built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    out = [packer.compress(block) for _ in range(decoded // len(block))]
    return b"".join([*out, packer.flush()])


BOMB = bomb(256 * 1024 * 1024)


async def gzipped(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(REAL_PAGE.read_bytes()), headers={"Content-Encoding": "gzip"})


async def deflated(request: web.Request) -> web.Response:
    return web.Response(body=zlib.compress(REAL_PAGE.read_bytes()), headers={"Content-Encoding": "deflate"})


async def gzip_bomb(request: web.Request) -> web.Response:
    return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})


async def trailing_junk(request: web.Request) -> web.StreamResponse:
    """A small valid gzip member, then megabytes on the wire that decode to nothing (no Content-Length)."""
    response = web.StreamResponse(headers={"Content-Encoding": "gzip"})
    await response.prepare(request)
    await response.write(gzip.compress(b"x 1\n"))
    for _ in range(4):
        await response.write(b"\0" * CAP)
    return response


async def brotli(request: web.Request) -> web.Response:
    return web.Response(body=b"\x1b\x03\x00", headers={"Content-Encoding": "br"})


async def broken(request: web.Request) -> web.Response:
    return web.Response(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})


async def cut(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(REAL_PAGE.read_bytes())[:500], headers={"Content-Encoding": "gzip"})


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in {
        "/gzip": gzipped,
        "/deflate": deflated,
        "/bomb": gzip_bomb,
        "/junk": trailing_junk,
        "/br": brotli,
        "/broken": broken,
        "/cut": cut,
    }.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("path", ["/gzip", "/deflate"])
async def test_compressed_pages_read_the_same(base: str, path: str) -> None:
    async with new_session(limit=4) as session:
        text = await scrape(session, base + path, timeout=5)
        kept = await scrape_spec_decode(session, base + path, timeout=5)
    assert isinstance(text, str) and text == REAL_PAGE.read_text()
    assert not isinstance(kept, ScrapeError)
    assert parse_lines(kept) == parse_spec_decode(REAL_PAGE.read_bytes())


async def test_a_gzip_bomb_stops_at_the_decoded_cap_without_inflating_it(base: str) -> None:
    assert len(BOMB) < CAP  # 256 MiB of zeros in a few hundred KiB
    async with new_session(limit=4) as session:
        tracemalloc.start()
        try:
            result = await scrape_spec_decode(session, base + "/bomb", timeout=10, max_bytes=8 * CAP)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(result, ScrapeError) and result.reason == "too_large"
    assert f"exceeds {8 * CAP} bytes once decompressed" in result.detail
    assert peak < 4 * CAP, f"peak {peak / CAP:.1f} MiB while reading a 256 MiB bomb"


async def test_bytes_on_the_wire_are_capped_too(base: str) -> None:
    async with new_session(limit=4) as session:
        result = await scrape(session, base + "/junk", timeout=10, max_bytes=CAP)
    assert isinstance(result, ScrapeError) and result.reason == "too_large"
    assert "compressed body exceeds" in result.detail


@pytest.mark.parametrize(
    ("path", "words"),
    [("/br", "Content-Encoding 'br' is not read"), ("/broken", "is broken"), ("/cut", "ends before")],
)
async def test_unreadable_encodings_are_errors_that_say_why(base: str, path: str, words: str) -> None:
    async with new_session(limit=4) as session:
        result = await scrape_spec_decode(session, base + path, timeout=5)
    assert isinstance(result, ScrapeError) and result.reason == "parse" and words in result.detail

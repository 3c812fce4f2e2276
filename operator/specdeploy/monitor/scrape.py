"""Fetch ``/metrics`` pages from pods over HTTP, concurrently, each with a timeout and a size cap.

Why its own module: scraping is the monitor's only I/O against pods, and every way it can fail (slow pod, HTTP
error, a page too large to hold, connection refused) must come back as data the window can record, with a short
``reason`` fit for a metric label, never as an exception that stops the other pods' scrapes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp

from specdeploy.monitor.parse import MAX_PAGE_BYTES

#: Every ``ScrapeError.reason``; "parse" is for the caller to use when a fetched page fails to parse.
REASONS = ("timeout", "connection", "http_status", "too_large", "invalid_url", "parse")

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ScrapeError:
    """Why a page could not be fetched: ``reason`` is one of :data:`REASONS`, ``detail`` names the URL."""

    reason: str
    detail: str


@dataclass(frozen=True)
class ScrapeOutcome:
    url: str
    result: str | ScrapeError
    seconds: float


async def scrape(
    session: aiohttp.ClientSession, url: str, *, timeout: float, max_bytes: int = MAX_PAGE_BYTES
) -> str | ScrapeError:
    """GET ``url`` and return the body as text, or a :class:`ScrapeError`. Redirects are not followed."""
    if not url.startswith(("http://", "https://")):
        return ScrapeError("invalid_url", f"{url}: only http:// and https:// URLs can be scraped")
    try:
        async with session.get(
            url,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
            headers={"Accept": "text/plain;version=0.0.4"},
        ) as response:
            if response.status != 200:
                return ScrapeError("http_status", f"{url}: HTTP {response.status}")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                return ScrapeError("too_large", f"{url}: Content-Length {declared} exceeds {max_bytes} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    return ScrapeError("too_large", f"{url}: body exceeds {max_bytes} bytes")
            return body.decode("utf-8", errors="replace")
    except TimeoutError:
        return ScrapeError("timeout", f"{url}: no complete answer within {timeout:g}s")
    except aiohttp.InvalidURL as err:
        return ScrapeError("invalid_url", f"{url}: invalid URL ({err})")
    except (aiohttp.ClientError, OSError) as err:
        return ScrapeError("connection", f"{url}: {type(err).__name__}: {err}")
    except ValueError as err:  # e.g. a malformed URL that yarl rejects before aiohttp sees it
        return ScrapeError("invalid_url", f"{url}: invalid URL ({err})")


async def scrape_many(
    urls: Iterable[str],
    *,
    timeout: float,
    concurrency: int = 64,
    max_bytes: int = MAX_PAGE_BYTES,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, ScrapeOutcome]:
    """Scrape every URL, at most ``concurrency`` at a time; one outcome per distinct URL, in input order.

    Pass a long-lived ``session`` to reuse connections across intervals; otherwise one is opened and closed here.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    targets = list(dict.fromkeys(urls))
    gate = asyncio.Semaphore(concurrency)

    async def one(client: aiohttp.ClientSession, url: str) -> ScrapeOutcome:
        async with gate:
            started = time.perf_counter()
            result = await scrape(client, url, timeout=timeout, max_bytes=max_bytes)
            return ScrapeOutcome(url=url, result=result, seconds=time.perf_counter() - started)

    async def run(client: aiohttp.ClientSession) -> list[ScrapeOutcome]:
        return list(await asyncio.gather(*(one(client, url) for url in targets)))

    if session is not None:
        outcomes = await run(session)
    else:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as own:
            outcomes = await run(own)
    return {outcome.url: outcome for outcome in outcomes}

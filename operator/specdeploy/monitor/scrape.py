"""Fetch ``/metrics`` pages from pods over HTTP, concurrently, each with a timeout and size caps.

Why its own module: scraping is the monitor's only I/O against pods, and every way it can fail (slow pod, HTTP
error, a redirect, a page too large to hold, a gzip bomb, connection refused) must come back as data the window
can record, with a short ``reason`` fit for a metric label, never as an exception that stops the other pods' scrapes.

Bounds: redirects are not followed (a 3xx is an ``http_status`` error, so the pod holds); the body is read by
:func:`specdeploy.monitor.body.read_body` with a cap on the wire and after decompression; and
:func:`scrape_spec_decode`, the operator's path, streams the page through
:class:`specdeploy.monitor.pagefilter.SpecDecodeFilter`, so only the spec-decode lines are ever held (a page over
the filter's series caps is ``too_large``, and reading stops at the cap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from specdeploy.monitor.body import ACCEPT_ENCODING, SESSION_OPTIONS, BodyTooLargeError, BodyUnreadableError, read_body
from specdeploy.monitor.pagefilter import PageRejectedError, SpecDecodeFilter, SpecDecodeLines
from specdeploy.monitor.parse import MAX_PAGE_BYTES

#: Every ``ScrapeError.reason``; "parse" is for the caller to use when a fetched page fails to parse.
REASONS = ("timeout", "connection", "http_status", "too_large", "invalid_url", "parse")

_HEADERS = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": ACCEPT_ENCODING}
T = TypeVar("T")


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


def new_session(*, limit: int, limit_per_host: int = 0) -> aiohttp.ClientSession:
    """A session whose bodies :func:`read_body` can cap on the wire (no automatic decompression)."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host)
    return aiohttp.ClientSession(connector=connector, **SESSION_OPTIONS)


async def scrape(
    session: aiohttp.ClientSession, url: str, *, timeout: float, max_bytes: int = MAX_PAGE_BYTES
) -> str | ScrapeError:
    """GET ``url`` and return the whole body as text, or a :class:`ScrapeError`. Redirects are not followed."""
    body = bytearray()
    result = await _fetch(session, url, body.extend, lambda: body, timeout=timeout, max_bytes=max_bytes)
    return result if isinstance(result, ScrapeError) else bytes(result).decode("utf-8", errors="replace")


async def scrape_spec_decode(
    session: aiohttp.ClientSession, url: str, *, timeout: float, max_bytes: int = MAX_PAGE_BYTES
) -> SpecDecodeLines | ScrapeError:
    """GET ``url`` keeping only the page's spec-decode lines (for :func:`specdeploy.monitor.parse.parse_lines`)."""
    lines = SpecDecodeFilter()
    return await _fetch(session, url, lines.feed, lines.finish, timeout=timeout, max_bytes=max_bytes)


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    sink: Callable[[bytes], None],
    done: Callable[[], T],
    *,
    timeout: float,
    max_bytes: int,
) -> T | ScrapeError:
    if not url.startswith(("http://", "https://")):
        return ScrapeError("invalid_url", f"{url}: only http:// and https:// URLs can be scraped")
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False, headers=_HEADERS
        ) as response:
            if response.status != 200:
                return ScrapeError("http_status", f"{url}: HTTP {response.status}")
            await read_body(response, sink, max_bytes=max_bytes, auto_decompressed=session.auto_decompress)
            return done()
    except (BodyTooLargeError, PageRejectedError) as err:
        return ScrapeError("too_large", f"{url}: {err}")
    except BodyUnreadableError as err:
        return ScrapeError("parse", f"{url}: {err}")
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
        async with new_session(limit=concurrency) as own:
            outcomes = await run(own)
    return {outcome.url: outcome for outcome in outcomes}

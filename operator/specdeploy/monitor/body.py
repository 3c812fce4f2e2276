"""Read an HTTP response body with a cap on the bytes on the wire and on the bytes after decompression.

Why its own module: every body the operator reads from outside (a pod's ``/metrics`` page, a Prometheus answer)
must be bounded, and aiohttp's automatic decompression would inflate a 1 MiB gzip bomb into gigabytes before any
cap on the decoded stream could see it, while a cap on the decoded stream alone lets a server send more than the
cap on the wire. So the operator's sessions are made with ``auto_decompress=False`` (:data:`SESSION_OPTIONS`) and
this module inflates ``gzip``/``deflate`` itself with ``zlib``'s ``max_length``, so that no step ever produces more
than the cap allows. Any other ``Content-Encoding`` is refused (the request only offers gzip and deflate).

The decoded bytes go to a ``sink`` chunk by chunk (a line filter, or a buffer), so a caller that keeps only part of
the body never holds the whole of it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import aiohttp

#: Options for every ``ClientSession`` whose bodies go through :func:`read_body`.
SESSION_OPTIONS: dict[str, Any] = {"auto_decompress": False}
#: The request header that goes with them.
ACCEPT_ENCODING = "gzip, deflate"
#: Compressed bodies may be this much larger than their decoded cap on the wire (incompressible data grows a little).
WIRE_SLACK = 64 * 1024

_CHUNK = 64 * 1024
_ZLIB_AUTO = 32 + zlib.MAX_WBITS  # a zlib or gzip header, detected


class BodyTooLargeError(Exception):
    """The body exceeds a cap; the message says which."""


class BodyUnreadableError(Exception):
    """The body's encoding is not one the operator reads, or its compressed stream is broken."""


async def read_body(
    response: aiohttp.ClientResponse, sink: Callable[[bytes], None], *, max_bytes: int, auto_decompressed: bool
) -> int:
    """Stream the decoded body of ``response`` into ``sink``; returns the decoded size.

    At most ``max_bytes`` decoded bytes, and at most ``max_bytes`` (identity) or ``max_bytes + WIRE_SLACK``
    (compressed) bytes on the wire. ``auto_decompressed`` is the session's ``auto_decompress``: with a session that
    decompresses by itself only the decoded cap applies, since aiohttp hands over decoded bytes.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    plain = encoding in ("", "identity")
    if auto_decompressed or plain:
        return await _read_plain(response, sink, max_bytes, declared_cap=max_bytes if plain else None)
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BodyUnreadableError(f"Content-Encoding {encoding[:40]!r} is not read (only gzip and deflate)")
    return await _read_compressed(response, sink, max_bytes)


async def _read_plain(
    response: aiohttp.ClientResponse, sink: Callable[[bytes], None], max_bytes: int, declared_cap: int | None
) -> int:
    declared = response.content_length
    if declared_cap is not None and declared is not None and declared > declared_cap:
        raise BodyTooLargeError(f"Content-Length {declared} exceeds {max_bytes} bytes")
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise BodyTooLargeError(f"body exceeds {max_bytes} bytes")
        sink(chunk)
    return total


async def _read_compressed(response: aiohttp.ClientResponse, sink: Callable[[bytes], None], max_bytes: int) -> int:
    max_wire = max_bytes + WIRE_SLACK
    declared = response.content_length
    if declared is not None and declared > max_wire:
        raise BodyTooLargeError(f"Content-Length {declared} exceeds {max_wire} compressed bytes")
    inflate = zlib.decompressobj(_ZLIB_AUTO)
    wire = total = 0

    def emit(data: bytes) -> None:
        nonlocal total
        total += len(data)
        if total > max_bytes:
            raise BodyTooLargeError(f"body exceeds {max_bytes} bytes once decompressed")
        if data:
            sink(data)

    try:
        async for chunk in response.content.iter_chunked(_CHUNK):
            wire += len(chunk)
            if wire > max_wire:
                raise BodyTooLargeError(f"compressed body exceeds {max_wire} bytes")
            pending = chunk
            while pending and not inflate.eof:
                # max_length: inflate at most one chunk per step, and never more than one byte past the cap
                emit(inflate.decompress(pending, min(_CHUNK, max_bytes - total + 1)))
                pending = inflate.unconsumed_tail
    except zlib.error as err:
        raise BodyUnreadableError(f"compressed body is broken: {err}") from None
    if not inflate.eof:
        raise BodyUnreadableError("compressed body ends before its compressed stream does")
    return total

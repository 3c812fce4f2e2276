"""Keep only the lines of a ``/metrics`` page the monitor reads while it streams in, with caps on what is kept.

Why: a vLLM page is mostly series the monitor never reads, and a hostile page can be megabytes of them, or a
hundred thousand spec-decode series. Holding the whole page (bytes, then text, then one Python object per sample)
cost the operator about 90 MiB and seconds of event-loop time per scrape of an 8 MiB page. This filter is fed the
page chunk by chunk (as it comes off the socket), looks for ``vllm:`` line starts with ``bytes.find`` (C speed),
and keeps only the lines whose name starts with ``vllm:spec_decode`` or is one of :data:`SPEED_NAMES` (the latency,
token and load series of ``monitor.speed``: histogram ``_sum``/``_count``, never the buckets), with their line
numbers for error messages. Everything else is dropped as soon as it has been scanned, so memory per scrape is one
chunk plus the kept lines.

Caps on what is kept (a page over a cap is rejected with :class:`PageRejectedError`, whose message names the cap; the
caller holds, as for any page it cannot trust):

* :data:`MAX_SERIES` kept lines per page (samples and ``_created`` lines, every engine and label set).
  A real vLLM 0.32 page has 14 spec-decode lines for one engine at k=4 (``tests/fixtures/vllm/``: drafts, draft
  tokens, accepted tokens and k per-position counters, each with its ``_created`` line) and 13 speed lines, so
  8 engines at k=4 have 216 and 8 engines at the API's largest k (16) have 408. 1,024 is over twice the largest
  real page.
* :data:`MAX_SERIES_BYTES` of kept text per page (names, labels and values): the real page has 1,455 bytes of
  spec-decode lines at k=4 and 1,111 of speed lines per engine; 8 engines at k=16 have about 34 KiB.
* :data:`MAX_LINE_BYTES` per kept line (a real one is under 120 bytes; model names are at most a few hundred).

The reading of the kept lines (numbers, labels, completeness) is :mod:`specdeploy.monitor.parse`'s and
:mod:`specdeploy.monitor.speed`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Most lines kept from one page (see the module docstring for real pages' counts).
MAX_SERIES = 1024
#: Most bytes of kept lines kept from one page (label text included).
MAX_SERIES_BYTES = 128 * 1024
#: Longest kept line accepted, in bytes.
MAX_LINE_BYTES = 2048

PREFIX_BYTES = b"vllm:spec_decode"
#: The latency, token and load series kept besides the spec-decode ones (``monitor.speed`` reads them): histogram
#: ``_sum``/``_count`` (never buckets), counters and their ``_created`` start times, and two gauges.
SPEED_NAMES = frozenset(
    {
        "vllm:request_time_per_output_token_seconds_sum",
        "vllm:request_time_per_output_token_seconds_count",
        "vllm:request_time_per_output_token_seconds_created",
        "vllm:inter_token_latency_seconds_sum",
        "vllm:inter_token_latency_seconds_count",
        "vllm:inter_token_latency_seconds_created",
        "vllm:generation_tokens_total",
        "vllm:generation_tokens_created",
        "vllm:iteration_tokens_total_sum",
        "vllm:iteration_tokens_total_count",
        "vllm:iteration_tokens_total_created",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
    }
)
_SPEED_BYTES = frozenset(name.encode() for name in SPEED_NAMES)
_VLLM = b"vllm:"
_LINE_START = b"\n" + _VLLM
_NAME_AT = re.compile(rb"vllm:[a-zA-Z0-9_:]*")
_SPEC, _SPEED, _UNDECIDED = 1, 2, 3


class PageRejectedError(ValueError):
    """The page exceeds a cap on its kept part; the message names the cap."""


@dataclass(frozen=True)
class SpecDecodeLines:
    """The kept lines as ``(line number, text)``: ``lines`` the spec-decode ones, ``speed`` the
    :data:`SPEED_NAMES` ones; ``truncated`` when the last spec-decode line was cut off by the page's end
    (``speed_truncated`` likewise for a speed line)."""

    lines: tuple[tuple[int, str], ...]
    truncated: bool
    page_bytes: int
    speed: tuple[tuple[int, str], ...] = ()
    speed_truncated: bool = False


def _kind(buf: bytes, pos: int, stop: int, complete: bool) -> int | None:
    """What the line starting at ``pos`` (a ``vllm:`` name) is: spec-decode, speed, not kept (None), or, when the
    name runs to ``stop`` on an incomplete line, not decided yet."""
    match = _NAME_AT.match(buf, pos, stop)
    name = match.group() if match is not None else b""
    if name.startswith(PREFIX_BYTES):
        return _SPEC
    if not complete and pos + len(name) >= stop:
        return _UNDECIDED
    return _SPEED if name in _SPEED_BYTES else None


class SpecDecodeFilter:
    """Feed a page with :meth:`feed` (any chunking), then call :meth:`finish` once."""

    def __init__(
        self,
        *,
        max_series: int = MAX_SERIES,
        max_series_bytes: int = MAX_SERIES_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.max_series = max_series
        self.max_series_bytes = max_series_bytes
        self.max_line_bytes = max_line_bytes
        self._lines: list[tuple[int, str]] = []
        self._speed: list[tuple[int, str]] = []
        self._kept_bytes = 0
        self._tail = b""  # the start of a line that may be a spec-decode line, not yet ended
        self._skipping = False  # inside a line that is not a spec-decode line, until its newline
        self._newlines = 0  # newlines before the start of the next buffer
        self.page_bytes = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.page_bytes += len(chunk)
        data = chunk
        if self._skipping:
            nl = data.find(b"\n")
            if nl == -1:
                return
            self._skipping = False
            self._newlines += 1
            data = data[nl + 1 :]
        buf = self._tail + data if self._tail else data
        self._tail = b""
        self._scan(buf)

    def _scan(self, buf: bytes) -> None:
        find = buf.find
        size = len(buf)
        counted_to, line_no = 0, self._newlines + 1  # line number of the line containing buf[counted_to]
        pos = 0 if buf.startswith(_VLLM) else _after_newline(find(_LINE_START))
        while pos != -1:
            line_no += buf.count(b"\n", counted_to, pos)
            counted_to = pos
            end = find(b"\n", pos)
            if end == -1:
                kind = _kind(buf, pos, size, complete=False)
                self._newlines += buf.count(b"\n")
                if kind is None:
                    self._skipping = True
                    return
                if size - pos > self.max_line_bytes:
                    self._too_long(line_no, kind)
                self._tail = buf[pos:]
                return
            kind = _kind(buf, pos, end, complete=True)
            if kind is not None:
                self._keep(kind, line_no, buf[pos:end])
            pos = _after_newline(find(_LINE_START, end))
        self._newlines += buf.count(b"\n")
        start = buf.rfind(b"\n") + 1
        partial = buf[start:]
        if not partial:
            return
        if _VLLM.startswith(partial):  # may still become a kept line with the next chunk
            self._tail = partial
        else:
            self._skipping = True

    def _keep(self, kind: int, line_no: int, raw: bytes) -> None:
        if len(raw) > self.max_line_bytes:
            self._too_long(line_no, kind)
        if len(self._lines) + len(self._speed) >= self.max_series:
            raise PageRejectedError(
                f"more than {self.max_series} spec-decode series on the page (limit {self.max_series}, "
                "the speed series included)"
            )
        self._kept_bytes += len(raw)
        if self._kept_bytes > self.max_series_bytes:
            raise PageRejectedError(
                f"spec-decode series take more than {self.max_series_bytes} bytes on the page "
                f"(limit {self.max_series_bytes}, the speed series included)"
            )
        # Invalid UTF-8 can only land in a label value (harmless) or a number (which then fails to parse).
        (self._lines if kind == _SPEC else self._speed).append((line_no, raw.decode("utf-8", errors="replace")))

    def _too_long(self, line_no: int, kind: int = _SPEC) -> None:
        what = "speed" if kind == _SPEED else "spec-decode"
        raise PageRejectedError(f"line {line_no}: {what} line longer than {self.max_line_bytes} bytes")

    def finish(self) -> SpecDecodeLines:
        truncated = speed_truncated = False
        tail, self._tail = self._tail, b""
        if tail.startswith(_VLLM):
            kind = _kind(tail, 0, len(tail), complete=True)
            if kind is not None:
                self._keep(kind, self._newlines + 1, tail)
                truncated, speed_truncated = kind == _SPEC, kind == _SPEED
        return SpecDecodeLines(
            lines=tuple(self._lines),
            truncated=truncated,
            page_bytes=self.page_bytes,
            speed=tuple(self._speed),
            speed_truncated=speed_truncated,
        )


def _after_newline(found: int) -> int:
    return -1 if found == -1 else found + 1


def filter_page(page: bytes, **caps: int) -> SpecDecodeLines:
    """The spec-decode lines of a whole page held in memory (the streaming filter fed once)."""
    f = SpecDecodeFilter(**caps)
    f.feed(page)
    return f.finish()

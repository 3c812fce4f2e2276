"""Keep only the spec-decode lines of a ``/metrics`` page while it streams in, with caps on what is kept.

Why: a vLLM page is mostly series the monitor never reads, and a hostile page can be megabytes of them, or a
hundred thousand spec-decode series. Holding the whole page (bytes, then text, then one Python object per sample)
cost the operator about 90 MiB and seconds of event-loop time per scrape of an 8 MiB page. This filter is fed the
page chunk by chunk (as it comes off the socket), looks for line starts with ``bytes.find`` (C speed), and keeps
only the lines that start with ``vllm:spec_decode``, with their line numbers for error messages. Everything else is
dropped as soon as it has been scanned, so memory per scrape is one chunk plus the kept lines.

Caps on what is kept (a page over a cap is rejected with :class:`PageRejectedError`, whose message names the cap; the
caller holds, as for any page it cannot trust):

* :data:`MAX_SERIES` spec-decode lines per page (samples and ``_created`` lines, every engine and label set).
  A real vLLM 0.32 page has 14 for one engine at k=4 (``tests/fixtures/vllm/``: drafts, draft tokens, accepted
  tokens and k per-position counters, each with its ``_created`` line), so 8 engines at k=4 have 112 and 8 engines
  at the API's largest k (16) have 304. 1,024 is over three times the largest real page.
* :data:`MAX_SERIES_BYTES` of spec-decode text per page (names, labels and values): the real 8-engine page at
  k=16 has about 25 KiB.
* :data:`MAX_LINE_BYTES` per spec-decode line (a real one is under 120 bytes; model names are at most a few
  hundred).

The reading of the kept lines (numbers, labels, completeness) is :mod:`specdeploy.monitor.parse`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Most spec-decode lines kept from one page (see the module docstring for real pages' counts).
MAX_SERIES = 1024
#: Most bytes of spec-decode lines kept from one page (label text included).
MAX_SERIES_BYTES = 128 * 1024
#: Longest spec-decode line accepted, in bytes.
MAX_LINE_BYTES = 2048

PREFIX_BYTES = b"vllm:spec_decode"
_LINE_PREFIX = b"\n" + PREFIX_BYTES


class PageRejectedError(ValueError):
    """The page exceeds a cap on its spec-decode part; the message names the cap."""


@dataclass(frozen=True)
class SpecDecodeLines:
    """The kept lines as ``(line number, text)``; ``truncated`` when the last one was cut off by the page's end."""

    lines: tuple[tuple[int, str], ...]
    truncated: bool
    page_bytes: int


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
        pos = 0 if buf.startswith(PREFIX_BYTES) else _after_newline(find(_LINE_PREFIX))
        while pos != -1:
            line_no += buf.count(b"\n", counted_to, pos)
            counted_to = pos
            end = find(b"\n", pos)
            if end == -1:
                if size - pos > self.max_line_bytes:
                    self._too_long(line_no)
                self._tail = buf[pos:]
                self._newlines += buf.count(b"\n")
                return
            self._keep(line_no, buf[pos:end])
            pos = _after_newline(find(_LINE_PREFIX, end))
        self._newlines += buf.count(b"\n")
        start = buf.rfind(b"\n") + 1
        partial = buf[start:]
        if not partial:
            return
        if PREFIX_BYTES.startswith(partial):  # may still become a spec-decode line with the next chunk
            self._tail = partial
        else:
            self._skipping = True

    def _keep(self, line_no: int, raw: bytes) -> None:
        if len(raw) > self.max_line_bytes:
            self._too_long(line_no)
        if len(self._lines) >= self.max_series:
            raise PageRejectedError(
                f"more than {self.max_series} spec-decode series on the page (limit {self.max_series})"
            )
        self._kept_bytes += len(raw)
        if self._kept_bytes > self.max_series_bytes:
            raise PageRejectedError(
                f"spec-decode series take more than {self.max_series_bytes} bytes on the page "
                f"(limit {self.max_series_bytes})"
            )
        # Invalid UTF-8 can only land in a label value (harmless) or a number (which then fails to parse).
        self._lines.append((line_no, raw.decode("utf-8", errors="replace")))

    def _too_long(self, line_no: int) -> None:
        raise PageRejectedError(f"line {line_no}: spec-decode line longer than {self.max_line_bytes} bytes")

    def finish(self) -> SpecDecodeLines:
        truncated = False
        if self._tail.startswith(PREFIX_BYTES):
            self._keep(self._newlines + 1, self._tail)
            truncated = True
        self._tail = b""
        return SpecDecodeLines(lines=tuple(self._lines), truncated=truncated, page_bytes=self.page_bytes)


def _after_newline(found: int) -> int:
    return -1 if found == -1 else found + 1


def filter_page(page: bytes, **caps: int) -> SpecDecodeLines:
    """The spec-decode lines of a whole page held in memory (the streaming filter fed once)."""
    f = SpecDecodeFilter(**caps)
    f.feed(page)
    return f.finish()

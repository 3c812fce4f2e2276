"""The streaming spec-decode line filter: same lines whatever the chunking, and caps on what a page may make it keep."""

from __future__ import annotations

import random
import time
import tracemalloc

import pytest
from tests.harness import hostile_pages as hostile

from specdeploy.monitor.pagefilter import (
    MAX_LINE_BYTES,
    MAX_SERIES,
    MAX_SERIES_BYTES,
    PageRejectedError,
    SpecDecodeFilter,
    filter_page,
)
from specdeploy.monitor.parse import MetricsParseError, parse_lines, parse_spec_decode

from .pages import REAL_PAGE

EDGE_PAGES = {
    "real": REAL_PAGE.read_bytes(),
    "starts with a sample": b'vllm:spec_decode_num_drafts_total{engine="0"} 5\nother 1\n',
    "crlf": REAL_PAGE.read_bytes().replace(b"\n", b"\r\n"),
    "truncated": hostile.truncated(),
    "no trailing newline after other metric": b'vllm:spec_decode_num_drafts_total{engine="0"} 5\nother 1',
    "long other line": b"other" + b"x" * 300_000 + b' 1\nvllm:spec_decode_num_drafts_total{engine="0"} 5\n',
    "prefix-like lines": b"vllm:spec_decod 1\nvllm:spec 2\nvllm:spec_decode_x 3\n# vllm:spec_decode_y 4\n",
    "invalid utf-8": b'vllm:spec_decode_num_drafts_total{engine="\xff\xfe"} 5\n',
    "empty": b"",
}


def chunked(page: bytes, sizes: list[int]) -> tuple[tuple[int, str], ...]:
    f = SpecDecodeFilter()
    i = 0
    rng = random.Random(len(page))
    while i < len(page):
        n = rng.choice(sizes)
        f.feed(page[i : i + n])
        i += n
    kept = f.finish()
    return (*kept.lines, (0, "truncated")) if kept.truncated else kept.lines


@pytest.mark.parametrize("name", list(EDGE_PAGES))
def test_any_chunking_keeps_the_same_lines_with_their_line_numbers(name: str) -> None:
    page = EDGE_PAGES[name]
    whole = filter_page(page)
    expected = (*whole.lines, (0, "truncated")) if whole.truncated else whole.lines
    for sizes in ([1], [1, 2, 3, 5, 17], [16, 17], [4096], [65536]):
        assert chunked(page, sizes) == expected, sizes
    text = page.decode("utf-8", errors="replace")
    for line_no, line in whole.lines:  # the numbers are the page's own line numbers
        assert text.split("\n")[line_no - 1] == line


def test_the_real_page_keeps_its_14_spec_decode_lines_and_nothing_else() -> None:
    kept = filter_page(EDGE_PAGES["real"])
    assert len(kept.lines) == 14 and not kept.truncated
    assert all(line.startswith("vllm:spec_decode") for _, line in kept.lines)
    assert parse_lines(kept) == parse_spec_decode(REAL_PAGE.read_text())


def test_a_truncated_spec_decode_line_is_an_error_that_names_it() -> None:
    with pytest.raises(MetricsParseError, match=r"line \d+: page ends inside a spec-decode line"):
        parse_spec_decode(hostile.truncated())


def spec_lines(count: int, label: str = "") -> bytes:
    return "".join(f'vllm:spec_decode_num_drafts_total{{engine="{i}"{label}}} 1\n' for i in range(count)).encode()


def test_series_count_cap_is_well_above_a_real_8_engine_page() -> None:
    real = len(filter_page(EDGE_PAGES["real"]).lines)  # one engine, k=4
    assert 8 * real * 4 <= MAX_SERIES
    assert len(filter_page(spec_lines(MAX_SERIES)).lines) == MAX_SERIES
    with pytest.raises(PageRejectedError, match=f"more than {MAX_SERIES} spec-decode series"):
        filter_page(spec_lines(MAX_SERIES + 1))


def test_label_bytes_and_line_length_caps() -> None:
    padding = ',model_name="' + "m" * 200 + '"'
    with pytest.raises(PageRejectedError, match=f"more than {MAX_SERIES_BYTES} bytes"):
        filter_page(spec_lines(MAX_SERIES_BYTES // 200, padding))
    long_line = b'vllm:spec_decode_num_drafts_total{model_name="' + b"m" * MAX_LINE_BYTES + b'"} 1\n'
    with pytest.raises(PageRejectedError, match=f"line 1: spec-decode line longer than {MAX_LINE_BYTES}"):
        filter_page(long_line)
    f = SpecDecodeFilter()  # an endless spec-decode line is refused while it streams, not held until its end
    f.feed(long_line[: MAX_LINE_BYTES // 2])
    with pytest.raises(PageRejectedError, match="longer than"):
        f.feed(b"m" * MAX_LINE_BYTES)


def test_the_100000_series_page_is_refused_cheaply() -> None:
    """Issue 11: a page of 100,000 spec-decode series (under the 8 MiB page cap) cost ~90 MiB and seconds to read."""
    page = hostile.many_series()
    assert len(page) <= 8 * 1024 * 1024 and page.count(b"\nvllm:spec_decode") > 100_000
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(MetricsParseError, match="more than 1024 spec-decode series"):
            parse_spec_decode(page)
        cpu = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"  # the kept lines (at most 128 KiB), not the page
    assert cpu < 1.0, f"{cpu:.2f} s"

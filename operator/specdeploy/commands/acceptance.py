"""``specdeploy acceptance``: show what the operator sees on a vLLM ``/metrics`` page (or between two pages).

Why a command: a user deciding whether to trust an automatic rollback should be able to point the same parser and
arithmetic at a pod (``kubectl port-forward`` + URL) or at saved pages, and get the same numbers the operator uses.
One page gives totals since the server started; ``--previous`` gives the window between two pages, with counter
resets handled as the monitor handles them. Exit status: 0 with data, 1 when there is no spec-decode data (no
speculation configured, or no drafts yet), 2 when a page cannot be read or parsed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from specdeploy.monitor.acceptance import Acceptance
    from specdeploy.monitor.parse import SpecDecodeCounters

DEFAULT_TIMEOUT_SECONDS = 10.0


class _SourceError(Exception):
    """A page could not be fetched, read or parsed; the message names the file or URL."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "acceptance",
        help="draft acceptance rate from a vLLM /metrics page (file or http:// URL)",
        description=(
            "Read vLLM's speculative-decoding counters from a /metrics page and print the draft acceptance rate, "
            "mean accepted length and per-position rates. One page: totals since the server started. With "
            "--previous: the window between the two pages (a restart in between is detected; counters that went down "
            "without one are an error). Exit 0 with data, 1 when the page has no spec-decode data, 2 on errors."
        ),
    )
    parser.add_argument("source", metavar="FILE_OR_URL", help="a saved /metrics page, or http://host:port/metrics")
    parser.add_argument(
        "--previous", metavar="FILE_OR_URL", help="an earlier page of the same server: report the window between them"
    )
    parser.add_argument("--output", choices=("json", "text"), default="text", help="output format (default: text)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for a URL (default: {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specdeploy.monitor.acceptance import delta, inconsistency, summarize

    try:
        current = _load(args.source, args.timeout)
        previous = _load(args.previous, args.timeout) if args.previous else None
    except _SourceError as err:
        print(f"specdeploy acceptance: {err}", file=sys.stderr)
        return 2
    for name, counters in ((args.source, current), (args.previous, previous)):
        if name and counters is None:
            print(
                f"specdeploy acceptance: no spec-decode series in {name}: speculative decoding is not configured "
                "on that server, or it has not exposed its counters yet",
                file=sys.stderr,
            )
            return 1
    assert current is not None
    why = inconsistency(previous, current) if previous is not None else None
    if why:
        # A restart resets counters and their start times; a drop without one means the pages are not one server's
        # life in order (swapped files, two servers behind one URL, a broken exporter): no honest window exists.
        print(f"specdeploy acceptance: {args.previous} then {args.source}: {why}", file=sys.stderr)
        return 2
    window = delta(previous, current)
    acceptance = summarize(window)
    if args.output == "json":
        print(json.dumps(acceptance.to_json(), indent=2))
    else:
        print(_text(acceptance, between=previous is not None))
    if acceptance.rate is None:
        span = "between the two pages" if previous is not None else "yet"
        print(f"specdeploy acceptance: no draft tokens {span}: no acceptance rate to report", file=sys.stderr)
        return 1
    return 0


def _load(source: str, timeout: float) -> SpecDecodeCounters | None:
    from specdeploy.monitor.parse import MAX_PAGE_BYTES, MetricsParseError, parse_spec_decode

    page = _fetch(source, timeout, MAX_PAGE_BYTES) if "://" in source else _read(source, MAX_PAGE_BYTES)
    try:
        return parse_spec_decode(page)
    except MetricsParseError as err:
        raise _SourceError(f"{source}: {err}") from None


def _read(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise _SourceError(f"{path}: cannot read: {err.strerror or err}") from None
    if len(data) > limit:
        raise _SourceError(f"{path}: larger than {limit} bytes, not a /metrics page")
    return data


def _fetch(url: str, timeout: float, limit: int) -> str:
    if not url.startswith("http://"):
        raise _SourceError(f"{url}: only http:// URLs are supported (use kubectl port-forward for a pod)")
    import asyncio

    from specdeploy.monitor.scrape import ScrapeError, new_session, scrape

    async def get() -> str | ScrapeError:
        async with new_session(limit=1) as session:  # the body capped on the wire and once decompressed
            return await scrape(session, url, timeout=timeout, max_bytes=limit)

    result = asyncio.run(get())
    if isinstance(result, ScrapeError):
        raise _SourceError(result.detail)
    return result


def _text(acceptance: Acceptance, *, between: bool) -> str:
    span = "between the two pages" if between else "since the server started"
    lines = [f"engine:                vLLM {acceptance.engine.upper()} ({span})"]
    if acceptance.engine == "v0":
        lines.append(_line("acceptance rate:", acceptance.rate, "lifetime gauge; V0 counters give no token counts"))
        return "\n".join(lines)
    tokens = f"{_count(acceptance.accepted_tokens)} of {_count(acceptance.draft_tokens)} draft tokens accepted"
    lines.append(_line("acceptance rate:", acceptance.rate, tokens))
    length = acceptance.mean_accepted_length
    drafts = f"tokens per target step over {_count(acceptance.drafts)} drafts"
    lines.append(f"mean accepted length:  {'n/a' if length is None else f'{length:.3f}'} ({drafts})")
    if acceptance.per_position:
        rates = "  ".join(f"{i}: {rate:.3f}" for i, rate in enumerate(acceptance.per_position))
        lines.append(f"per position:          {rates}")
    return "\n".join(lines)


def _line(label: str, value: float | None, note: str) -> str:
    shown = "n/a" if value is None else f"{value:.4f}"
    return f"{label:<22} {shown} ({note})"


def _count(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"

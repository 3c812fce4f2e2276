"""Read the speculative-decoding counters out of one vLLM ``/metrics`` page, fast and without trusting the page.

Why a hand-written reader: the operator scrapes every ready pod every interval (1,000 pods is the design budget),
and a vLLM page carries hundreds of series of which about twenty matter here. ``prometheus_client``'s text parser
builds an object for every line; this module jumps from one ``vllm:spec_decode`` line start to the next with
``bytes.find`` (:mod:`specdeploy.monitor.pagefilter`, which the scraper also feeds while the page streams in) and
parses only those lines, which is more than ten times faster on the real page (see ``bench/bench_parse.py``) and
gives the same numbers (see the differential tests).

What it returns: the V1 counters summed over every label set of the pod (engines, model names), the per-series
values (so that counter resets can be detected per series, as Prometheus ``rate()`` does), the ``_created``
timestamps (a changed start time is a restart even when the counter has already grown past its old value), and the
V0 gauges when the pod runs the V0 engine. V0's counters are lifetime sums of sums: they are kept as read, but only
the gauge is a usable acceptance rate (see ``acceptance.summarize``).

Hostile pages: the input is capped at :data:`MAX_PAGE_BYTES`, and its spec-decode part at
:data:`~specdeploy.monitor.pagefilter.MAX_SERIES` lines (1,024; a real 8-engine page has 112 at k=4, 304 at k=16)
and :data:`~specdeploy.monitor.pagefilter.MAX_SERIES_BYTES` (128 KiB), so a page of 100,000 spec-decode series
costs a scan, not 100,000 Python objects. A spec-decode line that cannot be read, a counter that
is NaN, infinite or negative, a duplicated series, an incomplete set of V1 families or per-position series, or a
spec-decode line cut off by the end of the page raises :class:`MetricsParseError`, whose message names the line: a
wrong number could trigger a rollback, an error only makes the caller hold. Lines that are merely unknown (a
``vllm:spec_decode_*`` name this version does not use, an exemplar) are skipped and listed in
``SpecDecodeCounters.notes``. Lines of other metrics are never looked at, so their syntax does not matter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from specdeploy.monitor.pagefilter import PageRejectedError, SpecDecodeLines, filter_page

#: Largest page accepted, in bytes (or characters when a ``str`` is passed). A real vLLM page is about 55 KB;
#: 8 MiB leaves room for many engines and LoRA adapters while bounding memory and CPU per scrape.
MAX_PAGE_BYTES = 8 * 1024 * 1024

PREFIX = "vllm:spec_decode"

# V1 engine counters (exposed names, with the ``_total`` suffix prometheus_client adds).
DRAFTS = "vllm:spec_decode_num_drafts_total"
DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens_total"
ACCEPTED_TOKENS = "vllm:spec_decode_num_accepted_tokens_total"
ACCEPTED_PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos_total"
# V0 engine: two gauges plus counters (draft and accepted share the V1 names; emitted is V0 only).
V0_ACCEPTANCE_RATE = "vllm:spec_decode_draft_acceptance_rate"
V0_EFFICIENCY = "vllm:spec_decode_efficiency"
V0_EMITTED_TOKENS = "vllm:spec_decode_num_emitted_tokens_total"

COUNTER_NAMES = frozenset({DRAFTS, DRAFT_TOKENS, ACCEPTED_TOKENS, ACCEPTED_PER_POS, V0_EMITTED_TOKENS})
GAUGE_NAMES = frozenset({V0_ACCEPTANCE_RATE, V0_EFFICIENCY})
_CREATED_SUFFIX = "_created"

Engine = Literal["v1", "v0"]
Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
"""A series identity: exposed metric name and its label pairs sorted by label name."""

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SIMPLE_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"')
_SIMPLE_LINE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})?'
    r" (\S+)\Z"
)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class MetricsParseError(ValueError):
    """The page cannot be trusted for spec-decode numbers; the message says which line and why."""


@dataclass(frozen=True)
class SpecDecodeCounters:
    """The spec-decode counters of one pod (or a delta between two pages, or a sum over pods).

    ``drafts``, ``draft_tokens``, ``accepted_tokens`` and ``per_position`` are sums over every label set.
    ``per_position[i]`` is the count of drafts whose accepted prefix was longer than ``i``.
    For ``engine == "v0"`` the counters are V0's lifetime sums of sums (not token counts; ``drafts`` is 0 and
    ``per_position`` empty because V0 exposes neither) and the usable number is ``v0_acceptance_rate``.
    ``series`` holds every counter sample as read, ``created`` the ``_created`` start timestamps by the series
    they belong to; ``notes`` lists lines that were skipped and why.
    """

    engine: Engine
    drafts: float
    draft_tokens: float
    accepted_tokens: float
    per_position: tuple[float, ...] = ()
    v0_acceptance_rate: float | None = None
    v0_efficiency: float | None = None
    v0_emitted_tokens: float | None = None
    series: tuple[tuple[SeriesKey, float], ...] = field(default=(), repr=False)
    created: tuple[tuple[SeriesKey, float], ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()

    def series_map(self) -> dict[SeriesKey, float]:
        return dict(self.series)

    def created_map(self) -> dict[SeriesKey, float]:
        return dict(self.created)


def parse_spec_decode(page: str | bytes, *, max_bytes: int = MAX_PAGE_BYTES) -> SpecDecodeCounters | None:
    """Extract the spec-decode counters from a Prometheus text page.

    Returns None when the page has no spec-decode series at all (speculation not configured, or the page ends
    before them): the caller holds. Raises :class:`MetricsParseError` when the spec-decode part cannot be trusted,
    including a page over one of :mod:`specdeploy.monitor.pagefilter`'s caps.
    """
    raw = _as_bytes(page, max_bytes)
    try:
        kept = filter_page(raw)
    except PageRejectedError as err:
        raise MetricsParseError(str(err)) from None
    return parse_lines(kept)


def parse_lines(kept: SpecDecodeLines) -> SpecDecodeCounters | None:
    """Read the spec-decode lines a :class:`~specdeploy.monitor.pagefilter.SpecDecodeFilter` kept from a page."""
    samples: dict[SeriesKey, float] = {}
    created: dict[SeriesKey, float] = {}
    notes: list[str] = []
    unknown: set[str] = set()
    last = len(kept.lines) - 1
    for i, (line_no, text) in enumerate(kept.lines):
        if i == last and kept.truncated:
            raise MetricsParseError(f"line {line_no}: page ends inside a spec-decode line (truncated?)")
        line = text[:-1] if text.endswith("\r") else text
        try:
            _read_line(line, samples, created, unknown, notes)
        except MetricsParseError as err:
            raise MetricsParseError(f"line {line_no}: {err}: {_clip(line)}") from None
    for name in sorted(unknown):
        notes.append(f"ignored series {name}: not a spec-decode counter this version reads")
    return _assemble(samples, created, tuple(notes))


def _as_bytes(page: str | bytes, max_bytes: int) -> bytes:
    if isinstance(page, str):
        if len(page) > max_bytes:
            raise MetricsParseError(f"page too large: {len(page)} characters, limit {max_bytes}")
        return page.encode("utf-8", errors="surrogatepass")
    if isinstance(page, bytes | bytearray | memoryview):
        if len(page) > max_bytes:
            raise MetricsParseError(f"page too large: {len(page)} bytes, limit {max_bytes}")
        return bytes(page)
    raise MetricsParseError(f"page must be str or bytes, not {type(page).__name__}")


def _clip(line: str, width: int = 160) -> str:
    return repr(line if len(line) <= width else line[:width] + "...")


def _read_line(
    line: str,
    samples: dict[SeriesKey, float],
    created: dict[SeriesKey, float],
    unknown: set[str],
    notes: list[str],
) -> None:
    name, labels, value = parse_sample_line(line)
    if name in COUNTER_NAMES:
        if not math.isfinite(value) or value < 0:
            raise MetricsParseError(f"counter {name} has value {value!r}; counters are finite and non-negative")
        key = (name, labels)
        if key in samples:
            raise MetricsParseError(f"duplicate series {name}{_render_labels(labels)}")
        samples[key] = value
    elif name in GAUGE_NAMES:
        if math.isinf(value) or value < 0 or (name == V0_ACCEPTANCE_RATE and value > 1):
            raise MetricsParseError(f"gauge {name} has value {value!r}, outside [0, 1]")
        key = (name, labels)
        if key in samples:
            raise MetricsParseError(f"duplicate series {name}{_render_labels(labels)}")
        samples[key] = value  # NaN kept: V0 reports NaN before the first draft
    elif name.endswith(_CREATED_SUFFIX):
        counter = name[: -len(_CREATED_SUFFIX)] + "_total"
        if counter in COUNTER_NAMES and math.isfinite(value):
            created[(counter, labels)] = value
        elif counter in COUNTER_NAMES:
            notes.append(f"ignored {name}{_render_labels(labels)}: start time {value!r} is not finite")
    else:
        unknown.add(name)


def parse_sample_line(line: str) -> tuple[str, Labels, float]:
    """Parse one exposition sample line: ``name{labels} value [timestamp] [# exemplar]``.

    Label values may contain escaped quotes, backslashes and newlines. Labels come back sorted by name.
    """
    simple = _SIMPLE_LINE.match(line)
    if simple is not None:  # the shape prometheus_client writes: no escapes, spaces, timestamps or exemplars
        pairs = _SIMPLE_PAIR.findall(simple.group(2) or "")
        labels_fast = tuple(sorted(pairs))
        if len({k for k, _ in pairs}) == len(pairs):
            return simple.group(1), labels_fast, _parse_float(simple.group(3))
    match = _NAME_RE.match(line)
    if match is None:
        raise MetricsParseError("no metric name")
    name = match.group()
    i = match.end()
    labels: Labels = ()
    if i < len(line) and line[i] == "{":
        labels, i = _parse_labels(line, i + 1)
    rest = line[i:]
    if rest and rest[0] not in " \t":
        raise MetricsParseError(f"unexpected {rest[0]!r} after the series name")
    parts = rest.split()
    if not parts:
        raise MetricsParseError("no value")
    value = _parse_float(parts[0])
    if len(parts) > 1 and not parts[1].startswith("#"):
        if not _is_int(parts[1]):
            raise MetricsParseError(f"timestamp {parts[1]!r} is not an integer")
        if len(parts) > 2 and not parts[2].startswith("#"):
            raise MetricsParseError(f"unexpected {parts[2]!r} after the timestamp")
    return name, labels, value


def _parse_labels(line: str, i: int) -> tuple[Labels, int]:
    pairs: dict[str, str] = {}
    size = len(line)
    while True:
        while i < size and line[i] in " \t":
            i += 1
        if i < size and line[i] == "}":
            return tuple(sorted(pairs.items())), i + 1
        match = _LABEL_NAME_RE.match(line, i)
        if match is None:
            raise MetricsParseError(f"bad label name at column {i + 1}")
        label = match.group()
        i = match.end()
        while i < size and line[i] in " \t":
            i += 1
        if line[i : i + 1] != "=":
            raise MetricsParseError(f"label {label}: expected = at column {i + 1}")
        i += 1
        while i < size and line[i] in " \t":
            i += 1
        if line[i : i + 1] != '"':
            raise MetricsParseError(f'label {label}: expected " at column {i + 1}')
        value, i = _parse_label_value(line, i + 1, label)
        if label in pairs:
            raise MetricsParseError(f"label {label} given twice")
        pairs[label] = value
        while i < size and line[i] in " \t":
            i += 1
        if i < size and line[i] == ",":
            i += 1
        elif i >= size or line[i] != "}":
            raise MetricsParseError(f"label list not closed after {label}")


def _parse_label_value(line: str, i: int, label: str) -> tuple[str, int]:
    close = line.find('"', i)
    if close == -1:
        raise MetricsParseError(f"label {label}: value not closed")
    if line.find("\\", i, close) == -1:  # fast path: no escapes
        return line[i:close], close + 1
    out: list[str] = []
    size = len(line)
    while i < size:
        char = line[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\" and i + 1 < size:
            nxt = line[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    raise MetricsParseError(f"label {label}: value not closed")


def _parse_float(token: str) -> float:
    if "_" in token:  # Python's float() accepts 1_000; the exposition format does not
        raise MetricsParseError(f"value {token!r} is not a number")
    try:
        return float(token)
    except ValueError:
        raise MetricsParseError(f"value {token!r} is not a number") from None


def _is_int(token: str) -> bool:
    digits = token[1:] if token[:1] in "+-" else token
    return digits.isdigit() and digits.isascii()


def _render_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return "{" + inner + "}"


def _assemble(
    samples: Mapping[SeriesKey, float], created: Mapping[SeriesKey, float], notes: tuple[str, ...]
) -> SpecDecodeCounters | None:
    if not samples:
        return None
    present = {name for name, _ in samples}
    counters = {k: v for k, v in samples.items() if k[0] in COUNTER_NAMES}
    v0_rate = _single_gauge(samples, V0_ACCEPTANCE_RATE)
    v0_efficiency = _single_gauge(samples, V0_EFFICIENCY)
    if DRAFTS in present:
        missing = [n for n in (DRAFT_TOKENS, ACCEPTED_TOKENS) if n not in present]
        if missing:
            raise MetricsParseError(f"incomplete page: {DRAFTS} present but {', '.join(missing)} missing (truncated?)")
        engine: Engine = "v1"
    elif present & {V0_ACCEPTANCE_RATE, V0_EFFICIENCY, V0_EMITTED_TOKENS}:
        engine = "v0"
    else:
        raise MetricsParseError(
            f"spec-decode series {', '.join(sorted(present))} without {DRAFTS} or the V0 gauges (truncated page?)"
        )
    return counters_from_series(
        engine,
        counters,
        created=created,
        v0_acceptance_rate=v0_rate,
        v0_efficiency=v0_efficiency,
        notes=notes,
    )


def counters_from_series(
    engine: Engine,
    series: Mapping[SeriesKey, float],
    *,
    created: Mapping[SeriesKey, float] | None = None,
    v0_acceptance_rate: float | None = None,
    v0_efficiency: float | None = None,
    notes: tuple[str, ...] = (),
) -> SpecDecodeCounters:
    """Build the summed view from per-series counter values (read from a page, or deltas between two pages)."""
    totals: dict[str, float] = {}
    for (name, _), value in series.items():
        if name != ACCEPTED_PER_POS:
            totals[name] = totals.get(name, 0.0) + value
    return SpecDecodeCounters(
        engine=engine,
        drafts=totals.get(DRAFTS, 0.0),
        draft_tokens=totals.get(DRAFT_TOKENS, 0.0),
        accepted_tokens=totals.get(ACCEPTED_TOKENS, 0.0),
        per_position=_per_position(series) if engine == "v1" else (),
        v0_acceptance_rate=v0_acceptance_rate,
        v0_efficiency=v0_efficiency,
        v0_emitted_tokens=totals.get(V0_EMITTED_TOKENS),
        series=tuple(sorted(series.items())),
        created=tuple(sorted((created or {}).items())),
        notes=notes,
    )


def _single_gauge(samples: Mapping[SeriesKey, float], name: str) -> float | None:
    values = [v for (n, _), v in samples.items() if n == name]
    if not values:
        return None
    if len(values) > 1:
        raise MetricsParseError(f"{len(values)} series of {name}: lifetime rates of several V0 engines do not add up")
    return None if math.isnan(values[0]) else values[0]


def _per_position(samples: Mapping[SeriesKey, float]) -> tuple[float, ...]:
    groups: dict[Labels, dict[int, float]] = {}
    for (name, labels), value in samples.items():
        if name != ACCEPTED_PER_POS:
            continue
        rest = tuple(p for p in labels if p[0] != "position")
        raw = next((v for k, v in labels if k == "position"), None)
        if raw is None or not raw.isdigit() or not raw.isascii():
            raise MetricsParseError(f"{ACCEPTED_PER_POS}{_render_labels(labels)}: position label must be 0, 1, ...")
        group = groups.setdefault(rest, {})
        index = int(raw)
        if index in group:
            raise MetricsParseError(f"{ACCEPTED_PER_POS}{_render_labels(labels)}: position {index} given twice")
        group[index] = value
    if not groups:
        return ()
    depth = None
    for labels, group in groups.items():
        if sorted(group) != list(range(len(group))):
            raise MetricsParseError(
                f"{ACCEPTED_PER_POS}{_render_labels(labels)}: positions {sorted(group)} are not 0..k-1 (truncated?)"
            )
        if depth is not None and len(group) != depth:
            raise MetricsParseError(f"{ACCEPTED_PER_POS}: label sets disagree on the number of positions (truncated?)")
        depth = len(group)
    assert depth is not None
    return tuple(sum(group[i] for group in groups.values()) for i in range(depth))

"""Turn spec-decode counters into what a user reads: acceptance rate, mean accepted length, per-position rates.

Why its own module: the same arithmetic serves the ``acceptance`` command (one page, or two pages), the monitor's
windows (deltas per pod, summed over pods) and the Prometheus source, and the traps live here once:

* Counter resets. vLLM's counters live in the API-server process, so a restart resets every series of the pod at
  once. ``delta`` therefore treats the whole page as restarted when any series went down, or when any series'
  ``_created`` start time changed (that catches a restart whose counters already grew past the old values, which
  Prometheus' per-series rule misses). A restarted series' increase is its current value, as in ``rate()``. A
  series absent from the earlier page counts from zero (vLLM creates its counters at zero).
* Counters that go down while their ``_created`` start time stays the same were not reset by a restart: the page
  is lying (a broken exporter or proxy). ``inconsistency`` says so, and the monitor holds instead of reading the
  drop as a restart and counting the whole lifetime of the page as one window.
* V0 engines: their counters are lifetime sums of sums, so no token count or windowed rate can be derived from
  them; the acceptance rate is V0's own lifetime gauge and the token counts are reported as unknown (None).
* Zero denominators mean "no data" (None), never a rate of 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from specdeploy.monitor.parse import Engine, SeriesKey, SpecDecodeCounters, counters_from_series


@dataclass(frozen=True)
class Acceptance:
    """Acceptance numbers over some span (a window, two pages, or a server's lifetime).

    ``rate`` = accepted / draft tokens; ``mean_accepted_length`` = 1 + accepted / drafts (tokens per target step,
    the bonus token included); ``per_position[i]`` = accepted at position i / drafts = P(accepted prefix > i).
    None (or an empty tuple) where the denominator is zero or, for V0, where the counters cannot say.
    """

    engine: Engine
    rate: float | None
    mean_accepted_length: float | None
    per_position: tuple[float, ...]
    drafts: float | None
    draft_tokens: float | None
    accepted_tokens: float | None

    def to_json(self) -> dict[str, Any]:
        """The keys of ``specdeploy acceptance --output json``."""
        return {
            "acceptance_rate": self.rate,
            "mean_accepted_length": self.mean_accepted_length,
            "per_position": list(self.per_position),
            "drafts": _int_if_whole(self.drafts),
            "draft_tokens": _int_if_whole(self.draft_tokens),
            "accepted_tokens": _int_if_whole(self.accepted_tokens),
            "engine": self.engine,
        }


def _int_if_whole(value: float | None) -> float | int | None:
    if value is not None and value.is_integer():
        return int(value)
    return value


def restarted(prev: SpecDecodeCounters, cur: SpecDecodeCounters) -> bool:
    """True when ``cur`` comes from a different process than ``prev`` (a counter went down or a start time moved)."""
    if prev.engine != cur.engine:
        return True
    before = prev.series_map()
    for key, value in cur.series:
        old = before.get(key)
        if old is not None and value < old:
            return True
    started = prev.created_map()
    return any(key in started and started[key] != when for key, when in cur.created)


def inconsistency(prev: SpecDecodeCounters, cur: SpecDecodeCounters) -> str | None:
    """Why ``cur`` cannot be a later reading of the same process as ``prev`` (a counter went down although its
    start time did not change), or None. Without ``_created`` series a drop can only be read as a restart."""
    if prev.engine != cur.engine:
        return None
    before, started_before, started_now = prev.series_map(), prev.created_map(), cur.created_map()
    for key, value in cur.series:
        old = before.get(key)
        if old is None or value >= old or key not in started_before:
            continue
        if started_before[key] == started_now.get(key):
            name, labels = key
            shown = "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""
            return f"counter {name}{shown} went down while its start time stayed the same: not a restart"
    return None


def delta(prev: SpecDecodeCounters | None, cur: SpecDecodeCounters) -> SpecDecodeCounters:
    """The increase from ``prev`` to ``cur`` for one pod, with counter resets handled (see the module docstring).

    ``prev`` None means "since the server started": ``cur`` itself. V0 gauges are taken from ``cur``.
    """
    if prev is None or restarted(prev, cur):
        return cur
    before = prev.series_map()
    increase: dict[SeriesKey, float] = {key: value - before.get(key, 0.0) for key, value in cur.series}
    return counters_from_series(
        cur.engine,
        increase,
        created=cur.created_map(),
        v0_acceptance_rate=cur.v0_acceptance_rate,
        v0_efficiency=cur.v0_efficiency,
        notes=cur.notes,
    )


def combine(parts: Iterable[SpecDecodeCounters]) -> SpecDecodeCounters | None:
    """Sum the deltas of several pods (all of one engine kind). None when ``parts`` is empty.

    Per-position sums need every part to report the same depth; when depths differ the result has no per-position
    data rather than a biased one. V0 lifetime rates are averaged (unweighted: V0 gives no usable token counts).
    The sum carries no per-series values (the same series names repeat across pods).
    """
    items = list(parts)
    if not items:
        return None
    engines = {c.engine for c in items}
    if len(engines) > 1:
        raise ValueError(f"cannot sum counters of different engines: {sorted(engines)}")
    depths = {len(c.per_position) for c in items}
    per_position: tuple[float, ...] = ()
    if len(depths) == 1:
        per_position = tuple(sum(column) for column in zip(*(c.per_position for c in items), strict=True))
    v0_rates = [c.v0_acceptance_rate for c in items if c.v0_acceptance_rate is not None]
    v0_effs = [c.v0_efficiency for c in items if c.v0_efficiency is not None]
    emitted = [c.v0_emitted_tokens for c in items if c.v0_emitted_tokens is not None]
    return SpecDecodeCounters(
        engine=items[0].engine,
        drafts=sum(c.drafts for c in items),
        draft_tokens=sum(c.draft_tokens for c in items),
        accepted_tokens=sum(c.accepted_tokens for c in items),
        per_position=per_position,
        v0_acceptance_rate=sum(v0_rates) / len(v0_rates) if v0_rates else None,
        v0_efficiency=sum(v0_effs) / len(v0_effs) if v0_effs else None,
        v0_emitted_tokens=sum(emitted) if emitted else None,
    )


def summarize(counters: SpecDecodeCounters) -> Acceptance:
    """Rates from counters (lifetime totals, a delta, or a sum over pods)."""
    if counters.engine == "v0":
        return Acceptance(
            engine="v0",
            rate=counters.v0_acceptance_rate,
            mean_accepted_length=None,
            per_position=(),
            drafts=None,
            draft_tokens=None,
            accepted_tokens=None,
        )
    drafts = counters.drafts
    draft_tokens = counters.draft_tokens
    accepted = counters.accepted_tokens
    return Acceptance(
        engine="v1",
        rate=accepted / draft_tokens if draft_tokens > 0 else None,
        mean_accepted_length=1.0 + accepted / drafts if drafts > 0 else None,
        per_position=tuple(count / drafts for count in counters.per_position) if drafts > 0 else (),
        drafts=drafts,
        draft_tokens=draft_tokens,
        accepted_tokens=accepted,
    )

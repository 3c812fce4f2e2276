"""The data of one comparison: each candidate's architecture, verdict, measured acceptance and measured speed.

Why plain frozen dataclasses: the measurement (slow, real vLLM) and everything said about it (ranking, table,
analysis, JSON, chart) are separate steps, so the second can be tested on synthetic measurements and re-rendered
without measuring again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from specdeploy.monitor.acceptance import Acceptance
from specdeploy.monitor.speedup import DepthRecommendation


@dataclass(frozen=True)
class Architecture:
    """The shape of one model as its config says (None where the config does not say)."""

    model: str
    model_type: str | None
    architecture: str | None
    layers: int | None
    hidden_size: int | None
    heads: int | None
    kv_heads: int | None
    vocab_size: int | None
    params: int | None
    max_len: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_type": self.model_type,
            "architecture": self.architecture,
            "layers": self.layers,
            "hidden_size": self.hidden_size,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "vocab_size": self.vocab_size,
            "params": self.params,
            "max_len": self.max_len,
        }


@dataclass(frozen=True)
class Verdict:
    """The validator's answer for one pair: compatible (None = could not check), its summary, check statuses."""

    compatible: bool | None
    summary: str
    checks: tuple[tuple[str, str], ...] = ()

    def status(self, check: str) -> str | None:
        return next((status for name, status in self.checks if name == check), None)

    @property
    def label(self) -> str:
        if self.compatible is None:
            return "cannot check"
        return "compatible" if self.compatible else "incompatible"

    def to_json(self) -> dict[str, Any]:
        return {
            "compatible": self.compatible,
            "summary": self.summary,
            "checks": {name: status for name, status in self.checks},
        }


@dataclass(frozen=True)
class Bucket:
    """Acceptance over the prompts of one context length; ``skipped`` says why a bucket was not measured."""

    context_length: int
    prompts: int
    acceptance: Acceptance | None
    skipped: str | None = None

    @property
    def rate(self) -> float | None:
        return self.acceptance.rate if self.acceptance is not None else None


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): \S")


def headline(error: str) -> str:
    """The first line of an error, plus the last exception line of a quoted log when there is one.

    A server that dies during start-up is reported as "vLLM exited with status 1 during start-up:" and its log
    tail; the cause a user needs is the exception at the end of that log (e.g. vLLM's ImportError for suffix
    decoding without the arctic-inference package).
    """
    lines = error.strip().splitlines()
    if not lines:
        return ""
    cause = next((line.strip() for line in reversed(lines[1:]) if _EXCEPTION_LINE.match(line.strip())), None)
    return lines[0] if cause is None else f"{lines[0]} ... {cause}"


@dataclass(frozen=True)
class RequestTiming:
    """One streamed completion as the client saw it: tokens generated, seconds to the first and the last token."""

    output_tokens: int
    first_token_s: float
    last_token_s: float

    @property
    def time_per_output_token_s(self) -> float | None:
        """Decode time per token after the first (None with fewer than two tokens)."""
        if self.output_tokens < 2:
            return None
        return max(0.0, self.last_token_s - self.first_token_s) / (self.output_tokens - 1)


@dataclass(frozen=True)
class SpeedPoint:
    """Client-side speed of one server at one concurrency level, over the same prompts for every server.

    ``output_tokens`` and ``wall_seconds`` cover the whole level (first request sent to last token received), so
    ``tokens_per_second`` is the aggregate output throughput. ``time_per_output_token_s`` is the mean over requests
    of (last token time - first token time) / (tokens - 1): decoding only, prefill and queueing excluded.
    """

    concurrency: int
    requests: int
    output_tokens: int
    wall_seconds: float
    time_per_output_token_s: float | None

    @property
    def tokens_per_second(self) -> float | None:
        return self.output_tokens / self.wall_seconds if self.wall_seconds > 0 and self.output_tokens > 0 else None

    @classmethod
    def of(cls, concurrency: int, timings: Sequence[RequestTiming], wall_seconds: float) -> SpeedPoint:
        """The level's point from its requests' timings and the level's wall time."""
        tpots = [t.time_per_output_token_s for t in timings if t.time_per_output_token_s is not None]
        return cls(
            concurrency=concurrency,
            requests=len(timings),
            output_tokens=sum(t.output_tokens for t in timings),
            wall_seconds=wall_seconds,
            time_per_output_token_s=sum(tpots) / len(tpots) if tpots else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "output_tokens": self.output_tokens,
            "wall_seconds": self.wall_seconds,
            "output_tokens_per_second": self.tokens_per_second,
            "time_per_output_token_seconds": self.time_per_output_token_s,
        }


@dataclass(frozen=True)
class Candidate:
    """One draft candidate and everything measured or derived about it."""

    label: str
    model: str
    architecture: Architecture
    verdict: Verdict
    buckets: tuple[Bucket, ...] = ()
    overall: Acceptance | None = None
    cost_ratio: float | None = None
    recommendation: DepthRecommendation | None = None
    error: str | None = None
    startup_seconds: float | None = None
    method: str = "draft_model"
    speed: tuple[SpeedPoint, ...] = ()

    @property
    def rate(self) -> float | None:
        return self.overall.rate if self.overall is not None else None

    @property
    def param_ratio(self) -> float | None:
        return self.cost_ratio


@dataclass(frozen=True)
class Comparison:
    """The whole comparison: the target, the settings, the candidates in the order given, and notes."""

    target: Architecture
    num_speculative_tokens: int
    context_lengths: tuple[int, ...]
    max_tokens: int
    prompts: int
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...] = ()
    concurrency_levels: tuple[int, ...] = ()
    #: Speed with speculation off on the same prompts, per concurrency level (the 1.00x of every speedup).
    baseline: tuple[SpeedPoint, ...] = ()
    baseline_error: str | None = None
    speed_prompts: int | None = None

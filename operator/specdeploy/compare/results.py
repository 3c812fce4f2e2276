"""The data of one comparison: each candidate's architecture, validator verdict and measured acceptance.

Why plain frozen dataclasses: the measurement (slow, real vLLM) and everything said about it (ranking, table,
analysis, JSON, chart) are separate steps, so the second can be tested on synthetic measurements and re-rendered
without measuring again.
"""

from __future__ import annotations

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

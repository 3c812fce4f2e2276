"""Synthetic vLLM /metrics pages rendered by prometheus_client itself, and reference numbers read by its parser.

The pages use vLLM's exact metric names, help texts and labels (model_name, engine, position), so the parser under
test sees what a real server would expose; the reference reader is prometheus_client's own text parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

REAL_PAGE = Path(__file__).resolve().parents[2] / "fixtures" / "vllm" / "vllm-0.32-cpu-unrelated-draft.metrics.txt"


@dataclass(frozen=True)
class EngineCounts:
    drafts: float
    draft_tokens: float
    accepted: float
    per_position: Sequence[float] = field(default_factory=tuple)


class V1Server:
    """The metrics side of one vLLM V1 server process: counters only grow; a restart is a new ``V1Server``."""

    def __init__(self, model_name: str = "llama-3.1-8b-instruct") -> None:
        self.model_name = model_name
        self.registry = registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        Gauge("vllm:num_requests_running", "Number of requests in model execution batches.", labels, registry=registry)
        self._iteration = Histogram(
            "vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", labels, registry=registry
        )
        self._drafts = Counter(
            "vllm:spec_decode_num_drafts", "Number of spec decoding drafts.", labels, registry=registry
        )
        self._draft_tokens = Counter(
            "vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", labels, registry=registry
        )
        self._accepted = Counter(
            "vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", labels, registry=registry
        )
        self._per_pos = Counter(
            "vllm:spec_decode_num_accepted_tokens_per_pos",
            "Accepted tokens per draft position.",
            [*labels, "position"],
            registry=registry,
        )
        Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=registry)
        self._totals: dict[str, EngineCounts] = {}

    def advance_to(self, engines: Mapping[str, EngineCounts]) -> str:
        """Increment each engine's counters up to the given totals and return the rendered page."""
        for engine, counts in engines.items():
            old = self._totals.get(engine, EngineCounts(0, 0, 0, (0,) * len(counts.per_position)))
            name = self.model_name
            self._iteration.labels(name, engine).observe(17)
            self._drafts.labels(name, engine).inc(counts.drafts - old.drafts)
            self._draft_tokens.labels(name, engine).inc(counts.draft_tokens - old.draft_tokens)
            self._accepted.labels(name, engine).inc(counts.accepted - old.accepted)
            for position, value in enumerate(counts.per_position):
                self._per_pos.labels(name, engine, str(position)).inc(value - old.per_position[position])
            self._totals[engine] = counts
        return generate_latest(self.registry).decode()


def render_v1_page(engines: Mapping[str, EngineCounts], model_name: str = "llama-3.1-8b-instruct") -> str:
    """A page as a freshly started vLLM V1 server renders it: one label set per engine, other vLLM series around."""
    return V1Server(model_name).advance_to(engines)


def render_v0_page(rate: float, efficiency: float, accepted: float, draft: float, emitted: float) -> str:
    """A page as vLLM's V0 engine renders it (gauges plus lifetime sum-of-sums counters, label model_name only)."""
    registry = CollectorRegistry()
    labels = ["model_name"]
    name = "llama-3.1-8b-instruct"
    gauge = Gauge(
        "vllm:spec_decode_draft_acceptance_rate", "Speulative token acceptance rate.", labels, registry=registry
    )
    gauge.labels(name).set(rate)
    eff = Gauge("vllm:spec_decode_efficiency", "Speculative decoding system efficiency.", labels, registry=registry)
    eff.labels(name).set(efficiency)
    for metric, help_text, value in (
        ("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", accepted),
        ("vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", draft),
        ("vllm:spec_decode_num_emitted_tokens", "Number of emitted tokens.", emitted),
    ):
        Counter(metric, help_text, labels, registry=registry).labels(name).inc(value)
    return generate_latest(registry).decode()


@dataclass(frozen=True)
class Reference:
    drafts: float | None
    draft_tokens: float | None
    accepted: float | None
    per_position: tuple[float, ...]
    v0_rate: float | None


def reference_numbers(page: str) -> Reference:
    """The spec-decode totals of a page as prometheus_client's own parser reads them."""
    sums: dict[str, float] = {}
    positions: dict[int, float] = {}
    gauge: float | None = None
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "vllm:spec_decode_num_accepted_tokens_per_pos_total":
                index = int(sample.labels["position"])
                positions[index] = positions.get(index, 0.0) + sample.value
            elif sample.name == "vllm:spec_decode_draft_acceptance_rate":
                gauge = sample.value
            elif sample.name.startswith("vllm:spec_decode") and sample.name.endswith("_total"):
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return Reference(
        drafts=sums.get("vllm:spec_decode_num_drafts_total"),
        draft_tokens=sums.get("vllm:spec_decode_num_draft_tokens_total"),
        accepted=sums.get("vllm:spec_decode_num_accepted_tokens_total"),
        per_position=tuple(positions[i] for i in sorted(positions)),
        v0_rate=gauge,
    )

"""The measurement sequence (buckets, deltas, skips, failures) against an endpoint that serves the real vLLM page.

The endpoint stands in for a vLLM server only in how many tokens get accepted: its ``/metrics`` is the page captured
from real vLLM 0.32, with the spec-decode counters advanced as the requests it receives would advance them (a
context-length-dependent acceptance chosen by the test), so the parser, the deltas and the sums run on real text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.unit.compare.synthetic import arch

from specdeploy.compare.results import RequestTiming, Verdict
from specdeploy.compare.run import (
    DraftSpec,
    Settings,
    measure_candidate,
    pair_limit,
    parse_draft,
    plan_buckets,
    unique_labels,
)

REAL_PAGE = (
    Path(__file__).resolve().parents[2] / "fixtures/vllm/vllm-0.32-cpu-unrelated-draft.metrics.txt"
).read_text()
COUNTER = re.compile(
    r"^(vllm:spec_decode_num_(?:drafts|draft_tokens|accepted_tokens|accepted_tokens_per_pos)_total)"
    r"\{([^}]*)\} (\S+)$",
    re.M,
)


class ScriptedEndpoint:
    """Counts drafts as a k-token draft with per-position acceptance ``alpha**(i+1)`` would, per context length."""

    def __init__(
        self,
        k: int,
        alpha_by_length: Mapping[int, float],
        tokens_per_draft: int = 5,
        tokens_per_second: Mapping[int, float] | None = None,
    ) -> None:
        self.k = k
        self.tokens_per_second = tokens_per_second or {}
        self.timed: list[tuple[list[list[int]], int, int]] = []
        self.alpha_by_length = alpha_by_length
        self.tokens_per_draft = tokens_per_draft
        self.drafts = 189.0  # the real page's starting values (an earlier run of that server)
        self.draft_tokens = 756.0
        self.accepted = 0.0
        self.per_pos = [0.0] * k
        self.requests: list[tuple[list[int], int]] = []
        self.model_id = "tiny-target"

    def tokenize(self, text: str, *, add_special_tokens: bool) -> list[int]:
        ids = [100 + (ord(c) % 50) for c in text]
        return ([1] if add_special_tokens else []) + ids

    def complete_many(
        self, prompts: Sequence[str | Sequence[int]], max_tokens: int, *, concurrency: int = 4, ignore_eos: bool = True
    ) -> list[dict[str, Any]]:
        for prompt in prompts:
            assert not isinstance(prompt, str)
            self.requests.append((list(prompt), max_tokens))
            alpha = self.alpha_by_length[len(prompt)]
            drafts = max_tokens / self.tokens_per_draft
            self.drafts += drafts
            self.draft_tokens += drafts * self.k
            for i in range(self.k):
                self.per_pos[i] += drafts * alpha ** (i + 1)
            self.accepted = sum(self.per_pos)
        return [{"choices": [{"text": "x"}]} for _ in prompts]

    def timed_many(
        self, prompts: Sequence[str | Sequence[int]], max_tokens: int, *, concurrency: int
    ) -> tuple[list[RequestTiming], float]:
        """Every request gets ``max_tokens``; the level's aggregate rate is ``tokens_per_second[concurrency]``."""
        self.timed.append(([[int(t) for t in p] for p in prompts], max_tokens, concurrency))
        rate = self.tokens_per_second.get(concurrency, 100.0)
        wall = len(prompts) * max_tokens / rate
        per_request = concurrency / rate  # seconds per token of one sequence when `concurrency` share the rate
        timings = [RequestTiming(max_tokens, 0.01, 0.01 + per_request * (max_tokens - 1)) for _ in prompts]
        return timings, wall

    def metrics(self) -> str:
        values = {
            "vllm:spec_decode_num_drafts_total": lambda _labels: self.drafts,
            "vllm:spec_decode_num_draft_tokens_total": lambda _labels: self.draft_tokens,
            "vllm:spec_decode_num_accepted_tokens_total": lambda _labels: self.accepted,
            "vllm:spec_decode_num_accepted_tokens_per_pos_total": lambda labels: self.per_pos[
                int(re.search(r'position="(\d+)"', labels).group(1))  # type: ignore[union-attr]
            ],
        }
        return COUNTER.sub(lambda m: f"{m.group(1)}{{{m.group(2)}}} {values[m.group(1)](m.group(2))!r}", REAL_PAGE)


class ScriptedLauncher:
    def __init__(self, endpoints: Mapping[str, ScriptedEndpoint | Exception]) -> None:
        self.endpoints = endpoints
        self.calls: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def __call__(
        self, *, target: str, speculative_config: Mapping[str, Any], max_model_len: int, label: str
    ) -> Iterator[ScriptedEndpoint]:
        self.calls.append(
            {"target": target, "config": dict(speculative_config), "max_model_len": max_model_len, "label": label}
        )
        endpoint = self.endpoints[label]
        if isinstance(endpoint, Exception):
            raise endpoint
        yield endpoint


PROMPTS = ["alpha beta gamma", "one two three four", "the quick brown fox"]
OK = Verdict(True, "all checks passed", (("vocabulary", "pass"),))


def _measure(launcher: ScriptedLauncher, label: str, settings: Settings, max_len: int = 1024) -> Any:
    target = arch("/m/target")
    draft = arch(f"/m/{label}", layers=3, params=2_625_000)
    draft = type(draft)(**{**draft.to_json(), "max_len": max_len})
    return measure_candidate(
        DraftSpec(label, f"/m/{label}"),
        target="/m/target",
        target_arch=target,
        draft_arch=draft,
        check=OK,
        prompts=PROMPTS,
        settings=settings,
        launcher=launcher,
        log=lambda _: None,
    )


def test_buckets_measure_the_acceptance_of_their_own_requests_only() -> None:
    k = 4
    endpoint = ScriptedEndpoint(k, {64: 0.9, 256: 0.5})
    launcher = ScriptedLauncher({"large": endpoint})
    settings = Settings(context_lengths=(64, 256), num_speculative_tokens=k, max_tokens=32, num_prompts=2)
    candidate, notes = _measure(launcher, "large", settings)
    assert notes == []
    assert candidate.error is None
    by_length = {b.context_length: b for b in candidate.buckets}
    # The page started at 189 drafts / 756 draft tokens / 0 accepted: only the increase counts.
    for length, alpha in ((64, 0.9), (256, 0.5)):
        expected = sum(alpha ** (i + 1) for i in range(k)) / k
        assert by_length[length].rate == pytest.approx(expected)
        assert by_length[length].prompts == 2
        assert by_length[length].acceptance is not None
        assert by_length[length].acceptance.per_position == pytest.approx([alpha ** (i + 1) for i in range(k)])
    assert candidate.rate == pytest.approx(
        (sum(0.9 ** (i + 1) for i in range(k)) + sum(0.5 ** (i + 1) for i in range(k))) / (2 * k)
    )
    assert candidate.cost_ratio == pytest.approx(0.75)
    assert candidate.recommendation is not None and candidate.recommendation.k >= 1
    # Requests: exact context lengths, BOS first, the configured generation length.
    assert sorted({len(p) for p, _ in endpoint.requests}) == [64, 256]
    assert all(p[0] == 1 and n == 32 for p, n in endpoint.requests)
    assert launcher.calls == [
        {
            "target": "/m/target",
            "config": {"method": "draft_model", "model": "/m/large", "num_speculative_tokens": 4},
            "max_model_len": 256 + 32 + 2 * (4 + 1),  # room so that no draft position reaches the limit
            "label": "large",
        }
    ]


def test_contexts_longer_than_the_pair_supports_are_skipped_with_a_note() -> None:
    endpoint = ScriptedEndpoint(4, {64: 0.8})
    launcher = ScriptedLauncher({"short": endpoint})
    settings = Settings(context_lengths=(64, 256, 4096), max_tokens=32, num_prompts=1)
    candidate, notes = _measure(launcher, "short", settings, max_len=256)
    skipped = {b.context_length: b.skipped for b in candidate.buckets}
    assert skipped[64] is None
    assert "context 256 + 32 generated tokens + 10 spare exceeds the pair's maximum context 256" in (skipped[256] or "")
    assert skipped[4096] is not None
    assert len(notes) == 2 and all(n.startswith("short: skipped") for n in notes)
    assert launcher.calls[0]["max_model_len"] == 64 + 32 + 10


def test_a_server_that_fails_makes_an_unmeasured_candidate_not_a_crash() -> None:
    launcher = ScriptedLauncher({"broken": RuntimeError("vLLM exited with status 1 during start-up:\nTraceback ...")})
    candidate, _ = _measure(launcher, "broken", Settings(context_lengths=(64,), max_tokens=16))
    assert candidate.rate is None
    assert candidate.error is not None and candidate.error.startswith("RuntimeError: vLLM exited with status 1")
    assert [b.skipped for b in candidate.buckets] == ["not measured"]


def test_bucket_planning_and_pair_limit() -> None:
    kept, skipped = plan_buckets([64, 256, 1024], 64, 512)
    assert kept == [64, 256] and list(skipped) == [1024]
    # The spare positions count: 438 + 64 + 10 = 512 fits, 439 does not.
    assert plan_buckets([438, 439], 64, 512, spare=10)[0] == [438]
    assert plan_buckets([4096], 64, None) == ([4096], {})
    a, b = arch("a"), arch("b")
    assert pair_limit(a, type(b)(**{**b.to_json(), "max_len": 512})) == 512
    assert pair_limit(type(a)(**{**a.to_json(), "max_len": None}), type(b)(**{**b.to_json(), "max_len": None})) is None


def test_draft_labels(tmp_path: Path) -> None:
    folder = tmp_path / "same-family-small"
    folder.mkdir()
    assert parse_draft(str(folder)) == DraftSpec("same-family-small", str(folder))
    assert parse_draft("small=" + str(folder)) == DraftSpec("small", str(folder))
    assert parse_draft("meta-llama/Llama-3.2-1B") == DraftSpec("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B")
    twice = unique_labels([DraftSpec("d", "/a/d"), DraftSpec("d", "/b/d")])
    assert [d.label for d in twice] == ["d", "d#2"]

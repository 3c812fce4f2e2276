"""Synthetic comparisons for the pure parts: candidates whose numbers are chosen, shaped like the tiny models."""

from __future__ import annotations

from specdeploy.compare.results import Architecture, Bucket, Candidate, Comparison, Verdict
from specdeploy.monitor.acceptance import Acceptance
from specdeploy.monitor.speedup import recommend_depth

PASS_ALL = tuple(
    (name, "pass")
    for name in (
        "vocabulary",
        "token_ids",
        "special_tokens",
        "context_length",
        "tensor_parallel",
        "architecture",
        "parameter_ratio",
        "memory",
        "dtype",
    )
)


def acceptance(rate: float, k: int = 4, drafts: float = 100.0) -> Acceptance:
    """Numbers with per-position rates alpha^(i+1), alpha chosen so that their mean is ``rate``."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(mid ** (i + 1) for i in range(k)) / k < rate else (lo, mid)
    per_position = tuple(lo ** (i + 1) for i in range(k))
    accepted = sum(per_position) * drafts
    return Acceptance(
        engine="v1",
        rate=accepted / (drafts * k),
        mean_accepted_length=1 + accepted / drafts,
        per_position=per_position,
        drafts=drafts,
        draft_tokens=drafts * k,
        accepted_tokens=accepted,
    )


def arch(
    model: str, *, model_type: str = "llama", layers: int = 4, hidden: int = 256, params: int = 3_500_000
) -> Architecture:
    return Architecture(
        model=model,
        model_type=model_type,
        architecture="LlamaForCausalLM" if model_type == "llama" else "GPTNeoXForCausalLM",
        layers=layers,
        hidden_size=hidden,
        heads=4,
        kv_heads=4,
        vocab_size=640,
        params=params,
        max_len=1024,
    )


def candidate(
    label: str,
    rates: dict[int, float],
    *,
    model_type: str = "llama",
    layers: int = 4,
    hidden: int = 256,
    params: int = 3_500_000,
    target_params: int = 3_500_000,
    verdict: Verdict | None = None,
) -> Candidate:
    buckets = tuple(Bucket(n, 4, acceptance(r)) for n, r in rates.items())
    overall = acceptance(sum(rates.values()) / len(rates)) if rates else None
    cost = params / target_params
    rec = recommend_depth(overall.per_position, cost) if overall else None
    return Candidate(
        label=label,
        model=f"/models/{label}",
        architecture=arch(f"/models/{label}", model_type=model_type, layers=layers, hidden=hidden, params=params),
        verdict=verdict or Verdict(True, "all checks passed", PASS_ALL),
        buckets=buckets,
        overall=overall,
        cost_ratio=cost,
        recommendation=rec,
    )


def tiny_comparison() -> Comparison:
    """Four candidates like the generated ones, given out of order."""
    return Comparison(
        target=arch("/models/target"),
        num_speculative_tokens=4,
        context_lengths=(64, 256),
        max_tokens=32,
        prompts=4,
        candidates=(
            candidate(
                "other-family", {64: 0.08, 256: 0.06}, model_type="gpt_neox", layers=2, hidden=192, params=1_200_000
            ),
            candidate("same-family-small", {64: 0.42, 256: 0.38}, layers=1, params=1_200_000),
            candidate("copy", {64: 1.0, 256: 1.0}),
            candidate("same-family-large", {64: 0.75, 256: 0.70}, layers=3, params=2_700_000),
        ),
    )

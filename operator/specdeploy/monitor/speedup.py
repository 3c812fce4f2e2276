"""Recommend a speculation depth k from the live per-position acceptance rates (Leviathan et al., ICML 2023).

Why: a measured acceptance rate says whether the draft is bad; the same counters also say how deep to speculate.
The paper's model with i.i.d. acceptance alpha gives the expected tokens per target step
E(k) = (1 - alpha^(k+1)) / (1 - alpha) and the walltime speedup S(k) = E(k) / (c*k + 1), where c is the cost of
one draft step relative to one target step. vLLM measures more than alpha: per_position[i] = P(accepted prefix > i),
so this module uses E(k) = 1 + sum_{i<k} per_position[i], which equals the paper's formula when
per_position[i] = alpha^(i+1) and is exact for drafts whose acceptance falls off with depth.

Beyond the measured positions the rates are extrapolated geometrically with the last measured ratio
per_position[m-1] / per_position[m-2] (with one position, the ratio is per_position[0] itself, i.e. i.i.d.).
Measured rates are first clamped to [0, 1] and made non-increasing (a prefix longer than i+1 is also longer than i;
noisy or undercounted data can break that). The model ignores the extra verification compute of large batches, so
it is an upper bound on the real gain (see the reference notes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DepthRecommendation:
    """The depth with the highest modelled speedup; ``worthwhile`` is False when no depth beats no speculation."""

    k: int
    speedup: float
    expected_tokens: float
    worthwhile: bool


def position_rates(per_position: Sequence[float], k: int) -> tuple[float, ...]:
    """P(accepted prefix > i) for i = 0..k-1: measured values cleaned up, then extrapolated (module docstring)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if not per_position:
        raise ValueError("per_position is empty: no measured acceptance to extrapolate from")
    cleaned: list[float] = []
    previous = 1.0
    for index, value in enumerate(per_position):
        if not math.isfinite(value):
            raise ValueError(f"per_position[{index}] is {value!r}, not a finite rate")
        previous = min(previous, max(0.0, value))
        cleaned.append(previous)
    before_last = cleaned[-2] if len(cleaned) >= 2 else 1.0  # P(prefix > -1) = 1: one position means i.i.d.
    ratio = cleaned[-1] / before_last if before_last > 0 else 0.0
    rates = cleaned[:k]
    while len(rates) < k:
        rates.append(rates[-1] * ratio)
    return tuple(rates)


def expected_tokens(per_position: Sequence[float], k: int) -> float:
    """Expected tokens produced per target step when drafting k tokens (the accepted prefix plus one)."""
    return 1.0 + sum(position_rates(per_position, k))


def speedup(per_position: Sequence[float], k: int, cost_ratio: float) -> float:
    """Modelled walltime speedup over no speculation: E(k) / (cost_ratio * k + 1)."""
    _check_cost(cost_ratio)
    return expected_tokens(per_position, k) / (cost_ratio * k + 1.0)


def recommend_depth(per_position: Sequence[float], cost_ratio: float, max_k: int = 16) -> DepthRecommendation | None:
    """The k in 1..max_k with the highest modelled speedup (the smallest such k on ties); None without data."""
    _check_cost(cost_ratio)
    if max_k < 1:
        raise ValueError(f"max_k must be >= 1, got {max_k}")
    if not per_position:
        return None
    rates = position_rates(per_position, max_k)
    best_k, best_speedup, best_tokens = 0, 1.0, 1.0
    tokens = 1.0
    for k in range(1, max_k + 1):
        tokens += rates[k - 1]
        value = tokens / (cost_ratio * k + 1.0)
        if best_k == 0 or value > best_speedup * (1.0 + 1e-12):
            best_k, best_speedup, best_tokens = k, value, tokens
    return DepthRecommendation(k=best_k, speedup=best_speedup, expected_tokens=best_tokens, worthwhile=best_speedup > 1)


def cost_ratio_from_params(draft_params: float, target_params: float) -> float:
    """Estimate c = draft step cost / target step cost as the parameter ratio.

    Decoding is memory-bandwidth bound: a step reads every weight once, so at equal dtype and tensor parallelism
    (vLLM runs the draft with the target's TP) step time is roughly proportional to the parameter count.
    """
    for name, value in (("draft_params", draft_params), ("target_params", target_params)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return draft_params / target_params


def _check_cost(cost_ratio: float) -> None:
    if not (math.isfinite(cost_ratio) and cost_ratio >= 0):
        raise ValueError(f"cost_ratio must be a finite number >= 0, got {cost_ratio!r}")

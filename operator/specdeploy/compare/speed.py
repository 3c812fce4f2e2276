"""Measured against modelled speed: the speedup columns of ``compare-drafts`` and why the two disagree.

Why: acceptance is a proxy. What a user pays for is tokens per second, and speculation can make serving slower
at a good acceptance rate: under load the target verifies k + 1 tokens per sequence per step, which stops being
free once the batch fills the hardware, and a draft whose step costs more than its parameter share eats the gain.
The modelled speedup (``monitor.speedup``: Leviathan et al. with the per-position acceptance and the draft's cost
ratio) assumes neither happens. This module puts the measured speedup (output tokens per second against
speculation off, same prompts, same concurrency) beside it and says in words where and why they part.

Model-free methods (n-gram, suffix) have no draft forward pass: their cost ratio is taken as 0, so the model
predicts the expected tokens per target step, E(k).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specdeploy.compare.results import Candidate, Comparison, SpeedPoint, headline
from specdeploy.monitor.speedup import speedup

#: Measured and modelled disagree when one is more than this factor away from the other ...
DISAGREE_FACTOR = 1.25
#: ... or when they fall on different sides of 1.0 (faster vs slower than no speculation) by more than this.
SIDE_MARGIN = 0.05
#: A measured speedup that falls by more than this share from the lowest to a higher concurrency "falls with load".
FALLS_WITH_LOAD = 0.10
BASELINE_LABEL = "speculation off"


def cost_of(candidate: Candidate) -> float | None:
    """The draft step's cost relative to a target step: 0 for model-free methods, else the parameter ratio."""
    if candidate.method != "draft_model":
        return 0.0
    return candidate.cost_ratio


def modelled_speedup(candidate: Candidate, k: int) -> float | None:
    """The model's speedup at the depth that was measured (not the best depth); None without acceptance data."""
    overall, cost = candidate.overall, cost_of(candidate)
    if overall is None or not overall.per_position or cost is None:
        return None
    return speedup(overall.per_position, k, cost)


def measured_speedup(point: SpeedPoint | None, baseline: SpeedPoint | None) -> float | None:
    """Output tokens per second of ``point`` over the baseline's at the same concurrency."""
    if point is None or baseline is None:
        return None
    mine, base = point.tokens_per_second, baseline.tokens_per_second
    if mine is None or base is None or base <= 0:
        return None
    return mine / base


def _at(points: Sequence[SpeedPoint], concurrency: int) -> SpeedPoint | None:
    return next((p for p in points if p.concurrency == concurrency), None)


@dataclass(frozen=True)
class SpeedRow:
    """One row of the speed table: a candidate (or speculation off) at one concurrency level."""

    label: str
    concurrency: int
    tokens_per_second: float | None
    time_per_output_token_s: float | None
    measured: float | None
    modelled: float | None


def speed_rows(comparison: Comparison) -> list[SpeedRow]:
    """Speculation off first (1.00x by definition), then each candidate in the order given, per level."""
    rows: list[SpeedRow] = []
    levels = comparison.concurrency_levels
    for level in levels:
        base = _at(comparison.baseline, level)
        if base is not None:
            measured = 1.0 if base.tokens_per_second else None
            rows.append(
                SpeedRow(BASELINE_LABEL, level, base.tokens_per_second, base.time_per_output_token_s, measured, 1.0)
            )
    for c in comparison.candidates:
        modelled = modelled_speedup(c, comparison.num_speculative_tokens)
        for level in levels:
            point = _at(c.speed, level)
            if point is None:
                continue
            measured = measured_speedup(point, _at(comparison.baseline, level))
            rows.append(
                SpeedRow(c.label, level, point.tokens_per_second, point.time_per_output_token_s, measured, modelled)
            )
    return rows


def disagrees(measured: float, modelled: float) -> bool:
    """True when the two speedups are far apart or on different sides of 1.0 (see the module's constants)."""
    if measured <= 0 or modelled <= 0:
        return True
    far = max(measured / modelled, modelled / measured) > DISAGREE_FACTOR
    sides = (measured < 1 - SIDE_MARGIN and modelled > 1 + SIDE_MARGIN) or (
        measured > 1 + SIDE_MARGIN and modelled < 1 - SIDE_MARGIN
    )
    return far or sides


def _reason(candidate: Candidate, measured: dict[int, float], modelled: float, k: int, apart: list[int]) -> str:
    """Why measured and modelled part at the levels ``apart``, from the shape of all the measured speedups."""
    levels = sorted(measured)
    lowest, highest = levels[0], levels[-1]
    falls = len(levels) > 1 and measured[highest] < measured[lowest] * (1 - FALLS_WITH_LOAD)
    low_ok = not disagrees(measured[lowest], modelled)
    below = [lv for lv in apart if measured[lv] < modelled]
    parts: list[str] = []
    if falls and below and highest in below:
        parts.append(
            f"verification of {k} draft tokens is not free under load (at {highest} concurrent the target checks "
            f"{k + 1} tokens per sequence per step and that step costs more; the model takes it as free)"
        )
    if below and (not low_ok or not falls):
        if candidate.method == "draft_model":
            ratio = f"{candidate.cost_ratio:.2f}" if candidate.cost_ratio is not None else "?"
            parts.append(
                f"the draft costs more than its parameter share ({ratio} of a target step in the model): each draft "
                "step is a full forward pass with its own fixed overheads"
            )
        else:
            parts.append(
                "proposing and verifying drafts costs time the model does not count (it takes a model-free "
                "proposal as free)"
            )
    if any(measured[lv] > modelled for lv in apart):
        parts.append(
            "the model's cost estimate is pessimistic here (the draft step is cheaper than its parameter share), or "
            "speculation off was measured while the machine was busier: the model is an upper bound for a draft "
            "that costs what its parameters say, so rerun on a quiet machine before trusting a speedup above it"
        )
    return "; ".join(parts) or "the measurement is noisy at this size (few prompts, short completions)"


def disagreement_lines(comparison: Comparison) -> list[str]:
    """One sentence per candidate whose measured speedup disagrees with the model at some concurrency level."""
    lines: list[str] = []
    k = comparison.num_speculative_tokens
    for c in comparison.candidates:
        modelled = modelled_speedup(c, k)
        if modelled is None:
            continue
        measured: dict[int, float] = {}
        for point in c.speed:
            value = measured_speedup(point, _at(comparison.baseline, point.concurrency))
            if value is not None:
                measured[point.concurrency] = value
        apart = [lv for lv in sorted(measured) if disagrees(measured[lv], modelled)]
        if not apart:
            continue
        shown = " and ".join(f"{measured[lv]:.2f}x at {lv}" for lv in apart)
        lines.append(
            f"{c.label}: measured {shown} concurrent while the model predicts {modelled:.2f}x: "
            f"{_reason(c, measured, modelled, k, apart)}."
        )
    return lines


def summary_lines(comparison: Comparison) -> list[str]:
    """What the speed measurement says overall: which candidates pay at which load, and the disagreements."""
    if not comparison.concurrency_levels:
        return []
    if comparison.baseline_error is not None:
        first = headline(comparison.baseline_error)
        return [f"Speed: speculation off could not be measured, so there is no measured speedup: {first}"]
    lines: list[str] = []
    parts = []
    for c in comparison.candidates:
        values = [
            (p.concurrency, measured_speedup(p, _at(comparison.baseline, p.concurrency)))
            for p in sorted(c.speed, key=lambda p: p.concurrency)
        ]
        shown = ", ".join(f"{v:.2f}x at {lv}" for lv, v in values if v is not None)
        if shown:
            parts.append(f"{c.label} {shown}")
    if parts:
        lines.append(
            "Measured speedup against speculation off (output tokens/s, same prompts): " + "; ".join(parts) + "."
        )
    paying = {
        c.label: [
            p.concurrency
            for p in c.speed
            if (v := measured_speedup(p, _at(comparison.baseline, p.concurrency))) is not None and v > 1
        ]
        for c in comparison.candidates
    }
    if parts and not any(paying.values()):
        lines.append("No candidate is faster than speculation off at any measured concurrency.")
    disagreement = disagreement_lines(comparison)
    if disagreement:
        lines.append("Where the measurement and the speedup model disagree:")
        lines.extend(f"  - {line}" for line in disagreement)
    elif parts:
        lines.append(
            f"The measured speedups agree with the model within a factor {DISAGREE_FACTOR:g} at every measured load."
        )
    return lines

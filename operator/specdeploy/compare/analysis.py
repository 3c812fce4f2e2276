"""What the numbers say: ranking, architecture-difference rows, the spread, and (``speed``) measured vs modelled speed.

Why generated text: the question a user asks is "which draft, and why does it beat the others?". The ranking
answers the first part. For the second, each architecture difference (same family as the target or not, same
vocabulary, same hidden size, parameter ratio, layers, ...) is scored by the share of the variance of the overall
acceptance rate it accounts for across the candidates (eta squared for a yes/no difference, r squared of a line for
a number). With a handful of candidates these are associations, not proofs, and the text says so. Context length
and speed (the depth with the best modelled speedup, from ``monitor.speedup``) get one line each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from specdeploy.compare.results import Architecture, Candidate, Comparison, headline
from specdeploy.compare.speed import summary_lines

#: A difference is reported as explaining the spread when it accounts for at least this share of the variance.
EXPLAINS = 0.5
#: Changes of acceptance smaller than this across context lengths are called flat.
FLAT = 0.05


def ranked(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Best first: by overall acceptance rate, then mean accepted length; unmeasured candidates last, in order."""

    def key(item: tuple[int, Candidate]) -> tuple[int, float, float, int]:
        index, c = item
        if c.rate is None:
            return (1, 0.0, 0.0, index)
        length = c.overall.mean_accepted_length if c.overall and c.overall.mean_accepted_length else 0.0
        return (0, -c.rate, -length, index)

    return [c for _, c in sorted(enumerate(candidates), key=key)]


def _num(value: float | None, fmt: str = "{:,}") -> str:
    return "?" if value is None else fmt.format(value)


def _params(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def architecture_rows(comparison: Comparison) -> list[tuple[str, list[str]]]:
    """Rows of the side-by-side table: (attribute, [target value, candidate values best first...])."""
    target = comparison.target
    cands = ranked(comparison.candidates)
    archs = [target, *(c.architecture for c in cands)]

    def row(name: str, get: Callable[[Architecture], str]) -> tuple[str, list[str]]:
        return name, [get(a) for a in archs]

    vocab = ["(target)"] + [_vocab_cell(c, target) for c in cands]
    ratio = ["1.00"] + [_num(c.cost_ratio, "{:.2f}") for c in cands]
    return [
        row("family (model_type)", lambda a: a.model_type or "?"),
        row("architecture", lambda a: a.architecture or "?"),
        ("vocabulary", vocab),
        row("vocab size", lambda a: _num(a.vocab_size)),
        row("layers", lambda a: _num(a.layers)),
        row("hidden size", lambda a: _num(a.hidden_size)),
        row(
            "attention heads",
            lambda a: _num(a.heads) + ("" if a.kv_heads in (None, a.heads) else f" ({a.kv_heads} kv)"),
        ),
        row("parameters", lambda a: _params(a.params)),
        ("parameter ratio", ratio),
        row("max context", lambda a: _num(a.max_len)),
    ]


def _vocab_cell(candidate: Candidate, target: Architecture) -> str:
    status = candidate.verdict.status("vocabulary")
    if status == "pass":
        return "match"
    if status == "warn":
        return "match (warnings)"
    if status == "fail":
        return "MISMATCH"
    if candidate.architecture.vocab_size is not None and candidate.architecture.vocab_size == target.vocab_size:
        return "same size (not checked)"
    return "not checked"


@dataclass(frozen=True)
class Factor:
    """One architecture difference and the share of the acceptance variance it accounts for."""

    name: str
    share: float
    sentence: str


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values)


def _binary_factor(name: str, flags: Sequence[bool], rates: Sequence[float], yes: str, no: str) -> Factor | None:
    total = _variance(rates)
    same = [r for f, r in zip(flags, rates, strict=True) if f]
    other = [r for f, r in zip(flags, rates, strict=True) if not f]
    if not same or not other or total <= 0:
        return None
    mean = sum(rates) / len(rates)
    between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in (same, other))
    share = between / total
    separated = min(same) > max(other) or min(other) > max(same)
    sentence = (
        f"{name}: {yes} average {sum(same) / len(same):.2f}, {no} {sum(other) / len(other):.2f} "
        f"({share:.0%} of the variance{'; the groups do not overlap' if separated else ''})"
    )
    return Factor(name, share, sentence)


def _numeric_factor(
    name: str, xs: Sequence[float], rates: Sequence[float], show: Callable[[float], str]
) -> Factor | None:
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(rates) / len(rates)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in rates)
    if sxx <= 0 or syy <= 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, rates, strict=True))
    r = sxy / math.sqrt(sxx * syy)
    pairs = ", ".join(f"{show(x)} -> {y:.2f}" for x, y in sorted(zip(xs, rates, strict=True)))
    direction = "rises" if r > 0 else "falls"
    return Factor(
        name, r * r, f"{name}: acceptance {direction} with it (r = {r:+.2f}, {r * r:.0%} of the variance; {pairs})"
    )


def factors(comparison: Comparison) -> list[Factor]:
    """Architecture differences scored against the measured overall rates, strongest first."""
    target = comparison.target
    measured = [c for c in comparison.candidates if c.rate is not None and c.method == "draft_model"]
    if len(measured) < 2:
        return []
    rates = [c.rate for c in measured if c.rate is not None]
    family = target.model_type
    found: list[Factor | None] = [
        _binary_factor(
            f"same family as the target ({family})",
            [c.architecture.model_type == family for c in measured],
            rates,
            "same family",
            "other families",
        ),
        _binary_factor(
            "vocabulary",
            [c.verdict.status("vocabulary") in ("pass", "warn") for c in measured],
            rates,
            "matching",
            "mismatched",
        ),
        _binary_factor(
            "hidden size",
            [c.architecture.hidden_size == target.hidden_size for c in measured],
            rates,
            f"equal to the target's ({target.hidden_size})",
            "different",
        ),
    ]
    with_ratio = [c for c in measured if c.cost_ratio is not None and c.rate is not None]
    found.append(
        _numeric_factor(
            "parameter ratio",
            [c.cost_ratio for c in with_ratio if c.cost_ratio is not None],
            [c.rate for c in with_ratio if c.rate is not None],
            lambda x: f"{x:.2f}x",
        )
    )
    same_family = [c for c in measured if c.architecture.model_type == family and c.architecture.layers is not None]
    found.append(
        _numeric_factor(
            f"layers (within {family})",
            [float(c.architecture.layers) for c in same_family if c.architecture.layers is not None],
            [c.rate for c in same_family if c.rate is not None],
            lambda x: f"{x:g}",
        )
    )
    return sorted((f for f in found if f is not None), key=lambda f: -f.share)


def analysis(comparison: Comparison) -> list[str]:
    """A few sentences for humans: ranking, what explains the spread, context length, speed, verdicts."""
    lines: list[str] = []
    order = ranked(comparison.candidates)
    measured = [c for c in order if c.rate is not None]
    if measured:
        best, worst = measured[0], measured[-1]
        order_text = " > ".join(f"{c.label} ({c.rate:.2f})" for c in measured if c.rate is not None)
        lines.append(f"Ranking by overall acceptance: {order_text}.")
        if len(measured) > 1 and best.rate is not None and worst.rate is not None:
            lines.append(f"Spread: {best.rate - worst.rate:.2f} between {best.label} and {worst.label}.")
    for c in comparison.candidates:
        if c.rate is None:
            reason = c.error or "no draft tokens were measured"
            lines.append(f"{c.label}: not measured: {headline(reason) if reason else ''}")
    scored = factors(comparison)
    strong = [f for f in scored if f.share >= EXPLAINS]
    if strong:
        lines.append("What explains the spread (share of the variance of the overall rate across candidates):")
        lines.extend(f"  - {f.sentence}" for f in strong)
    weak = [f for f in scored if f.share < EXPLAINS]
    if weak:
        lines.append("Weaker associations: " + "; ".join(f"{f.name} ({f.share:.0%})" for f in weak) + ".")
    if scored:
        with_model = [c for c in measured if c.method == "draft_model"]
        lines.append(
            f"With {len(with_model)} draft models these are associations, not proofs; differences that move together "
            "(family, size, training) cannot be told apart."
        )
    lines.extend(_context_lines(comparison))
    lines.extend(_speed_lines(comparison))
    lines.extend(summary_lines(comparison))
    for c in comparison.candidates:
        if c.verdict.compatible is False:
            lines.append(f"The validator refuses {c.label}: {c.verdict.summary}.")
        elif c.verdict.compatible is None:
            lines.append(f"The validator could not check {c.label}: {c.verdict.summary}.")
    return lines


def _context_lines(comparison: Comparison) -> list[str]:
    changes: list[tuple[str, int, float, int, float]] = []
    for c in comparison.candidates:
        points = [(b.context_length, b.rate) for b in c.buckets if b.rate is not None]
        if len(points) >= 2:
            (lo, first), (hi, last) = points[0], points[-1]
            assert first is not None and last is not None
            changes.append((c.label, lo, first, hi, last))
    if not changes:
        return []
    moving = [ch for ch in changes if abs(ch[4] - ch[2]) >= FLAT]
    if not moving:
        lo, hi = changes[0][1], changes[0][3]
        return [f"Context length: every candidate stays within {FLAT:.2f} from {lo} to {hi} tokens."]
    parts = [f"{label} {first:.2f} -> {last:.2f} ({lo} -> {hi} tokens)" for label, lo, first, hi, last in moving]
    return ["Context length changes acceptance: " + "; ".join(parts) + "."]


def _speed_lines(comparison: Comparison) -> list[str]:
    with_rec = [c for c in comparison.candidates if c.recommendation is not None]
    worthwhile = [c for c in with_rec if c.recommendation is not None and c.recommendation.worthwhile]
    lines: list[str] = []
    if worthwhile:
        best = max(worthwhile, key=lambda c: c.recommendation.speedup if c.recommendation else 0.0)
        rec = best.recommendation
        assert rec is not None
        lines.append(
            f"Best modelled speedup: {best.label} at k = {rec.k}: {rec.speedup:.2f}x "
            f"({rec.expected_tokens:.2f} tokens per target step; an upper bound, see monitor.speedup)."
        )
    losing = [c for c in with_rec if c not in worthwhile]
    if losing:
        costs = ", ".join(f"{c.label} {c.cost_ratio:.2f}" for c in losing if c.cost_ratio is not None)
        subject = "No candidate" if not worthwhile else ", ".join(c.label for c in losing) + ":"
        verb = "beats" if not worthwhile else "no depth beats"
        lines.append(
            f"{subject} {verb} decoding without a draft in the speedup model: a draft step costs too much of a "
            f"target step for its acceptance (cost ratios {costs})."
        )
    return lines

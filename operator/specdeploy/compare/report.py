"""Render a comparison as a terminal table or as JSON (``compare-drafts --output table|json``).

Why separate from the analysis: the same facts go to two audiences, a person reading a terminal and a script
reading JSON; both renderings are pure functions of a :class:`Comparison`, so they can be tested on synthetic
measurements and stay consistent with each other (the JSON carries every number the table shows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from specdeploy.compare.analysis import analysis, architecture_rows, ranked
from specdeploy.compare.results import Bucket, Candidate, Comparison
from specdeploy.compare.speed import modelled_speedup, speed_rows
from specdeploy.monitor.acceptance import Acceptance


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _bucket_cell(bucket: Bucket | None) -> str:
    if bucket is None:
        return "-"
    if bucket.skipped is not None:
        return "skipped"
    return _rate(bucket.rate)


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, with a rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)


def _bucket(candidate: Candidate, length: int) -> Bucket | None:
    return next((b for b in candidate.buckets if b.context_length == length), None)


def acceptance_table(comparison: Comparison) -> str:
    """One row per candidate, best first: verdict, overall rate, mean accepted length, per bucket, per position, k."""
    lengths = comparison.context_lengths
    headers = [
        "rank",
        "candidate",
        "verdict",
        "acceptance",
        "mean len",
        *(f"ctx {n}" for n in lengths),
        "per position",
        "best k (speedup)",
    ]
    rows: list[list[str]] = []
    for index, c in enumerate(ranked(comparison.candidates), start=1):
        overall = c.overall
        length = overall.mean_accepted_length if overall is not None else None
        per_pos = " ".join(f"{r:.2f}" for r in overall.per_position) if overall and overall.per_position else "-"
        rec = c.recommendation
        if rec is None:
            best = "-"
        elif rec.worthwhile:
            best = f"{rec.k} ({rec.speedup:.2f}x)"
        else:
            best = f"none ({rec.speedup:.2f}x at best)"
        rows.append(
            [
                str(index) if c.rate is not None else "-",
                c.label,
                c.verdict.label,
                _rate(c.rate) if c.error is None else "error",
                "-" if length is None else f"{length:.2f}",
                *(_bucket_cell(_bucket(c, n)) for n in lengths),
                per_pos,
                best,
            ]
        )
    return grid(headers, rows)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def speed_table(comparison: Comparison) -> str:
    """Speculation off, then each candidate, per concurrency level: tokens/s, ms per token, measured vs modelled."""
    headers = ["candidate", "concurrent", "tokens/s", "ms/token", "speedup (measured)", "speedup (modelled)"]
    rows = [
        [
            r.label,
            str(r.concurrency),
            "-" if r.tokens_per_second is None else f"{r.tokens_per_second:.1f}",
            "-" if r.time_per_output_token_s is None else f"{r.time_per_output_token_s * 1000:.1f}",
            _x(r.measured),
            _x(r.modelled),
        ]
        for r in speed_rows(comparison)
    ]
    return grid(headers, rows)


def architecture_table(comparison: Comparison) -> str:
    headers = ["", "target", *(c.label for c in ranked(comparison.candidates))]
    return grid(headers, [[name, *cells] for name, cells in architecture_rows(comparison)])


def render_table(comparison: Comparison) -> str:
    """The full human report: settings, acceptance table, architecture table, analysis, notes."""
    settings = (
        f"target {comparison.target.model}; k = {comparison.num_speculative_tokens}; {comparison.prompts} prompts "
        f"per context length; {comparison.max_tokens} generated tokens each (greedy)"
    )
    parts = [
        f"Draft comparison: {settings}",
        "",
        acceptance_table(comparison),
        "",
    ]
    if speed_rows(comparison):
        parts += [
            f"Speed (client-side, streamed; {comparison.speed_prompts or comparison.prompts} prompts of "
            f"{min(comparison.context_lengths)} tokens, at least one request per slot; modelled = speedup model at k = "
            f"{comparison.num_speculative_tokens})",
            "",
            speed_table(comparison),
            "",
        ]
    parts += [
        "Architecture",
        "",
        architecture_table(comparison),
        "",
        "Analysis",
        "",
        *analysis(comparison),
    ]
    if comparison.notes:
        parts += ["", "Notes", "", *(f"- {note}" for note in comparison.notes)]
    return "\n".join(parts) + "\n"


def _acceptance_json(acceptance: Acceptance | None) -> dict[str, Any] | None:
    return acceptance.to_json() if acceptance is not None else None


def to_json(comparison: Comparison) -> dict[str, Any]:
    """Every number of the report, plus the ranking and the analysis lines."""
    candidates = []
    for c in comparison.candidates:
        rec = c.recommendation
        candidates.append(
            {
                "label": c.label,
                "model": c.model,
                "verdict": c.verdict.to_json(),
                "architecture": c.architecture.to_json(),
                "parameter_ratio": c.cost_ratio,
                "overall": _acceptance_json(c.overall),
                "buckets": [
                    {
                        "context_length": b.context_length,
                        "prompts": b.prompts,
                        "acceptance": _acceptance_json(b.acceptance),
                        "skipped": b.skipped,
                    }
                    for b in c.buckets
                ],
                "recommended_depth": None
                if rec is None
                else {
                    "k": rec.k,
                    "speedup": rec.speedup,
                    "expected_tokens": rec.expected_tokens,
                    "worthwhile": rec.worthwhile,
                },
                "error": c.error,
                "startup_seconds": c.startup_seconds,
                "method": c.method,
                "modelled_speedup": modelled_speedup(c, comparison.num_speculative_tokens),
                "speed": [p.to_json() for p in c.speed],
            }
        )
    return {
        "target": comparison.target.to_json(),
        "num_speculative_tokens": comparison.num_speculative_tokens,
        "context_lengths": list(comparison.context_lengths),
        "max_tokens": comparison.max_tokens,
        "prompts": comparison.prompts,
        "ranking": [c.label for c in ranked(comparison.candidates) if c.rate is not None],
        "candidates": candidates,
        "concurrency_levels": list(comparison.concurrency_levels),
        "speed_prompts": comparison.speed_prompts,
        "speculation_off": {
            "speed": [p.to_json() for p in comparison.baseline],
            "error": comparison.baseline_error,
        },
        "speed": [
            {
                "label": r.label,
                "concurrency": r.concurrency,
                "output_tokens_per_second": r.tokens_per_second,
                "time_per_output_token_seconds": r.time_per_output_token_s,
                "measured_speedup": r.measured,
                "modelled_speedup": r.modelled,
            }
            for r in speed_rows(comparison)
        ],
        "analysis": analysis(comparison),
        "notes": list(comparison.notes),
    }

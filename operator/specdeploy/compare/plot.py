"""The chart of ``compare-drafts --plot FILE.png``: acceptance against context length, and speedup against load.

Why a chart: whether a draft holds up on long contexts, and whether its speedup survives concurrent requests,
are the questions a table answers worst. The second panel (when speed was measured) shows the measured speedup
per concurrency level as solid lines and the modelled one as a dashed line of the same colour; 1.0 is
speculation off. matplotlib is an
optional dependency (the ``compare`` extra); it is imported only here, with the non-interactive Agg backend, so
the command works on a machine without a display. Writing the file is this module's only I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specdeploy.compare.analysis import ranked
from specdeploy.compare.results import Comparison
from specdeploy.compare.speed import speed_rows


class PlotError(RuntimeError):
    """The chart cannot be drawn or written; the message names the file or the missing package."""


def series(comparison: Comparison) -> list[tuple[str, list[int], list[float]]]:
    """(label, context lengths, rates) per candidate with at least one measured bucket, best candidate first."""
    out: list[tuple[str, list[int], list[float]]] = []
    for c in ranked(comparison.candidates):
        points = [(b.context_length, b.rate) for b in c.buckets if b.rate is not None]
        if points:
            out.append((c.label, [x for x, _ in points], [y for _, y in points if y is not None]))
    return out


def speedup_series(comparison: Comparison) -> list[tuple[str, list[int], list[float], float | None]]:
    """(label, concurrency levels, measured speedups, modelled speedup) per candidate with a measured speedup."""
    out: list[tuple[str, list[int], list[float], float | None]] = []
    for c in comparison.candidates:
        rows = [r for r in speed_rows(comparison) if r.label == c.label and r.measured is not None]
        if rows:
            out.append(
                (c.label, [r.concurrency for r in rows], [r.measured for r in rows if r.measured], rows[0].modelled)
            )
    return out


def write_chart(comparison: Comparison, path: Path) -> None:
    """Draw the chart into ``path`` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError(
            "--plot needs matplotlib: pip install 'specdeploy[compare]' (or pip install matplotlib)"
        ) from None
    lines = series(comparison)
    if not lines:
        raise PlotError(f"--plot {path}: no candidate has a measured acceptance rate to plot")
    speeds = speedup_series(comparison)
    if speeds:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=120)
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    # One colour per candidate in both panels.
    colours = {c.label: f"C{index % 10}" for index, c in enumerate(comparison.candidates)}
    try:
        if speeds:
            _speed_panel(ax2, speeds, comparison.num_speculative_tokens, colours)
        markers = "osD^vP*X"
        for index, (label, xs, ys) in enumerate(lines):
            ax.plot(xs, ys, marker=markers[index % len(markers)], linewidth=1.8, label=label, color=colours[label])
        lengths = sorted({x for _, xs, _ in lines for x in xs})
        if len(lengths) > 1:
            ax.set_xscale("log", base=2)
        ax.set_xticks(lengths)
        ax.set_xticklabels([str(n) for n in lengths])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("context length (prompt tokens)")
        ax.set_ylabel("draft acceptance rate")
        ax.set_title(
            f"Draft acceptance vs context length (k = {comparison.num_speculative_tokens})\n"
            f"target: {_short(comparison.target.model)}",
            fontsize=10,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
        fig.tight_layout()
        try:
            fig.savefig(path, format="png")
        except OSError as err:
            raise PlotError(f"--plot {path}: cannot write: {err.strerror or err}") from None
    finally:
        plt.close(fig)


def _speed_panel(
    ax: Any, speeds: list[tuple[str, list[int], list[float], float | None]], k: int, colours: dict[str, str]
) -> None:
    markers = "osD^vP*X"
    for index, (label, xs, ys, modelled) in enumerate(speeds):
        colour = colours[label]
        marker = markers[index % len(markers)]
        ax.plot(xs, ys, marker=marker, linewidth=1.8, label=f"{label} (measured)", color=colour)
        if modelled is not None:
            ax.axhline(modelled, linestyle="--", linewidth=1.2, color=colour, alpha=0.8)
    ax.axhline(1.0, color="black", linewidth=1.0, label="speculation off")
    levels = sorted({x for _, xs, _, _ in speeds for x in xs})
    if len(levels) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(levels)
    ax.set_xticklabels([str(n) for n in levels])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent requests")
    ax.set_ylabel("speedup (output tokens/s vs speculation off)")
    ax.set_title(f"Measured speedup vs concurrency (k = {k}; dashed: modelled)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _short(model: str, width: int = 70) -> str:
    """A folder is shown by its last two parts, a repo id as is; either cut to ``width`` characters."""
    parts = model.rstrip("/").split("/")
    shown = "/".join(parts[-2:]) if model.startswith(("/", ".", "~")) else model
    return shown if len(shown) <= width else "…" + shown[-(width - 1) :]

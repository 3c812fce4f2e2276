"""The chart of ``compare-drafts --plot FILE.png``: acceptance rate against context length, one line per candidate.

Why a chart: whether a draft holds up on long contexts is the question a table answers worst. matplotlib is an
optional dependency (the ``compare`` extra); it is imported only here, with the non-interactive Agg backend, so
the command works on a machine without a display. Writing the file is this module's only I/O.
"""

from __future__ import annotations

from pathlib import Path

from specdeploy.compare.analysis import ranked
from specdeploy.compare.results import Comparison


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
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    try:
        markers = "osD^vP*X"
        for index, (label, xs, ys) in enumerate(lines):
            ax.plot(xs, ys, marker=markers[index % len(markers)], linewidth=1.8, label=label)
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


def _short(model: str, width: int = 70) -> str:
    """A folder is shown by its last two parts, a repo id as is; either cut to ``width`` characters."""
    parts = model.rstrip("/").split("/")
    shown = "/".join(parts[-2:]) if model.startswith(("/", ".", "~")) else model
    return shown if len(shown) <= width else "…" + shown[-(width - 1) :]

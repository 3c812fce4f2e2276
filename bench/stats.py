"""Summary statistics for benchmark samples: median, p99, min, max, total.

Why its own module: every benchmark reports the same shape, and p99 must mean the same thing everywhere (the
nearest-rank percentile: with fewer than 100 samples it is the maximum, never an interpolated guess).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0 < q <= 100) of ``samples``."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile q must be in (0, 100], got {q}")
    ordered = sorted(samples)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class Summary:
    count: int
    median: float
    p99: float
    min: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ms(self) -> str:
        """``median 12.3 ms, p99 45.6 ms`` for a summary of seconds."""
        return f"median {self.median * 1e3:8.1f} ms, p99 {self.p99 * 1e3:8.1f} ms (n={self.count})"


def summarize(samples: Sequence[float]) -> Summary:
    if not samples:
        raise ValueError("no samples to summarize")
    return Summary(
        count=len(samples),
        median=statistics.median(samples),
        p99=percentile(samples, 99),
        min=min(samples),
        max=max(samples),
    )

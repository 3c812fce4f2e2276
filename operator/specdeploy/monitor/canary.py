"""Judge a canary beside the serving revision, window pair by window pair: pass, fail, or hold (issue 13).

Why a pure function: an abort or a promotion is an action the operator takes on its own, so, like
``monitor.decision``, the rules fit on one screen and are tested without a cluster. The tracker only builds the
pairs: two window accumulators started at the same instant, one fed by the canary's pods and one by the serving
revision's, from the same scrapes, so both sides of a pair saw the same traffic period.

The rules (``spec.rollback`` and ``spec.rollout.canary``):

* A pair *qualifies* when the canary's window has an acceptance rate over at least ``minDraftTokens`` proposed draft
  tokens and no pod that could not be read, and, when the serving revision speculates, the serving window has a
  rate too (with no unreadable pod). When the serving revision runs without speculation, the canary's acceptance is
  only compared with ``minAcceptanceRate``. A pair that does not qualify holds: no data is never a verdict.
* A qualifying pair *fails* when the canary's rate is below ``minAcceptanceRate``; or more than
  ``maxAcceptanceDrop`` below the serving rate; or, when both sides generated output tokens and measured a time
  per output token from the same vLLM series (the per-request histogram when both have finished requests, else
  the inter-token latency), the canary's is more than ``maxLatencyIncrease`` above the serving one's.
* The first failing qualifying pair is FAILED; ``analysisWindows`` passing pairs (before any failure) are PASSED;
  otherwise ANALYZING. The tracker keeps a verdict once reached (it is final for that canary revision).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from specdeploy.monitor.finding import CanaryFinding, CanaryVerdict
from specdeploy.monitor.window import Window


@dataclass(frozen=True)
class CanaryPolicy:
    """``spec.rollback`` and ``spec.rollout.canary`` as the judge needs them."""

    min_acceptance_rate: float
    min_draft_tokens: float
    max_acceptance_drop: float
    max_latency_increase: float
    analysis_windows: int

    def __post_init__(self) -> None:
        if self.analysis_windows < 1:
            raise ValueError(f"rollout.canary.analysisWindows must be >= 1, got {self.analysis_windows!r}")
        for name, value in (
            ("rollback.minAcceptanceRate", self.min_acceptance_rate),
            ("rollout.canary.maxAcceptanceDrop", self.max_acceptance_drop),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        if not self.max_latency_increase >= 0:
            raise ValueError(f"rollout.canary.maxLatencyIncrease must be >= 0, got {self.max_latency_increase!r}")
        if not self.min_draft_tokens >= 0:
            raise ValueError(f"rollback.minDraftTokens must be >= 0, got {self.min_draft_tokens!r}")


@dataclass(frozen=True)
class WindowPair:
    """The canary's and the serving revision's windows over the same span."""

    canary: Window
    serving: Window


@dataclass(frozen=True)
class _Latency:
    canary: float
    serving: float
    source: str  # which vLLM series both came from


def qualifies(pair: WindowPair, policy: CanaryPolicy, serving_speculates: bool, canary_speculates: bool = True) -> bool:
    """Whether the pair counts toward a verdict (see the module docstring). A canary without speculation (speculation
    brought back off) has no acceptance: its pairs qualify when both sides' time per output token compares."""
    c = pair.canary
    if not canary_speculates:
        return not c.incomplete_pods and not pair.serving.incomplete_pods and latency(pair) is not None
    if c.incomplete_pods or c.rate is None or c.draft_tokens is None or c.draft_tokens < policy.min_draft_tokens:
        return False
    if serving_speculates:
        return not pair.serving.incomplete_pods and pair.serving.rate is not None
    return True


def latency(pair: WindowPair) -> _Latency | None:
    """Both sides' mean time per output token from the same series, when both generated tokens; else None."""
    c, s = pair.canary.speed, pair.serving.speed
    if c is None or s is None or not (c.output_tokens or 0) > 0 or not (s.output_tokens or 0) > 0:
        return None
    if c.request_tpot_seconds is not None and s.request_tpot_seconds is not None:
        return _Latency(c.request_tpot_seconds, s.request_tpot_seconds, "vllm:request_time_per_output_token_seconds")
    if c.inter_token_seconds is not None and s.inter_token_seconds is not None:
        return _Latency(c.inter_token_seconds, s.inter_token_seconds, "vllm:inter_token_latency_seconds")
    return None


def failure(
    pair: WindowPair, policy: CanaryPolicy, serving_speculates: bool, canary_speculates: bool = True
) -> str | None:
    """Why a qualifying pair fails, in words with the numbers; None when it passes."""
    rate = pair.canary.rate if canary_speculates else None
    if rate is not None and rate < policy.min_acceptance_rate:
        return f"canary acceptance {rate:.3f} is below rollback.minAcceptanceRate {policy.min_acceptance_rate:.3f}"
    serving_rate = pair.serving.rate
    if (
        rate is not None
        and serving_speculates
        and serving_rate is not None
        and rate < serving_rate - policy.max_acceptance_drop
    ):
        return (
            f"canary acceptance {rate:.3f} is {serving_rate - rate:.3f} below the serving revision's "
            f"{serving_rate:.3f} (rollout.canary.maxAcceptanceDrop {policy.max_acceptance_drop:.3f})"
        )
    lat = latency(pair)
    if lat is not None and lat.canary > lat.serving * (1.0 + policy.max_latency_increase):
        return (
            f"canary time per output token {_ms(lat.canary)} is {lat.canary / lat.serving - 1:.0%} above the serving "
            f"revision's {_ms(lat.serving)} ({lat.source}; rollout.canary.maxLatencyIncrease "
            f"{policy.max_latency_increase:.0%})"
        )
    return None


def judge_canary(
    policy: CanaryPolicy,
    pairs: Sequence[WindowPair],
    *,
    revision: str,
    serving: str,
    serving_speculates: bool,
    canary_speculates: bool = True,
) -> CanaryFinding:
    """The verdict on the canary ``revision`` from its window pairs (oldest first) beside ``serving``."""
    counted: list[WindowPair] = []
    verdict, reason = CanaryVerdict.ANALYZING, ""
    for pair in pairs:
        if not qualifies(pair, policy, serving_speculates, canary_speculates):
            continue
        why = failure(pair, policy, serving_speculates, canary_speculates)
        if why is not None:
            return _finding(
                policy, [pair], CanaryVerdict.FAILED, revision, serving, serving_speculates, len(counted), why
            )
        counted.append(pair)
        if len(counted) >= policy.analysis_windows:
            verdict = CanaryVerdict.PASSED
            break
    if verdict is CanaryVerdict.ANALYZING and not counted:
        seen = len(pairs)
        reason = (
            f"canary {revision} beside {serving}: no qualifying window yet ({seen} compared; a window needs "
            + (
                f"{policy.min_draft_tokens:g} canary draft tokens"
                + (" and a serving acceptance rate" if serving_speculates else "")
                if canary_speculates
                else "output tokens and a time per output token on both sides"
            )
            + "): holding"
        )
        return CanaryFinding(revision=revision, serving=serving, verdict=verdict, message=reason)
    return _finding(policy, counted, verdict, revision, serving, serving_speculates, len(counted), reason)


def _finding(  # noqa: PLR0917 - private, called twice with the judge's own values
    policy: CanaryPolicy,
    pairs: Sequence[WindowPair],
    verdict: CanaryVerdict,
    revision: str,
    serving: str,
    serving_speculates: bool,
    passed: int,
    why: str,
) -> CanaryFinding:
    """The numbers over ``pairs`` (the qualifying pairs so far, or the one failing pair) and the message."""
    c_draft = sum(p.canary.draft_tokens or 0.0 for p in pairs)
    c_accepted = sum(p.canary.accepted_tokens or 0.0 for p in pairs)
    s_draft = sum(p.serving.draft_tokens or 0.0 for p in pairs if p.serving.rate is not None)
    s_accepted = sum(p.serving.accepted_tokens or 0.0 for p in pairs if p.serving.rate is not None)
    acc_c = c_accepted / c_draft if c_draft > 0 else None
    acc_s = s_accepted / s_draft if serving_speculates and s_draft > 0 else None
    lats = [(lat, p) for p in pairs if (lat := latency(p)) is not None]
    tpot_c = _weighted([(lat.canary, _tokens(p.canary)) for lat, p in lats])
    tpot_s = _weighted([(lat.serving, _tokens(p.serving)) for lat, p in lats])
    out_c = sum(_tokens(p.canary) for _, p in lats)
    out_s = sum(_tokens(p.serving) for _, p in lats)
    first, last = pairs[0].canary, pairs[-1].canary
    span = f"{_when(first.start)} to {_when(last.end)}"
    served = "the serving revision" if serving_speculates else "the serving revision (no speculation)"
    parts = [f"canary {revision} beside {served} {serving} over {len(pairs)} qualifying window(s), {span}"]
    if acc_c is not None:
        side = f"; acceptance {acc_c:.3f} over {c_draft:,.0f} draft tokens"
        if acc_s is not None:
            side += f" vs {acc_s:.3f} over {s_draft:,.0f}"
        parts.append(side)
    if tpot_c is not None and tpot_s is not None:
        parts.append(
            f"; time per output token {_ms(tpot_c)} over {out_c:,.0f} output tokens vs {_ms(tpot_s)} over {out_s:,.0f}"
        )
    elif not lats:
        parts.append("; time per output token not compared (no output tokens on one side)")
    if verdict is CanaryVerdict.FAILED:
        parts.append(f": {why}: abort")
    elif verdict is CanaryVerdict.PASSED:
        parts.append(f": {passed} of {policy.analysis_windows} window(s) passed: promote")
    else:
        parts.append(f": {passed} of {policy.analysis_windows} window(s) passed so far: analyzing")
    return CanaryFinding(
        revision=revision,
        serving=serving,
        verdict=verdict,
        windows_passed=passed,
        acceptance_canary=acc_c,
        acceptance_serving=acc_s,
        tpot_canary=tpot_c,
        tpot_serving=tpot_s,
        message="".join(parts)[:1000],
    )


def _tokens(window: Window) -> float:
    return (window.speed.output_tokens or 0.0) if window.speed is not None else 0.0


def _weighted(values: Sequence[tuple[float, float]]) -> float | None:
    weight = sum(w for _, w in values)
    return sum(v * w for v, w in values) / weight if weight > 0 else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%SZ")

"""Run one comparison: describe and validate every candidate, then measure each on a real vLLM server.

Why this module: it is the one place that sequences the slow, effectful steps (reading model metadata, running
the validator, starting servers, sending traffic, scraping ``/metrics``) and hands plain data to the pure modules.
The server comes from a :class:`~specdeploy.compare.launch.Launcher`, so where vLLM runs is not decided here.

Per candidate: one server with ``--speculative-config {"method": "draft_model", "model": DRAFT, ...}``. Per
context-length bucket: read the spec-decode counters, send the bucket's prompts (greedy, a fixed number of tokens,
EOS ignored so every completion drafts the same amount), read the counters again once they stop moving, and keep
the difference (``monitor.acceptance.delta``). Buckets longer than the pair's maximum context are skipped with a
note. The overall numbers are the sum of the buckets.

Speed: when concurrency levels are given, one more server runs the target with speculation off, and every server
(that one and each candidate's, after its buckets) gets the same speed contexts (the shortest context length,
``speed_prompts`` distinct prompts) at each level: one uncounted warm-up request, then ``max(prompts, level)``
streamed completions with ``level`` in flight. Counts are bounded by the CLI (levels up to 256), every request
by the server's request timeout, and all traffic goes to 127.0.0.1.

Headroom: vLLM 0.32's draft proposer clamps a draft position that reaches ``max_model_len`` to 0
(``vllm/v1/spec_decode/utils.py``), so drafts proposed at the very end of the allowed length are garbage and get
rejected. Measured with the target's own copy as draft: acceptance 0.68 when prompt + generated tokens filled
``max_model_len`` exactly, 1.00 with 9 or more tokens to spare. Each bucket therefore keeps
:func:`headroom` = 2 * (k + 1) positions free, so what is measured is the draft, not the limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from specdeploy.api.spec import METHODS_WITHOUT_DRAFT, Method
from specdeploy.compare.launch import Endpoint, Launcher
from specdeploy.compare.prompts import build_contexts
from specdeploy.compare.results import Architecture, Bucket, Candidate, Comparison, SpeedPoint, Verdict, headline
from specdeploy.monitor.acceptance import combine, delta, summarize
from specdeploy.monitor.parse import SpecDecodeCounters, parse_spec_decode
from specdeploy.monitor.speedup import cost_ratio_from_params, recommend_depth
from specdeploy.validate.checks import Options
from specdeploy.validate.engine import Request, validate
from specdeploy.validate.errors import CheckError
from specdeploy.validate.models import load_model
from specdeploy.validate.sources import resolve

Log = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """How to measure: bucket lengths, speculation depth, tokens per completion, prompts per bucket."""

    context_lengths: tuple[int, ...] = (256, 1024, 4096)
    num_speculative_tokens: int = 4
    max_tokens: int = 64
    num_prompts: int = 8
    concurrency: int = 4
    max_depth: int = 16
    metadata_timeout_s: float = 120.0
    #: Concurrency levels of the speed measurement (empty: no speed measurement, no speculation-off server).
    concurrency_levels: tuple[int, ...] = (1, 4, 16)
    #: Distinct prompts of the speed measurement (None: ``num_prompts``); each level sends at least one per slot.
    speed_prompts: int | None = None


@dataclass(frozen=True)
class DraftSpec:
    """A candidate as given on the command line: a label and a model (folder or repo id), or a model-free method."""

    label: str
    model: str
    method: str = "draft_model"


def parse_draft(value: str) -> DraftSpec:
    """``LABEL=MODEL`` or ``MODEL`` (the label is then the folder name or the repo id)."""
    label, sep, model = value.partition("=")
    if sep and label and "/" not in label and model:
        return DraftSpec(label=label, model=model)
    model = value
    name = os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model
    return DraftSpec(label=name or model, model=model)


#: Methods of vLLM 0.32 that propose tokens without any model (the API's own list).
MODEL_FREE_METHODS = tuple(m.value for m in Method if m in METHODS_WITHOUT_DRAFT)


def parse_model_free(value: str) -> DraftSpec:
    """``METHOD`` or ``LABEL=METHOD`` for a model-free candidate; ValueError names the accepted methods."""
    label, sep, method = value.partition("=")
    if not sep:
        label, method = value, value
    if method not in MODEL_FREE_METHODS or not label:
        raise ValueError(
            f"--model-free {value!r}: expected [LABEL=]METHOD with METHOD one of {', '.join(MODEL_FREE_METHODS)}"
        )
    return DraftSpec(label=label, model=method, method=method)


def model_free_architecture(method: str) -> Architecture:
    """The architecture row of a model-free candidate: no model, so nothing but the method."""
    return Architecture(method, f"none ({method})", None, None, None, None, None, None, None, None)


def model_free_verdict(method: str) -> Verdict:
    return Verdict(True, f"{method} proposes tokens without a draft model: nothing to check")


def unique_labels(drafts: Sequence[DraftSpec]) -> list[DraftSpec]:
    """Labels made unique by appending #2, #3 ... to repeats."""
    seen: dict[str, int] = {}
    out = []
    for d in drafts:
        seen[d.label] = seen.get(d.label, 0) + 1
        out.append(d if seen[d.label] == 1 else DraftSpec(f"{d.label}#{seen[d.label]}", d.model))
    return out


def describe(spec: str, role: str, timeout_s: float) -> Architecture:
    """The architecture of a model from its metadata (the validator's reader). Raises CheckError naming the model."""
    model = load_model(resolve(spec, revision=None, cache_dir=None, timeout_s=timeout_s), role)
    cfg = model.config
    return Architecture(
        model=spec,
        model_type=cfg.model_type,
        architecture=cfg.architectures[0] if cfg.architectures else None,
        layers=cfg.num_layers,
        hidden_size=cfg.hidden_size,
        heads=cfg.num_heads,
        kv_heads=cfg.num_kv_heads,
        vocab_size=cfg.vocab_size,
        params=model.params.total if model.params else None,
        max_len=cfg.max_len,
    )


def verdict(target: str, draft: str, timeout_s: float) -> Verdict:
    """The validator's verdict for draft-model speculation (never raises: "cannot check" is a verdict too)."""
    outcome = validate(Request(target=target, draft=draft, options=Options(method="draft_model"), timeout_s=timeout_s))
    report = outcome.report
    checks = tuple((str(c["name"]), str(c["status"])) for c in report.get("checks", []))
    compatible = None if "error" in report else bool(report["compatible"])
    return Verdict(compatible=compatible, summary=str(report.get("summary", "")), checks=checks)


def headroom(num_speculative_tokens: int) -> int:
    """Positions kept free beyond prompt + generated tokens (see the module docstring)."""
    return 2 * (num_speculative_tokens + 1)


def plan_buckets(
    lengths: Sequence[int], max_tokens: int, limit: int | None, spare: int = 0
) -> tuple[list[int], dict[int, str]]:
    """Which context lengths fit ``limit`` (prompt + generated + ``spare`` tokens); the others with the reason."""
    kept: list[int] = []
    skipped: dict[int, str] = {}
    for length in lengths:
        if limit is not None and length + max_tokens + spare > limit:
            extra = f" + {spare} spare" if spare else ""
            skipped[length] = (
                f"context {length} + {max_tokens} generated tokens{extra} exceeds the pair's maximum context {limit}"
            )
        else:
            kept.append(length)
    return kept, skipped


def pair_limit(target: Architecture, draft: Architecture) -> int | None:
    """The longest sequence both models support (None when neither config says)."""
    known = [n for n in (target.max_len, draft.max_len) if n]
    return min(known) if known else None


def read_counters(endpoint: Endpoint) -> SpecDecodeCounters | None:
    return parse_spec_decode(endpoint.metrics())


def settled_counters(endpoint: Endpoint, *, pause_s: float = 0.5, attempts: int = 10) -> SpecDecodeCounters | None:
    """The counters once two reads ``pause_s`` apart agree (the last engine steps may be reported a moment late)."""
    current = read_counters(endpoint)
    for _ in range(attempts):
        time.sleep(pause_s)
        again = read_counters(endpoint)
        if again is not None and current is not None and again.series == current.series:
            return again
        current = again
    return current


def measure_buckets(
    endpoint: Endpoint, prompts: Sequence[str], lengths: Sequence[int], settings: Settings, log: Log
) -> list[tuple[int, int, SpecDecodeCounters | None]]:
    """(length, prompts sent, counter delta) per bucket, measured on a running server."""
    prefix = endpoint.tokenize("", add_special_tokens=True)
    separator = endpoint.tokenize("\n", add_special_tokens=False)
    token_lists = [endpoint.tokenize(p, add_special_tokens=False) for p in prompts]
    out: list[tuple[int, int, SpecDecodeCounters | None]] = []
    for length in lengths:
        contexts = build_contexts(token_lists, length, prefix=prefix, separator=separator)[: settings.num_prompts]
        before = read_counters(endpoint)
        started = time.monotonic()
        endpoint.complete_many(contexts, settings.max_tokens, concurrency=settings.concurrency)
        after = settled_counters(endpoint)
        window = delta(before, after) if after is not None else None
        rate = summarize(window).rate if window is not None else None
        shown = "no spec-decode counters" if rate is None else f"acceptance {rate:.3f}"
        log(f"  ctx {length}: {len(contexts)} prompts in {time.monotonic() - started:.1f} s, {shown}")
        out.append((length, len(contexts), window))
    return out


def measure_candidate(
    draft: DraftSpec,
    *,
    target: str,
    target_arch: Architecture,
    draft_arch: Architecture,
    check: Verdict,
    prompts: Sequence[str],
    settings: Settings,
    launcher: Launcher,
    log: Log,
) -> tuple[Candidate, list[str]]:
    """Start a server for this draft, measure every bucket that fits, and return the candidate (and notes)."""
    notes: list[str] = []
    limit = pair_limit(target_arch, draft_arch)
    spare = headroom(settings.num_speculative_tokens)
    kept, skipped = plan_buckets(settings.context_lengths, settings.max_tokens, limit, spare)
    notes.extend(f"{draft.label}: skipped {reason}" for reason in skipped.values())
    cost = None
    if draft.method != "draft_model":
        cost = 0.0  # no draft forward pass
    elif draft_arch.params and target_arch.params:
        cost = cost_ratio_from_params(draft_arch.params, target_arch.params)
    base = Candidate(
        label=draft.label,
        model=draft.model,
        architecture=draft_arch,
        verdict=check,
        cost_ratio=cost,
        method=draft.method,
    )
    skipped_buckets = {n: Bucket(n, 0, None, skipped=reason) for n, reason in skipped.items()}
    if not kept:
        return replace(base, buckets=tuple(skipped_buckets[n] for n in settings.context_lengths)), notes
    config: dict[str, object] = {"method": draft.method, "num_speculative_tokens": settings.num_speculative_tokens}
    if draft.method == "draft_model":
        config["model"] = draft.model
    max_len = max(kept) + settings.max_tokens + spare
    log(f"{draft.label}: starting vLLM (max model len {max_len}) ...")
    started = time.monotonic()
    try:
        with launcher(target=target, speculative_config=config, max_model_len=max_len, label=draft.label) as endpoint:
            startup = time.monotonic() - started
            log(f"{draft.label}: ready after {startup:.0f} s")
            measured = measure_buckets(endpoint, prompts, kept, settings, log)
            speed = measure_speed(endpoint, prompts, settings, log) if speed_fits(settings, limit) else ()
    except Exception as err:  # a candidate vLLM cannot serve is a result, not a crash of the comparison
        message = f"{type(err).__name__}: {err}"
        log(f"{draft.label}: measurement failed: {headline(message)}")
        buckets = tuple(
            skipped_buckets.get(n) or Bucket(n, 0, None, skipped="not measured") for n in settings.context_lengths
        )
        return replace(base, buckets=buckets, error=message), notes
    by_length = {n: Bucket(n, count, summarize(w) if w is not None else None) for n, count, w in measured}
    buckets = tuple(by_length.get(n) or skipped_buckets[n] for n in settings.context_lengths)
    total = combine(w for _, _, w in measured if w is not None)
    overall = summarize(total) if total is not None else None
    rec = None
    if overall is not None and overall.per_position and cost is not None and draft.method == "draft_model":
        rec = recommend_depth(overall.per_position, cost, max_k=settings.max_depth)
    if overall is None or overall.rate is None:
        notes.append(f"{draft.label}: vLLM reported no draft tokens (is speculation active?)")
    if settings.concurrency_levels and not speed:
        notes.append(f"{draft.label}: speed not measured: {speed_skip_reason(settings, limit)}")
    return (
        replace(base, buckets=buckets, overall=overall, recommendation=rec, startup_seconds=startup, speed=speed),
        notes,
    )


def speed_length(settings: Settings) -> int:
    """The prompt length of the speed measurement: the shortest context length, the same for every server."""
    return min(settings.context_lengths)


def speed_fits(settings: Settings, limit: int | None) -> bool:
    if not settings.concurrency_levels:
        return False
    return (
        limit is None
        or speed_length(settings) + settings.max_tokens + headroom(settings.num_speculative_tokens) <= limit
    )


def speed_skip_reason(settings: Settings, limit: int | None) -> str:
    if not settings.concurrency_levels:
        return "no concurrency levels"
    return (
        f"context {speed_length(settings)} + {settings.max_tokens} generated tokens exceeds the maximum context {limit}"
    )


def speed_requests(level: int, settings: Settings) -> int:
    """Requests sent at one level: every prompt once, and at least one per slot so the level is reached."""
    return max(speed_prompt_count(settings), level)


def speed_prompt_count(settings: Settings) -> int:
    return settings.speed_prompts if settings.speed_prompts is not None else settings.num_prompts


def measure_speed(endpoint: Endpoint, prompts: Sequence[str], settings: Settings, log: Log) -> tuple[SpeedPoint, ...]:
    """Output tokens/s and time per output token at each concurrency level, on the same contexts for every server.

    One request is sent first and not counted (the first request after start-up pays one-off costs), then at each
    level ``speed_requests`` completions of the speed contexts, ``level`` in flight.
    """
    prefix = endpoint.tokenize("", add_special_tokens=True)
    separator = endpoint.tokenize("\n", add_special_tokens=False)
    token_lists = [endpoint.tokenize(p, add_special_tokens=False) for p in prompts]
    contexts = build_contexts(token_lists, speed_length(settings), prefix=prefix, separator=separator)
    contexts = contexts[: speed_prompt_count(settings)]
    if not contexts:
        return ()
    endpoint.timed_many(contexts[:1], settings.max_tokens, concurrency=1)
    points: list[SpeedPoint] = []
    for level in settings.concurrency_levels:
        count = speed_requests(level, settings)
        batch = [contexts[i % len(contexts)] for i in range(count)]
        timings, wall = endpoint.timed_many(batch, settings.max_tokens, concurrency=level)
        point = SpeedPoint.of(level, timings, wall)
        tps = point.tokens_per_second
        tpot = point.time_per_output_token_s
        log(
            f"  {level} concurrent: {count} requests in {wall:.1f} s, "
            f"{'?' if tps is None else f'{tps:.1f}'} tokens/s, "
            f"{'?' if tpot is None else f'{tpot * 1000:.1f}'} ms per output token"
        )
        points.append(point)
    return tuple(points)


def measure_baseline(
    *, target: str, target_arch: Architecture, prompts: Sequence[str], settings: Settings, launcher: Launcher, log: Log
) -> tuple[tuple[SpeedPoint, ...], str | None]:
    """Speed with speculation off (no ``--speculative-config``) on the same contexts; (points, error)."""
    if not speed_fits(settings, target_arch.max_len):
        return (), speed_skip_reason(settings, target_arch.max_len)
    kept, _ = plan_buckets(
        settings.context_lengths, settings.max_tokens, target_arch.max_len, headroom(settings.num_speculative_tokens)
    )
    max_len = max(kept) + settings.max_tokens + headroom(settings.num_speculative_tokens)
    log(f"speculation off: starting vLLM (max model len {max_len}) ...")
    try:
        with launcher(target=target, speculative_config={}, max_model_len=max_len, label="speculation-off") as endpoint:
            return measure_speed(endpoint, prompts, settings, log), None
    except Exception as err:  # reported as the comparison's baseline error, not a crash
        message = f"{type(err).__name__}: {err}"
        log(f"speculation off: measurement failed: {headline(message)}")
        return (), message


def compare(
    target: str,
    drafts: Sequence[DraftSpec],
    prompts: Sequence[str],
    *,
    settings: Settings,
    launcher: Launcher,
    log: Log = lambda _: None,
) -> Comparison:
    """Describe, validate and measure every candidate against ``target``. Raises CheckError for an unreadable model."""
    target_arch = describe(target, "target", settings.metadata_timeout_s)
    notes: list[str] = []
    candidates: list[Candidate] = []
    described: list[tuple[DraftSpec, Architecture, Verdict]] = []
    for draft in unique_labels(drafts):
        if draft.method != "draft_model":
            described.append((draft, model_free_architecture(draft.method), model_free_verdict(draft.method)))
            continue
        try:
            arch = describe(draft.model, "draft", settings.metadata_timeout_s)
        except CheckError as err:
            raise CheckError(err.kind, f"--draft {draft.model}: {err}") from None
        check = verdict(target, draft.model, settings.metadata_timeout_s)
        log(f"{draft.label}: validator says {check.label} ({check.summary})")
        described.append((draft, arch, check))
    baseline: tuple[SpeedPoint, ...] = ()
    baseline_error: str | None = None
    if settings.concurrency_levels:
        baseline, baseline_error = measure_baseline(
            target=target, target_arch=target_arch, prompts=prompts, settings=settings, launcher=launcher, log=log
        )
    for draft, arch, check in described:
        candidate, more = measure_candidate(
            draft,
            target=target,
            target_arch=target_arch,
            draft_arch=arch,
            check=check,
            prompts=prompts,
            settings=settings,
            launcher=launcher,
            log=log,
        )
        candidates.append(candidate)
        notes.extend(more)
    if len(prompts) < settings.num_prompts:
        notes.append(f"only {len(prompts)} prompts available; each bucket used {len(prompts)}")
    return Comparison(
        target=target_arch,
        num_speculative_tokens=settings.num_speculative_tokens,
        context_lengths=tuple(settings.context_lengths),
        max_tokens=settings.max_tokens,
        prompts=min(len(prompts), settings.num_prompts),
        candidates=tuple(candidates),
        notes=tuple(notes),
        concurrency_levels=tuple(settings.concurrency_levels),
        baseline=baseline,
        baseline_error=baseline_error,
        speed_prompts=min(len(prompts), speed_prompt_count(settings)),
    )

"""Run one validation end to end: resolve both models, load them, run the checks, build the report.

This is the only place that sequences I/O (fetching) and the pure checks, and the only place that turns a
``CheckError`` into the "could not check" report. Fetching runs under one overall deadline, so a stalled Hub
cannot hold the validation Job past its budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from specdeploy.validate import report as reports
from specdeploy.validate.checks import Options, Pair, run_checks
from specdeploy.validate.errors import CheckError, redact
from specdeploy.validate.methods import METHODS, NEEDS_DRAFT
from specdeploy.validate.modelfiles import ModelFiles
from specdeploy.validate.models import Model, load_model
from specdeploy.validate.sources import resolve

T = TypeVar("T")

EXIT_COMPATIBLE = 0
EXIT_INCOMPATIBLE = 1
EXIT_CANNOT_CHECK = 2


@dataclass(frozen=True)
class Request:
    """A validation request, as the CLI parses it."""

    target: str
    draft: str | None
    options: Options
    revision: str | None = None
    draft_revision: str | None = None
    cache_dir: str | None = None
    timeout_s: float = 300.0


@dataclass(frozen=True)
class Outcome:
    """The report object and the exit code that goes with it."""

    report: dict[str, Any]
    exit_code: int


def validate(request: Request) -> Outcome:
    """Validate the pair; never raises for bad models or fetch failures (those become exit code 2)."""
    method = request.options.method
    target_model: Model | None = None
    draft_model: Model | None = None
    try:
        if method not in METHODS:
            raise CheckError("usage", f"--method {method!r} is not one of {', '.join(METHODS)}")
        if method in NEEDS_DRAFT and not request.draft:
            raise CheckError("usage", f"--method {method} needs --draft (the draft model or head)")
        target_model, draft_model = run_with_deadline(lambda: _load_pair(request), request.timeout_s)
        checks = run_checks(Pair(target=target_model, draft=draft_model, options=request.options))
    except Exception as exc:  # every failure becomes exit 2 with a report; exit 1 means "incompatible" only
        error = _error(exc)
        body = reports.build(
            method=method,
            target=target_model.summary() if target_model else {"model": request.target},
            draft=draft_model.summary() if draft_model else ({"model": request.draft} if request.draft else None),
            checks=[],
            error=error,
        )
        return Outcome(body, EXIT_CANNOT_CHECK)
    body = reports.build(
        method=method,
        target=target_model.summary(),
        draft=draft_model.summary() if draft_model else None,
        checks=checks,
    )
    if request.draft and method == "ngram":
        body["notes"] = [f"--draft {request.draft} is not used by {method}"]
    return Outcome(body, EXIT_COMPATIBLE if body["compatible"] else EXIT_INCOMPATIBLE)


def _error(exc: Exception) -> dict[str, Any]:
    """The report's ``error``; its message may quote the Hub or the HTTP client, so any token in it is redacted."""
    if isinstance(exc, CheckError):
        error = {"kind": exc.kind, "message": redact(str(exc))}
        if exc.source:
            error["source"] = exc.source
        return error
    return {"kind": "internal", "message": redact(f"validator bug: {type(exc).__name__}: {exc}")}


def _load_pair(request: Request) -> tuple[Model, Model | None]:
    deadline = time.monotonic() + request.timeout_s
    target = load_model(_fetch(request.target, request.revision, request, deadline, "target"), "target")
    method = request.options.method
    draft_spec = request.draft
    if method == "ngram" or (
        method == "mtp" and draft_spec == request.target and request.draft_revision in (None, request.revision)
    ):
        return target, None
    if not draft_spec:
        return target, None
    draft = load_model(_fetch(draft_spec, request.draft_revision, request, deadline, "draft"), "draft")
    return target, draft


def _fetch(spec: str, revision: str | None, request: Request, deadline: float, role: str) -> ModelFiles:
    try:
        return resolve(
            spec, revision=revision, cache_dir=request.cache_dir, timeout_s=request.timeout_s, deadline=deadline
        )
    except CheckError as exc:
        raise exc.with_source(role) from None


def run_with_deadline(work: Callable[[], T], timeout_s: float) -> T:
    """Run ``work`` in a daemon thread; raise a ``timeout`` CheckError if it has not finished in time."""
    result: list[T] = []
    failure: list[BaseException] = []

    def runner() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=runner, name="specdeploy-validate", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise CheckError(
            "timeout",
            f"fetching and reading the model metadata took longer than {timeout_s:g} s; retry or raise --timeout",
        )
    if failure:
        raise failure[0]
    return result[0]

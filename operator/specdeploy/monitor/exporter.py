"""The operator's own Prometheus metrics, declared once, in a registry of their own.

Why one module: the names are a contract with the shipped Grafana dashboard and with users' alerts, so they are
spelled in exactly one place. The handlers import the objects below and call ``.labels(...).set/inc/observe``
(or the helpers); ``forget`` drops an object's series when it is deleted so that 1,000 short-lived objects do not
leave 1,000 stale gauges; ``start_exporter`` serves ``/metrics`` (process and Python collectors included, so
the operator's RSS and CPU are visible too).
"""

from __future__ import annotations

import contextlib
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from specdeploy.monitor.acceptance import Acceptance
from specdeploy.monitor.scrape import REASONS
from specdeploy.monitor.speed import Speed

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_OBJECT = ("namespace", "name")
# Scrape error reasons: a pod's page (monitor.scrape) or, with metrics.source Prometheus, the Prometheus query.
ERROR_REASONS = (*REASONS, "prometheus")

ACCEPTANCE_RATE = Gauge(
    "specdeploy_acceptance_rate",
    "Draft acceptance rate (accepted / draft tokens) of the serving revision over the last closed window.",
    _OBJECT,
    registry=REGISTRY,
)
MEAN_ACCEPTED_LENGTH = Gauge(
    "specdeploy_mean_accepted_length",
    "Mean tokens per target step (1 + accepted / drafts) over the last closed window.",
    _OBJECT,
    registry=REGISTRY,
)
RECOMMENDED_NUM_SPECULATIVE_TOKENS = Gauge(
    "specdeploy_recommended_num_speculative_tokens",
    "Speculation depth with the highest modelled speedup from the live per-position acceptance rates.",
    _OBJECT,
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "specdeploy_rollbacks",
    "Automatic rollbacks performed because the acceptance rate stayed below the threshold.",
    _OBJECT,
    registry=REGISTRY,
)
SCRAPE_ERRORS = Counter(
    "specdeploy_scrape_errors",
    "Failed scrapes of serving pods' /metrics, by reason.",
    (*_OBJECT, "reason"),
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "specdeploy_reconcile_duration_seconds",
    "Time spent in one handler call.",
    ("handler",),
    registry=REGISTRY,
)
SCRAPE_DURATION = Histogram(
    "specdeploy_scrape_duration_seconds",
    "Time to fetch one pod's /metrics page.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

_REVISION = (*_OBJECT, "revision")
TIME_PER_OUTPUT_TOKEN = Gauge(
    "specdeploy_time_per_output_token_seconds",
    "Mean time per output token of a revision's pods over its last window with output tokens (vLLM's "
    "request_time_per_output_token histogram, or its inter-token latency when no request finished).",
    _REVISION,
    registry=REGISTRY,
)
GENERATION_TOKENS_PER_SECOND = Gauge(
    "specdeploy_generation_tokens_per_second",
    "Output tokens per second of a revision's pods together over its last window with output tokens.",
    _REVISION,
    registry=REGISTRY,
)
RUNNING_REQUESTS = Gauge(
    "specdeploy_running_requests",
    "Mean requests running per pod of a revision over its last window with output tokens.",
    _REVISION,
    registry=REGISTRY,
)
_PER_REVISION: tuple[Gauge, ...] = (TIME_PER_OUTPUT_TOKEN, GENERATION_TOKENS_PER_SECOND, RUNNING_REQUESTS)
# The revisions each object has per-revision series for (the serving one and a canary: a few per object).
_revisions: dict[tuple[str, str], set[str]] = {}

_PER_OBJECT: tuple[Any, ...] = (ACCEPTANCE_RATE, MEAN_ACCEPTED_LENGTH, RECOMMENDED_NUM_SPECULATIVE_TOKENS, ROLLBACKS)


def record_acceptance(namespace: str, name: str, acceptance: Acceptance, recommended_k: int | None) -> None:
    """Publish a window's numbers; a number that is unknown removes its series instead of exporting a stale one."""
    _set_or_drop(ACCEPTANCE_RATE, namespace, name, acceptance.rate)
    _set_or_drop(MEAN_ACCEPTED_LENGTH, namespace, name, acceptance.mean_accepted_length)
    _set_or_drop(RECOMMENDED_NUM_SPECULATIVE_TOKENS, namespace, name, recommended_k)


def record_speed(namespace: str, name: str, speeds: dict[str, Speed | None]) -> None:
    """Publish each revision's speed (serving, canary); drop the series of the object's other revisions, and a
    number that is unknown, so no stale revision lingers on the dashboard."""
    key = (namespace, name)
    for gone in _revisions.get(key, set()) - speeds.keys():
        for gauge in _PER_REVISION:
            _remove(gauge, namespace, name, gone)
    for revision, speed in speeds.items():
        values = (
            (None, None, None)
            if speed is None
            else (speed.time_per_output_token, speed.tokens_per_second, speed.running_requests)
        )
        for gauge, value in zip(_PER_REVISION, values, strict=True):
            if value is None:
                _remove(gauge, namespace, name, revision)
            else:
                gauge.labels(namespace, name, revision).set(value)
    if speeds:
        _revisions[key] = set(speeds)
    else:
        _revisions.pop(key, None)


def count_scrape_error(namespace: str, name: str, reason: str) -> None:
    if reason not in ERROR_REASONS:
        raise ValueError(f"unknown scrape error reason {reason!r}; expected one of {', '.join(ERROR_REASONS)}")
    SCRAPE_ERRORS.labels(namespace, name, reason).inc()


def count_rollback(namespace: str, name: str) -> None:
    ROLLBACKS.labels(namespace, name).inc()


def forget(namespace: str, name: str) -> None:
    """Drop every series of one SpeculativeDeployment (call on deletion)."""
    for metric in _PER_OBJECT:
        _remove(metric, namespace, name)
    for revision in _revisions.pop((namespace, name), set()):
        for gauge in _PER_REVISION:
            _remove(gauge, namespace, name, revision)
    for reason in ERROR_REASONS:
        _remove(SCRAPE_ERRORS, namespace, name, reason)


def start_exporter(port: int, addr: str = "0.0.0.0") -> tuple[WSGIServer, Thread]:  # noqa: S104 - inside the pod
    """Serve the registry on ``http://addr:port/metrics`` from a daemon thread; returns the server and thread."""
    return start_http_server(port, addr=addr, registry=REGISTRY)


def _set_or_drop(gauge: Gauge, namespace: str, name: str, value: float | None) -> None:
    if value is None:
        _remove(gauge, namespace, name)
    else:
        gauge.labels(namespace, name).set(value)


def _remove(metric: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # older prometheus_client versions raise on an absent label set
        metric.remove(*labels)

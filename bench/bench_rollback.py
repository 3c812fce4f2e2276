"""Benchmark: how long after the K-th bad acceptance window closes is the Deployment patched (the rollback applied)?

Why: the design budget is "applied within one scrape interval after the K-th bad window closes". A window can only
be judged at the first scrape after it closes, so the expected delay is uniform in [0, interval) plus the
operator's own reaction (decide, record the verdict, patch). This measures both.

Setup: a local control plane, the operator (``specdeploy run -n NS``) and scripted vLLM metrics servers on the
pods' loopback IPs (``tests.harness.fakevllm.Fleet``: real HTTP, vLLM's metric names) whose draft accepts 20% of
tokens, so each SpeculativeDeployment trips after K windows and, having no stable revision, gets speculation
disabled. Several objects run at once, created at staggered times so their windows close at different phases
of their scrape cycles.

Timing, all on this machine's clock:
  window close  windows start at the operator's first scrape of the serving revision and tile time by
                windowSeconds; the first scrape is the fake server's first request (the pod is ready before the
                operator's first scrape, checked against status.acceptance.windowEnd, which has 1 s resolution);
  patched       the API server's receipt time of the operator's PATCH of the Deployment (audit log, microseconds);
  reaction      patched minus the operator's first scrape after the window closed.

Run: .venv/bin/python -m bench.bench_rollback [--repeat 5] [--scrape-seconds 2] [--window-seconds 10] [--k 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.apicount import AuditLog, AuditRecord
from bench.kubeapi import Api, Operator, audit_log_path, bench_cluster
from bench.stats import summarize
from tests.harness.fakevllm import Behaviour, FakeVllm, Fleet

NAMESPACE = "bench-rollback"
BAD_DRAFT = "org/bad-draft"
BAD_RATE = 0.2


def sd_manifest(name: str, scrape_seconds: int, window_seconds: int, k: int) -> dict[str, Any]:
    return {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "target": {"model": "org/target-8b", "tensorParallelSize": 1},
            "draft": {"model": BAD_DRAFT},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
            "rollback": {
                "minAcceptanceRate": 0.5,
                "windowSeconds": window_seconds,
                "consecutiveWindows": k,
                "minDraftTokens": 100,
                "warmupSeconds": 0,
            },
            "metrics": {"scrapeIntervalSeconds": scrape_seconds, "timeoutSeconds": 2},
        },
    }


@contextlib.contextmanager
def scrape_log() -> Iterator[dict[str, list[float]]]:
    """Record ``time.time()`` of every /metrics request each scripted vLLM server answers, by pod IP."""
    seen: dict[str, list[float]] = {}
    lock = threading.Lock()
    original = FakeVllm.render

    def render(self: FakeVllm) -> bytes:
        with lock:
            seen.setdefault(self.host, []).append(time.time())
        return original(self)

    FakeVllm.render = render  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        FakeVllm.render = original  # type: ignore[method-assign]


def behaviour(draft: str | None) -> Behaviour:
    return Behaviour(rate=None) if draft is None else Behaviour(rate=BAD_RATE if draft == BAD_DRAFT else 0.8)


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Trip:
    name: str
    window_close: float
    patched: float
    first_scrape_after_close: float | None
    phase_checked: bool  # the inferred window close agrees with status.acceptance.windowEnd

    @property
    def latency(self) -> float:
        return self.patched - self.window_close

    @property
    def reaction(self) -> float | None:
        return None if self.first_scrape_after_close is None else self.patched - self.first_scrape_after_close


def _measure(
    name: str, status: dict[str, Any], pod_ip: str, scrapes: list[float], records: list[AuditRecord], window: int
) -> Trip | None:
    patches = sorted(
        _ts(r.received)
        for r in records
        if r.from_operator and r.verb == "PATCH" and r.resource == "deployments" and r.name == name
    )
    acceptance = status.get("acceptance") or {}
    if not patches or not scrapes or "windowEnd" not in acceptance:
        return None
    first = scrapes[0]
    reported_end = _ts(acceptance["windowEnd"])  # truncated to the second
    k = round((reported_end + 0.5 - first) / window)
    close = first + k * window
    after = [t for t in scrapes if t >= close]
    return Trip(
        name=name,
        window_close=close,
        patched=patches[0],
        first_scrape_after_close=after[0] if after else None,
        phase_checked=int(close) == int(reported_end) or abs(close - reported_end) < 1.0,
    )


def run(repeat: int = 5, scrape_seconds: int = 2, window_seconds: int = 10, k: int = 2, keep: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    with bench_cluster(2, keep=keep) as cluster, scrape_log() as scrapes:
        api = Api(cluster)
        audit = AuditLog(audit_log_path(cluster.root))
        api.create_namespace(NAMESPACE)
        fleet = Fleet(cluster.kubeconfig, behaviour, interval=0.1).start()
        fleet.api.api_client.user_agent = "specdeploy-bench-fleet"
        operator = Operator(cluster, [NAMESPACE], cluster.root / "logs" / "operator.log").start()
        mark = audit.mark()
        names = [f"rb-{i}" for i in range(repeat)]
        try:
            for i, name in enumerate(names):
                api.create(sd_manifest(name, scrape_seconds, window_seconds, k))
                if i + 1 < repeat:
                    time.sleep(scrape_seconds / repeat + 0.37)  # spread the objects over scrape-cycle phases
            deadline = time.monotonic() + window_seconds * (k + 2) + scrape_seconds * 4 + 60
            pod_ips: dict[str, str] = {}
            statuses: dict[str, dict[str, Any]] = {}
            while time.monotonic() < deadline:
                for pod in api.list("Pod", NAMESPACE)["items"]:
                    labels = pod["metadata"].get("labels", {})
                    args = pod["spec"]["containers"][0].get("args", [])
                    if "--speculative-config" in args and pod.get("status", {}).get("podIP"):
                        pod_ips.setdefault(labels.get("specdeploy.io/name", ""), pod["status"]["podIP"])
                for item in api.list("SpeculativeDeployment", NAMESPACE)["items"]:
                    statuses[item["metadata"]["name"]] = item.get("status") or {}
                done = [n for n in names if (statuses.get(n) or {}).get("phase") == "RolledBack"]
                if len(done) == len(names):
                    break
                time.sleep(0.5)
            time.sleep(2)
            records = audit.since(mark)
        finally:
            operator.stop()
            fleet.stop()
        trips = [
            _measure(n, statuses.get(n, {}), pod_ips.get(n, ""), scrapes.get(pod_ips.get(n, ""), []), records, window_seconds)
            for n in names
        ]
    measured = [t for t in trips if t is not None]
    missing = [n for n, t in zip(names, trips, strict=True) if t is None]
    print(
        f"rollback: {len(measured)} of {repeat} objects tripped (K={k} windows of {window_seconds} s, "
        f"scrape interval {scrape_seconds} s, draft acceptance {BAD_RATE})",
        flush=True,
    )
    for t in measured:
        reaction = f"{t.reaction * 1e3:7.1f} ms" if t.reaction is not None else "      -"
        print(
            f"  {t.name}: window closed -> Deployment patched {t.latency * 1e3:7.1f} ms; operator reaction after "
            f"its next scrape {reaction}{'' if t.phase_checked else '  (window phase NOT confirmed)'}",
            flush=True,
        )
    if missing:
        print(f"  did not roll back in time: {', '.join(missing)}", flush=True)
    out: dict[str, Any] = {
        "repeat": repeat,
        "scrape_interval_s": scrape_seconds,
        "window_s": window_seconds,
        "k": k,
        "missing": missing,
        "trips": [
            {
                "name": t.name,
                "latency_s": t.latency,
                "reaction_s": t.reaction,
                "phase_checked": t.phase_checked,
            }
            for t in measured
        ],
        "wall_s": time.monotonic() - started,
    }
    if measured:
        lat = summarize([t.latency for t in measured])
        reactions = [t.reaction for t in measured if t.reaction is not None]
        out["latency_s"] = lat.as_dict()
        out["reaction_s"] = summarize(reactions).as_dict() if reactions else None
        out["latency_over_interval"] = lat.median / scrape_seconds
        print(
            f"  median {lat.median * 1e3:.0f} ms, max {lat.max * 1e3:.0f} ms = {lat.median / scrape_seconds:.2f} / "
            f"{lat.max / scrape_seconds:.2f} scrape intervals (goal <= 1); operator reaction median "
            f"{statistics.median(reactions) * 1e3 if reactions else float('nan'):.0f} ms",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="objects that roll back (default 5)")
    parser.add_argument("--scrape-seconds", type=int, default=2)
    parser.add_argument("--window-seconds", type=int, default=10, help="windowSeconds (the API's minimum is 10)")
    parser.add_argument("--k", type=int, default=2, help="consecutiveWindows (default 2)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = run(args.repeat, args.scrape_seconds, args.window_seconds, args.k, keep=args.keep)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

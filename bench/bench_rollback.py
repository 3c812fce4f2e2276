"""Benchmark: how long after the K-th bad acceptance window closes is the Deployment patched (the rollback applied)?

Why: the design budget is "applied within one scrape interval after the K-th bad window closes". A window is only
judged at the first scrape after it closes, so the delay is (window end -> next scrape), which is below one
interval by construction, plus the operator's own reaction (decide, record the verdict, patch the Deployment).
This measures both.

Setup: a local control plane, the operator (``specdeploy run -n NS``) and scripted vLLM metrics servers on the
pods' loopback IPs (``tests.harness.fakevllm.Fleet``: real HTTP, vLLM's metric names) whose draft accepts 20% of
tokens, so each SpeculativeDeployment trips after K windows and, having no stable revision, gets speculation
disabled. The objects' scrape intervals cycle through 2, 3 and 4 s with 10 s windows, so windows close at
different phases of the scrape cycle (a multiple, as with the defaults 15 s / 60 s, and not).

Timing, all on this machine's clock:
  window close  windows tile time from the operator's first scrape of the serving revision; the pod's scripted
                server notes every request, and status.acceptance.windowEnd (1 s resolution) picks which scrape
                slot started the windows and which window tripped;
  patched       the API server's receipt time of the operator's DELETE of the bad revision's Deployment, sent with
                the fallback's create (strategy Replace; audit log, microseconds);
  reaction      patched minus the operator's first scrape after the window closed.

Run: .venv/bin/python -m bench.bench_rollback [--repeat 6] [--intervals 2,3,4] [--window-seconds 10] [--k 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import re
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.fakevllm import Behaviour, FakeVllm, Fleet

from bench.apicount import AuditLog, AuditRecord
from bench.kubeapi import Api, Operator, audit_log_path, bench_cluster
from bench.stats import summarize

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
            # Replace: the rollback's writes (the fallback's Deployment created, the bad one's deleted) go out in
            # one batch; the DELETE names its object in the audit log. Under Canary the fallback's Deployment is
            # created in the same batch too; the bad one goes only once the fallback's pods are ready.
            "rollout": {"strategy": "Replace"},
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
    interval: int  # the object's scrapeIntervalSeconds
    window_close: float
    patched: float
    first_scrape_after_close: float | None

    @property
    def latency(self) -> float:
        return self.patched - self.window_close

    @property
    def intervals(self) -> float:
        return self.latency / self.interval

    @property
    def reaction(self) -> float | None:
        return None if self.first_scrape_after_close is None else self.patched - self.first_scrape_after_close


def window_close(scrapes: list[float], reported_end: float, window: int) -> float | None:
    """When the judged window closed, from the pod's scrape times and status.acceptance.windowEnd (1 s resolution).

    Windows tile time from the operator's first scrape of the serving revision. If the pod was not ready yet at
    that moment, the first request the pod saw came one or more intervals later; so try the first request and the
    scrape slots before it, and keep the one whose window end agrees with the reported (truncated) windowEnd.
    """
    if len(scrapes) < 2:
        return None
    spacing = statistics.median(b - a for a, b in itertools.pairwise(scrapes))
    for slots_before in range(4):
        start = scrapes[0] - slots_before * spacing
        k = round((reported_end + 0.5 - start) / window)
        close = start + k * window
        if k >= 1 and reported_end <= close < reported_end + 1:
            return close
    return None


def _measure(
    name: str, *, interval: int, status: dict[str, Any], scrapes: list[float], records: list[AuditRecord], window: int
) -> Trip | None:
    own = re.compile(rf"{re.escape(name)}-[0-9a-f]{{10}}")  # the bad revision's Deployment (one per revision)
    patches = sorted(
        _ts(r.received)
        for r in records
        if r.from_operator and r.verb == "DELETE" and r.resource == "deployments" and own.fullmatch(r.name)
    )
    acceptance = status.get("acceptance") or {}
    if not patches or "windowEnd" not in acceptance:
        return None
    close = window_close(scrapes, _ts(acceptance["windowEnd"]), window)
    if close is None:
        return None
    after = [t for t in scrapes if t >= close]
    return Trip(
        name=name,
        interval=interval,
        window_close=close,
        patched=patches[0],
        first_scrape_after_close=after[0] if after else None,
    )


def run(
    repeat: int = 6, intervals: Sequence[int] = (2, 3, 4), window_seconds: int = 10, k: int = 2, keep: bool = False
) -> dict[str, Any]:
    """``repeat`` objects, their scrape intervals cycling through ``intervals`` (so that windows close at different
    phases of the scrape cycle: 10 s is a multiple of 2 s but not of 3 s or 4 s)."""
    started = time.monotonic()
    names = [f"rb-{i}" for i in range(repeat)]
    interval_of = {n: intervals[i % len(intervals)] for i, n in enumerate(names)}
    with bench_cluster(2, keep=keep) as cluster, scrape_log() as scrapes:
        api = Api(cluster)
        audit = AuditLog(audit_log_path(cluster.root))
        api.create_namespace(NAMESPACE)
        fleet = Fleet(cluster.kubeconfig, behaviour, interval=0.1).start()
        fleet.api.api_client.user_agent = "specdeploy-bench-fleet"
        operator = Operator(cluster, [NAMESPACE], cluster.root / "logs" / "operator.log").start()
        mark = audit.mark()
        pod_ips: dict[str, str] = {}
        statuses: dict[str, dict[str, Any]] = {}
        try:
            for name in names:
                api.create(sd_manifest(name, interval_of[name], window_seconds, k))
                time.sleep(0.37)
            deadline = time.monotonic() + window_seconds * (k + 2) + max(intervals) * 4 + 60
            while time.monotonic() < deadline:
                for pod in api.list("Pod", NAMESPACE)["items"]:
                    labels = pod["metadata"].get("labels", {})
                    args = pod["spec"]["containers"][0].get("args", [])
                    if "--speculative-config" in args and pod.get("status", {}).get("podIP"):
                        pod_ips.setdefault(labels.get("specdeploy.io/name", ""), pod["status"]["podIP"])
                for item in api.list("SpeculativeDeployment", NAMESPACE)["items"]:
                    statuses[item["metadata"]["name"]] = item.get("status") or {}
                if all((statuses.get(n) or {}).get("phase") == "RolledBack" for n in names):
                    break
                time.sleep(0.5)
            time.sleep(2)
            records = audit.since(mark)
        finally:
            operator.stop()
            fleet.stop()
        trips = {
            n: _measure(
                n,
                interval=interval_of[n],
                status=statuses.get(n, {}),
                scrapes=scrapes.get(pod_ips.get(n, ""), []),
                records=records,
                window=window_seconds,
            )
            for n in names
        }
    measured = [t for t in trips.values() if t is not None]
    missing = [n for n, t in trips.items() if t is None]
    print(
        f"rollback: {len(measured)} of {repeat} objects measured (K={k} windows of {window_seconds} s, "
        f"scrape intervals {', '.join(map(str, intervals))} s, draft acceptance {BAD_RATE})",
        flush=True,
    )
    for t in measured:
        reaction = f"{t.reaction * 1e3:6.0f} ms" if t.reaction is not None else "     -"
        print(
            f"  {t.name} (scrape every {t.interval} s): K-th bad window closed -> Deployment patched "
            f"{t.latency * 1e3:6.0f} ms = {t.intervals:.2f} intervals; reaction after the judging scrape {reaction}",
            flush=True,
        )
    for n in missing:
        phase = (statuses.get(n) or {}).get("phase")
        print(f"  {n}: not measured (phase {phase}; rolled back and timed only if phase is RolledBack)", flush=True)
    out: dict[str, Any] = {
        "repeat": repeat,
        "scrape_intervals_s": list(intervals),
        "window_s": window_seconds,
        "k": k,
        "missing": missing,
        "trips": [
            {"name": t.name, "interval_s": t.interval, "latency_s": t.latency, "reaction_s": t.reaction}
            for t in measured
        ],
        "wall_s": time.monotonic() - started,
    }
    if measured:
        lat = summarize([t.latency for t in measured])
        in_intervals = summarize([t.intervals for t in measured])
        reactions = [t.reaction for t in measured if t.reaction is not None]
        out["latency_s"] = lat.as_dict()
        out["latency_intervals"] = in_intervals.as_dict()
        out["reaction_s"] = summarize(reactions).as_dict() if reactions else None
        print(
            f"  median {lat.median * 1e3:.0f} ms ({in_intervals.median:.2f} intervals), worst {in_intervals.max:.2f} "
            f"intervals (goal <= 1); operator reaction median "
            f"{statistics.median(reactions) * 1e3 if reactions else float('nan'):.0f} ms",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=6, help="objects that roll back (default 6)")
    parser.add_argument("--intervals", default="2,3,4", help="scrapeIntervalSeconds to cycle through (default 2,3,4)")
    parser.add_argument("--window-seconds", type=int, default=10, help="windowSeconds (the API's minimum is 10)")
    parser.add_argument("--k", type=int, default=2, help="consecutiveWindows (default 2)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    intervals = [int(x) for x in args.intervals.split(",")]
    out = run(args.repeat, intervals, args.window_seconds, args.k, keep=args.keep)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

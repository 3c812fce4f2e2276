"""Benchmark: create -> Ready through the operator vs the same Deployments+Services created directly; API requests
per object; API writes in a quiet minute; the operator's memory at 1,000 objects.

Why: the design budgets say the operator adds at most 20% to create -> Ready (at 1 and 500 objects), writes
nothing when nothing changed, and stays under 200 MB at 1,000 objects. The baseline runs in the same cluster in
the same run: a script that POSTs the very Deployment and Service the operator would render
(``specdeploy.render``, validation policy Skip), so the ratio isolates what the operator adds.

What is timed (wall clock, by a watch in this process that notes when it *received* the event):
  direct    from the Deployment's POST until the Deployment reports readyReplicas == replicas;
  operator  from the SpeculativeDeployment's POST until its status.phase is Ready (the operator has seen the
            Deployment ready and said so).
Both paths create from the same thread pool; N=1 is repeated (interleaved) for a median.

Run: .venv/bin/python -m bench.bench_create [--sizes 1,100,500] [--quiet-seconds 60] [--rss-objects 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.localcluster import LocalCluster

from bench.apicount import WRITE_VERBS, AuditLog, AuditRecord, Split, delta, operator_counts, request_totals, split
from bench.kubeapi import (
    USER_AGENT,
    Api,
    Operator,
    ReadyWatch,
    audit_log_path,
    bench_cluster,
    deployment_ready,
    sd_ready,
)
from bench.stats import summarize

DIRECT_NS, OPERATOR_NS = "bench-direct", "bench-operator"
# Time-driven traffic that has nothing to do with the objects: kwok's node heartbeats and lease renewals, the
# API server's own identity lease, and non-resource requests (/metrics scrapes, discovery).
BACKGROUND = ("leases", "nodes", "")
GOAL_RATIO = 1.2
GOAL_RSS_BYTES = 200 * 1024 * 1024
# The spec's monitor settings. Scrape interval and consecutiveWindows are the API defaults; warm-up (120 s) and
# window (60 s) are shortened so that the monitor's time-driven first reports (status.acceptance when the first
# verdict exists, at warm-up's end, and as each of the first K windows after it closes) are over before the quiet
# minute, and so that the quiet minute itself sees three windows close.
SCRAPE_SECONDS, WARMUP_SECONDS, WINDOW_SECONDS, CONSECUTIVE_WINDOWS = 15, 30, 20, 3
TRANSIENT_SECONDS = WARMUP_SECONDS + (CONSECUTIVE_WINDOWS + 1) * WINDOW_SECONDS + 2 * SCRAPE_SECONDS + 10


def sd_manifest(name: str, namespace: str, replicas: int = 1) -> dict[str, Any]:
    """A SpeculativeDeployment like the README's, TP 1, validation Skip (the baseline has no Job either)."""
    return {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "target": {"model": "meta-llama/Llama-3.1-8B-Instruct", "tensorParallelSize": 1, "maxModelLen": 8192},
            "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "replicas": replicas,
            "validation": {"policy": "Skip"},
            "rollback": {
                "windowSeconds": WINDOW_SECONDS,
                "warmupSeconds": WARMUP_SECONDS,
                "consecutiveWindows": CONSECUTIVE_WINDOWS,
            },
            "metrics": {"scrapeIntervalSeconds": SCRAPE_SECONDS},
        },
    }


def direct_objects(name: str, namespace: str) -> list[dict[str, Any]]:
    """The Deployment and Service the operator renders for ``sd_manifest(name)``, without an owner."""
    from specdeploy.api import SpeculativeDeploymentSpec
    from specdeploy.api.revision import revision_id
    from specdeploy.render import render_deployment, render_service

    spec = SpeculativeDeploymentSpec.model_validate(sd_manifest(name, namespace)["spec"])
    revision = revision_id(spec)
    return [
        render_deployment(name, namespace, spec, revision, owner=None),
        render_service(name, namespace, spec, revision, owner=None),
    ]


@dataclass
class PathRun:
    """One path (direct or operator) creating ``n`` objects."""

    path: str
    n: int
    latencies: list[float]
    total: float
    api_all: Split  # every client but the benchmark, background traffic left out
    api_operator: Split | None  # the operator's own requests (audit log), operator path only
    timed_out: list[str] = field(default_factory=list)
    last_ready: float = 0.0  # time.time() when the last object became Ready
    operator_cpu_s: float | None = None  # the operator process' CPU time over the run, operator path only

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "n": self.n,
            "latency_s": summarize(self.latencies).as_dict() if self.latencies else None,
            "total_s": self.total,
            "api_per_object_all_clients": self.api_all.per(self.n),
            "api_per_object_operator": self.api_operator.per(self.n) if self.api_operator else None,
            "not_ready": self.timed_out,
            "operator_cpu_ms_per_object": self.operator_cpu_s / self.n * 1e3
            if self.operator_cpu_s is not None
            else None,
        }


def create_all(api: Api, batches: Mapping[str, Sequence[Mapping[str, Any]]], concurrency: int) -> dict[str, float]:
    """POST each name's objects in order, ``concurrency`` names at a time; return when each name's first POST left."""

    def one(name: str) -> tuple[str, float]:
        started = time.time()
        for obj in batches[name]:
            api.create(obj)
        return name, started

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return dict(pool.map(one, batches))


def run_path(
    cluster: LocalCluster,
    api: Api,
    audit: AuditLog,
    *,
    path: str,
    kind: str,
    namespace: str,
    batches: Mapping[str, Sequence[Mapping[str, Any]]],
    ready: Callable[[Mapping[str, Any]], bool],
    concurrency: int,
    timeout: float,
    settle: float = 2.0,
    operator: Operator | None = None,
) -> tuple[PathRun, list[AuditRecord]]:
    watch = ReadyWatch(Api(cluster, pool_size=2), kind, namespace, ready).start()
    before, mark = request_totals(cluster.get("/metrics")), audit.mark()
    cpu_before = operator.cpu_seconds() if operator is not None else 0.0
    created = create_all(api, batches, concurrency)
    watch.wait(created, timeout)
    cpu = operator.cpu_seconds() - cpu_before if operator is not None else None
    time.sleep(settle)  # let trailing requests (Events, last status writes) land in the counts
    after = request_totals(cluster.get("/metrics"))
    watch.stop()
    records = audit.since(mark)
    mine = Counter((r.verb, r.resource) for r in records if r.agent.startswith(USER_AGENT))
    others = delta(delta(after, before), mine)
    latencies = [watch.ready_at[n] - created[n] for n in created if n in watch.ready_at]
    missing = sorted(n for n in created if n not in watch.ready_at)
    last_ready = max((watch.ready_at[n] for n in created if n in watch.ready_at), default=0.0)
    total = last_ready - min(created.values()) if latencies else 0.0
    run = PathRun(
        path=path,
        n=len(created),
        latencies=latencies,
        total=total,
        api_all=split(others, exclude_resources=BACKGROUND),
        api_operator=split(operator_counts(records)) if path == "operator" else None,
        timed_out=missing,
        last_ready=last_ready,
        operator_cpu_s=cpu,
    )
    return run, records


def _print_run(run: PathRun) -> None:
    s = summarize(run.latencies) if run.latencies else None
    lat = s.ms() if s else "none ready"
    api = run.api_all.per(run.n)
    line = (
        f"  {run.path:<8} N={run.n:<4} create->Ready {lat}; total {run.total:7.2f} s; "
        f"API/object (all clients) {api['reads']:.1f} reads {api['writes']:.1f} writes"
    )
    if run.api_operator is not None:
        op = run.api_operator.per(run.n)
        line += f"; operator's own {op['reads']:.1f} reads {op['writes']:.1f} writes"
    if run.operator_cpu_s is not None:
        line += f"; operator CPU {run.operator_cpu_s / run.n * 1e3:.1f} ms/object"
    print(line, flush=True)
    if run.timed_out:
        print(f"    NOT READY in time: {len(run.timed_out)} ({', '.join(run.timed_out[:5])} ...)", flush=True)


def timeline(records: Sequence[AuditRecord], namespace: str, name: str) -> list[str]:
    """The requests about one object and its children (by name prefix), in order, relative to the first; Events and
    the endpoints controller's retries (it rejects loopback pod IPs, on both paths alike) left out."""
    from datetime import datetime

    rows = [
        r
        for r in records
        if r.namespace == namespace
        and r.name.startswith(name)
        and r.resource not in ("endpoints", "endpointslices", "events")  # the endpoints controller's retries
    ]
    if not rows:
        return []

    def ts(r: AuditRecord) -> float:
        return datetime.fromisoformat(r.received.replace("Z", "+00:00")).timestamp()

    rows.sort(key=ts)
    t0 = ts(rows[0])
    return [
        f"{(ts(r) - t0) * 1e3:8.1f} ms  {r.agent.split(' ')[0][:28]:<28} {r.verb:<6} {r.resource} {r.name}"
        for r in rows
    ]


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def bench_sizes(
    cluster: LocalCluster,
    api: Api,
    audit: AuditLog,
    *,
    sizes: Sequence[int],
    concurrency: int,
    reps_of_one: int,
    operator: Operator | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Each size on both paths; returns the results and when the last operator-path object became Ready."""
    results: list[dict[str, Any]] = []
    last_ready = 0.0
    made = 0
    for n in sizes:
        reps = reps_of_one if n == 1 else 1
        direct_runs: list[PathRun] = []
        op_runs: list[PathRun] = []
        last_records: list[AuditRecord] = []
        for _ in range(reps):
            names = [f"sd-{made + i:04d}" for i in range(n)]
            made += n
            d, _ = run_path(
                cluster, api, audit, path="direct", kind="Deployment", namespace=DIRECT_NS,
                batches={nm: direct_objects(nm, DIRECT_NS) for nm in names}, ready=deployment_ready,
                concurrency=concurrency, timeout=120 + n,
            )  # fmt: skip
            o, last_records = run_path(
                cluster, api, audit, path="operator", kind="SpeculativeDeployment", namespace=OPERATOR_NS,
                batches={nm: [sd_manifest(nm, OPERATOR_NS)] for nm in names}, ready=sd_ready,
                concurrency=concurrency, timeout=120 + n, operator=operator,
            )  # fmt: skip
            direct_runs.append(d)
            op_runs.append(o)
            last_ready = max(last_ready, o.last_ready)
        print(f"N={n}" + (f" ({reps} interleaved repetitions)" if reps > 1 else ""), flush=True)
        for d, o in zip(direct_runs, op_runs, strict=True):
            _print_run(d)
            _print_run(o)
        d_lat = [x for r in direct_runs for x in r.latencies]
        o_lat = [x for r in op_runs for x in r.latencies]
        d_total = statistics.median(r.total for r in direct_runs)
        o_total = statistics.median(r.total for r in op_runs)
        ds, os_ = summarize(d_lat), summarize(o_lat)
        total_ratio = ratio(o_total, d_total)
        print(
            f"  ratio operator/direct: total {total_ratio:.2f}x, median latency {ratio(os_.median, ds.median):.2f}x, "
            f"p99 {ratio(os_.p99, ds.p99):.2f}x  (goal <= {GOAL_RATIO}x)",
            flush=True,
        )
        if n == 1:
            print(f"  every request about the last N=1 object ({OPERATOR_NS}/{names[0]}), from the audit log:")
            for row in timeline(last_records, OPERATOR_NS, names[0]):
                print("   ", row)
        results.append(
            {
                "n": n,
                "repetitions": reps,
                "direct": {"latency_s": ds.as_dict(), "total_s": d_total, "runs": [r.as_dict() for r in direct_runs]},
                "operator": {"latency_s": os_.as_dict(), "total_s": o_total, "runs": [r.as_dict() for r in op_runs]},
                "ratio_total": total_ratio,
                "ratio_median": ratio(os_.median, ds.median),
                "ratio_p99": ratio(os_.p99, ds.p99),
                "not_ready": sum(len(r.timed_out) for r in direct_runs + op_runs),
            }
        )
    return results, last_ready


def bench_quiet_and_rss(
    cluster: LocalCluster,
    api: Api,
    audit: AuditLog,
    operator: Operator,
    *,
    objects: int,
    quiet_seconds: float,
    concurrency: int,
    last_serving_ready: float,
) -> dict[str, Any]:
    """Top the operator's namespace up to ``objects`` (the extra ones with replicas 0), let the monitor's
    time-driven first reports pass, then count the operator's writes over a quiet period and sample its RSS."""
    existing = {i["metadata"]["name"] for i in api.list("SpeculativeDeployment", OPERATOR_NS)["items"]}
    extra = [f"idle-{i:04d}" for i in range(max(0, objects - len(existing)))]
    watch = ReadyWatch(Api(cluster, pool_size=2), "SpeculativeDeployment", OPERATOR_NS, sd_ready).start()
    started = time.monotonic()
    create_all(api, {nm: [sd_manifest(nm, OPERATOR_NS, replicas=0)] for nm in extra}, concurrency)
    everyone = existing | set(extra)
    n = len(everyone)
    all_ready = watch.wait(everyone, timeout=300)
    watch.stop()
    print(
        f"{n} SpeculativeDeployments ({len(extra)} added with replicas 0), all Ready: {all_ready} "
        f"after {time.monotonic() - started:.1f} s",
        flush=True,
    )
    rss: list[int] = []
    # Transient: after Ready, status.acceptance follows the monitor's first reports (see TRANSIENT_SECONDS).
    # Past that, an unchanged world must cost nothing.
    transient_until = last_serving_ready + TRANSIENT_SECONDS
    mark = audit.mark()
    while time.time() < transient_until:
        rss.append(operator.rss_bytes())
        time.sleep(1)
    transient = [r for r in audit.since(mark) if r.from_operator and r.is_write]
    before, mark = request_totals(cluster.get("/metrics")), audit.mark()
    cpu_before = operator.cpu_seconds()
    t0 = time.monotonic()
    while time.monotonic() - t0 < quiet_seconds:
        rss.append(operator.rss_bytes())
        time.sleep(1)
    elapsed = time.monotonic() - t0
    cpu = operator.cpu_seconds() - cpu_before
    after = request_totals(cluster.get("/metrics"))
    records = audit.since(mark)
    op_writes = [r for r in records if r.from_operator and r.is_write]
    mine = Counter((r.verb, r.resource) for r in records if r.agent.startswith(USER_AGENT))
    all_writes = split(delta(delta(after, before), mine), exclude_resources=BACKGROUND)
    writes_by_key = {k: v for k, v in all_writes.by_key.items() if k.split()[0] in WRITE_VERBS}
    per_object_minute = len(op_writes) / n / (elapsed / 60)
    by_kind = Counter(f"{r.verb} {r.resource}" for r in op_writes)
    transient_by_kind = Counter(f"{r.verb} {r.resource}" for r in transient)
    print(
        f"  monitor's first reports (until {transient_until - last_serving_ready:.0f} s after the last Ready): "
        f"{len(transient)} operator writes {dict(transient_by_kind)}",
        flush=True,
    )
    print(
        f"  then {elapsed:.0f} s with nothing changing: the operator wrote {len(op_writes)} times = "
        f"{per_object_minute:.4f} per object per minute (goal 0){' ' + str(dict(by_kind)) if by_kind else ''}",
        flush=True,
    )
    print(
        f"  all clients' writes in that period outside leases/nodes: {all_writes.writes} {writes_by_key or ''}",
        flush=True,
    )
    print(
        f"  operator RSS at {n} objects: max {max(rss) / 2**20:.1f} MiB, "
        f"median {statistics.median(rss) / 2**20:.1f} MiB (goal < {GOAL_RSS_BYTES / 2**20:.0f} MiB); "
        f"CPU {cpu / elapsed * 100:.1f}% of one core while quiet",
        flush=True,
    )
    return {
        "objects": n,
        "all_ready": all_ready,
        "transient_operator_writes": len(transient),
        "transient_operator_writes_by_verb_resource": dict(transient_by_kind),
        "quiet_s": elapsed,
        "operator_writes": len(op_writes),
        "operator_writes_by_verb_resource": dict(by_kind),
        "operator_writes_per_object_per_minute": per_object_minute,
        "all_client_writes_outside_background": all_writes.writes,
        "all_client_writes_by_verb_resource": writes_by_key,
        "rss_bytes_max": max(rss),
        "rss_bytes_median": statistics.median(rss),
        "operator_cpu_fraction_quiet": cpu / elapsed,
    }


def run(
    sizes: Sequence[int] = (1, 100, 500),
    *,
    reps_of_one: int = 5,
    quiet_seconds: float = 60,
    rss_objects: int = 1000,
    concurrency: int = 8,
    keep: bool = False,
) -> dict[str, Any]:
    pods = 2 * ((reps_of_one - 1) + sum(sizes))
    nodes = math.ceil(pods / 8) + 1
    started = time.monotonic()
    with bench_cluster(nodes, keep=keep) as cluster:
        api = Api(cluster)
        audit = AuditLog(audit_log_path(cluster.root))
        for ns in (DIRECT_NS, OPERATOR_NS):
            api.create_namespace(ns)
        log_dir = Path(tempfile.mkdtemp(prefix="specdeploy-bench-op-")) if keep else cluster.root / "logs"
        operator = Operator(cluster, [OPERATOR_NS], log_dir / "operator.log").start()
        time.sleep(2)
        rss_idle = operator.rss_bytes()
        print(f"operator started (pid {operator.pid}), RSS with no objects {rss_idle / 2**20:.1f} MiB", flush=True)
        try:
            sizes_out, last_ready = bench_sizes(
                cluster, api, audit, sizes=sizes, concurrency=concurrency, reps_of_one=reps_of_one, operator=operator
            )
            quiet = bench_quiet_and_rss(
                cluster,
                api,
                audit,
                operator,
                objects=rss_objects,
                quiet_seconds=quiet_seconds,
                concurrency=concurrency,
                last_serving_ready=last_ready,
            )
        finally:
            operator.stop()
        quiet["rss_bytes_no_objects"] = rss_idle
    return {
        "nodes": nodes,
        "concurrency": concurrency,
        "sizes": sizes_out,
        "quiet": quiet,
        "wall_s": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,100,500", help="object counts, comma-separated (default 1,100,500)")
    parser.add_argument("--reps-of-one", type=int, default=5, help="interleaved repetitions of N=1 (default 5)")
    parser.add_argument("--quiet-seconds", type=float, default=60)
    parser.add_argument("--rss-objects", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="creating threads, both paths (default 8)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster folder and logs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    out = run(
        [int(x) for x in args.sizes.split(",")],
        reps_of_one=args.reps_of_one,
        quiet_seconds=args.quiet_seconds,
        rss_objects=args.rss_objects,
        concurrency=args.concurrency,
        keep=args.keep,
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

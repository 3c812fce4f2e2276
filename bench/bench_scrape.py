"""Benchmark: the operator's CPU per pod scrape, and whether 1,000 pods per scrape interval fit on one core.

Why: every ready pod of every SpeculativeDeployment is scraped every ``scrapeIntervalSeconds`` (15 s by default),
so the monitor's cost grows with the fleet. This runs the operator's real per-object scrape path
(``specdeploy.tracker.AcceptanceTracker.scrape``: the operator's pod pool and budgets, ``monitor.pools``,
``monitor.scrape``, ``monitor.pagefilter``, ``monitor.parse``, the window accumulator, the decision and the
exporter's metrics) for 1,000 objects with one pod each, against 1,000 distinct loopback addresses, and
measures this process' CPU time (``time.process_time``) and the wall time of each interval.

The pods are one aiohttp server in a separate process (its CPU is not counted), listening on 1,000 addresses
127.B.x.y on one port. It answers with the real vLLM 0.32 /metrics page from tests/fixtures/vllm/ (55 kB, V1
spec-decode counters), its spec-decode counters advancing by one step of traffic on every request, so every
window has numbers to judge.

Baseline in the same run: the same fetches with ``scrape_many`` alone (no parse, no windows), so the ratio shows
what the monitor adds on top of HTTP.

Run: .venv/bin/python -m bench.bench_scrape [--pods 1000] [--intervals 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REAL_PAGE = REPO / "tests" / "fixtures" / "vllm" / "vllm-0.32-cpu-unrelated-draft.metrics.txt"
DEFAULT_INTERVAL_S = 15  # the API's default scrapeIntervalSeconds
NAMESPACE = "bench"
PACE_S = 2.5  # seconds between the starts of two intervals (windows are 10 s, the API's minimum)

_COUNTER_LINE = re.compile(r"^(vllm:spec_decode_num_(\w+?)_total\{([^}]*)\}) (\S+)$")


# ------------------------------------------------------------------------------------------- the pods
def page_template(text: str, alpha: float = 0.75) -> list[str | tuple[str, float, float]]:
    """Split the page into static text and (sample prefix, value, step) for each V1 spec-decode counter; one step
    is 100 drafts of 4 tokens with per-position acceptance ``alpha ** (i + 1)``."""
    positions = sorted(int(p) for p in re.findall(r'accepted_tokens_per_pos_total\{[^}]*position="(\d+)"', text))
    accepted_step = sum(100 * alpha ** (p + 1) for p in positions)
    parts: list[str | tuple[str, float, float]] = []
    static: list[str] = []
    for line in text.splitlines(keepends=True):
        m = _COUNTER_LINE.match(line.rstrip("\n"))
        if not m:
            static.append(line)
            continue
        kind, labels = m.group(2), m.group(3)
        if kind == "drafts":
            step = 100.0
        elif kind == "draft_tokens":
            step = 400.0
        elif kind == "accepted_tokens":
            step = accepted_step
        else:  # accepted_tokens_per_pos
            pos = int(re.search(r'position="(\d+)"', labels).group(1))  # type: ignore[union-attr]
            step = 100 * alpha ** (pos + 1)
        parts.append("".join(static))
        static = []
        parts.append((m.group(1), float(m.group(4)), step))
    parts.append("".join(static))
    return parts


def render(parts: Sequence[str | tuple[str, float, float]], n: int) -> bytes:
    out = [p if isinstance(p, str) else f"{p[0]} {p[1] + n * p[2]}\n" for p in parts]
    return "".join(out).encode()


def addresses(count: int, octet: int) -> list[str]:
    return [f"127.{octet}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def _serve(addrs: list[str], port: int, ready: Queue[str]) -> None:
    from aiohttp import web

    parts = page_template(REAL_PAGE.read_text())
    served: dict[str, int] = {}

    async def metrics(request: web.Request) -> web.Response:
        local = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        n = served[local] = served.get(local, 0) + 1
        return web.Response(body=render(parts, n), content_type="text/plain", charset="utf-8")

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.get("/metrics", metrics)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for addr in addrs:
            await web.TCPSite(runner, addr, port, backlog=256).start()
        ready.put("ok")
        await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except OSError as e:
        ready.put(f"server could not listen: {e}")


# ------------------------------------------------------------------------------------------- the operator side
@dataclass(frozen=True)
class Interval:
    cpu_s: float
    wall_s: float
    ok: int


def _spec(port: int) -> Any:
    from specdeploy.api import SpeculativeDeploymentSpec

    return SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "meta-llama/Llama-3.1-8B-Instruct"},
            "draft": {"model": "meta-llama/Llama-3.2-1B-Instruct"},
            "serving": {"port": port},
            "rollback": {"windowSeconds": 10, "warmupSeconds": 0, "minDraftTokens": 100},
            "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 10},
        }
    )


async def _run_intervals(addrs: list[str], port: int, intervals: int) -> tuple[list[Interval], list[Interval]]:
    from specdeploy import tracker as tracker_mod
    from specdeploy.api.revision import revision_id
    from specdeploy.monitor.pools import POOLS
    from specdeploy.monitor.scrape import scrape_many
    from specdeploy.rollout.history import RevisionRecord, ServingChoice

    spec = _spec(port)
    rev = revision_id(spec)
    serving = ServingChoice(RevisionRecord(id=rev, number=1, spec={}), speculation=True)
    deployment = {
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"specdeploy.io/revision": rev}}}},
        "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1},
    }
    trackers = []
    for i, addr in enumerate(addrs):
        t = tracker_mod.AcceptanceTracker()
        t.set_serving(serving, deployment)
        pods = [{"name": f"sd-{i}-pod", "ip": addr, "ready": True, "component": "server", "revision": rev}]
        trackers.append((f"sd-{i}", t, pods))

    async def operator_interval() -> int:
        await asyncio.gather(*(t.scrape(NAMESPACE, name, spec, pods) for name, t, pods in trackers))
        verdicts = [t.finding(spec, NAMESPACE, name) for name, t, _ in trackers]
        return sum(1 for v in verdicts if v is not None)

    urls = [f"http://{a}:{port}/metrics" for a in addrs]

    async def fetch_interval() -> int:
        outcomes = await scrape_many(urls, timeout=10, concurrency=256, session=POOLS.pods_session())
        return sum(1 for o in outcomes.values() if isinstance(o.result, str))

    async def timed(fn: Any) -> Interval:
        cpu, wall = time.process_time(), time.perf_counter()
        ok = await fn()
        return Interval(cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall, ok=ok)

    ours: list[Interval] = []
    base: list[Interval] = []
    try:
        for _ in range(intervals):  # interleaved, so machine noise hits both alike
            started = time.monotonic()
            ours.append(await timed(operator_interval))
            base.append(await timed(fetch_interval))
            # one interval every PACE_S: the first 10 s window closes within the run
            await asyncio.sleep(max(0.0, PACE_S - (time.monotonic() - started)))
    finally:
        await POOLS.close()
    # the windows must have judged something, or this did not measure the whole path
    rated = sum(1 for _, t, _ in trackers if t.published and t.published.get("rate") is not None)
    if rated < len(trackers) * 0.9:
        raise SystemExit(f"only {rated} of {len(trackers)} trackers published an acceptance rate: the path is broken")
    return ours, base


def run(pods: int = 1000, intervals: int = 6) -> dict[str, Any]:
    from tests.harness.localcluster import free_port

    octet = random.choice([o for o in range(130, 250)])  # noqa: S311 - avoid other local clusters' pod ranges
    addrs = addresses(pods, octet)
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[str] = ctx.Queue()
    server = ctx.Process(target=_serve, args=(addrs, port, ready), daemon=True)
    server.start()
    try:
        got = ready.get(timeout=120)
        if got != "ok":
            raise SystemExit(got)
        ours, base = asyncio.run(_run_intervals(addrs, port, intervals))
    finally:
        server.terminate()
        server.join(timeout=10)
    warm_ours, warm_base = ours[1:] or ours, base[1:] or base
    cpu = statistics.median(i.cpu_s for i in warm_ours)
    wall = statistics.median(i.wall_s for i in warm_ours)
    base_cpu = statistics.median(i.cpu_s for i in warm_base)
    print(f"scrape: {pods} pods on {pods} loopback addresses, real vLLM page ({REAL_PAGE.stat().st_size} bytes)")
    print(
        f"  first interval (new connections): CPU {ours[0].cpu_s:.3f} s, wall {ours[0].wall_s:.3f} s; "
        f"ok {ours[0].ok}/{pods}"
    )
    print(
        f"  later intervals (kept-alive connections, median of {len(warm_ours)}): CPU {cpu:.3f} s, wall {wall:.3f} s "
        f"-> {cpu / pods * 1e3:.3f} ms CPU per pod scrape"
    )
    print(
        f"  baseline, fetch only (scrape_many, no parse/windows): CPU {base_cpu:.3f} s per interval; "
        f"operator path / fetch only = {cpu / base_cpu:.2f}x"
    )
    print(
        f"  one core at the default {DEFAULT_INTERVAL_S} s interval: {cpu / DEFAULT_INTERVAL_S * 100:.1f}% busy "
        f"(budget: {pods} pods per interval fit on one core: CPU and wall per interval < {DEFAULT_INTERVAL_S} s)"
    )
    return {
        "pods": pods,
        "page_bytes": REAL_PAGE.stat().st_size,
        "intervals": [i.__dict__ for i in ours],
        "baseline_intervals": [i.__dict__ for i in base],
        "cpu_per_interval_s": cpu,
        "wall_per_interval_s": wall,
        "cpu_per_pod_ms": cpu / pods * 1e3,
        "fetch_only_cpu_per_interval_s": base_cpu,
        "ratio_vs_fetch_only": cpu / base_cpu,
        "core_fraction_at_default_interval": cpu / DEFAULT_INTERVAL_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=6, help="at least 5 (a 10 s window must close)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = run(args.pods, args.intervals)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

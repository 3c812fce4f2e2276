"""Benchmark: memory and time to read the hostile 8 MiB /metrics pages of issue 11, before and after the caps.

Why: a page of 100,000 spec-decode series (7.8 MiB, under the 8 MiB page cap) used to cost the operator ~90 MiB
and seconds of CPU per scrape, all of it on the event loop. This reads each page the way the operator's scrape path
reads it, in the same run, two ways:

* before: the parser of ``--baseline-ref`` (default: the commit before the caps), loaded from git, over the whole
  page decoded to text (what ``scrape()`` handed it);
* after: the page fed in 64 KiB chunks (as they come off the socket) to ``monitor.pagefilter.SpecDecodeFilter``,
  then ``monitor.parse.parse_lines`` over the kept lines.

Event-loop stall: the same pages served over HTTP by a separate process and read by the operator's path before
(the baseline's ``scrape()`` and parser, both on the event loop, as its tracker did) and after
(``monitor.pools.scrape_object``); reported is the longest gap between the ticks of a 1 ms ticker task on the same
loop (median of ``--runs``), i.e. how long every other object's daemon was kept waiting.

Pages: the 100,000-series page (``tests/harness/hostile_pages.many_series``), a 7.5 MiB page of other series followed by
the real vLLM page (within every cap: read in full), and the real 55 kB page. Time is ``time.process_time`` (median
of ``--runs``); memory is the ``tracemalloc`` peak of Python allocations during one read (a separate run, since
tracing slows the code down).

Run: .venv/bin/python -m bench.bench_hostile_page [--runs 5] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from multiprocessing.queues import Queue
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASELINE_REF = "f2ab2db"  # main before issue 11's caps
CHUNK = 64 * 1024


def load_baseline(ref: str, name: str = "parse") -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{ref}:operator/specdeploy/monitor/{name}.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader(f"baseline_{name}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"baseline_{name}"] = module
    exec(compile(source, f"{ref}:{name}.py", "exec"), module.__dict__)  # noqa: S102 - the project's own history
    return module


def _serve(pages: dict[str, bytes], ready: Queue[int]) -> None:
    from aiohttp import web

    async def main() -> None:
        app = web.Application()
        for name, body in pages.items():
            app.router.add_get(f"/{name}", lambda _r, b=body: _respond(b))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _respond(body: bytes) -> Any:
    from aiohttp import web

    return web.Response(body=body, content_type="text/plain")


async def longest_stall(read: Callable[[], Awaitable[object]]) -> float:
    """The longest gap between two ticks of a 1 ms ticker while ``read`` runs on the same loop."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await read()
    done.set()
    await task
    return max(gaps)


def stalls(ref: str, pages: dict[str, bytes], runs: int) -> dict[str, tuple[float, float]]:
    from specdeploy.monitor.pools import Pools, scrape_object

    old_scrape, old_parse = load_baseline(ref, "scrape"), load_baseline(ref, "parse")
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[int] = ctx.Queue()
    names = {f"p{i}": page for i, page in enumerate(pages.values())}
    server = ctx.Process(target=_serve, args=(names, ready), daemon=True)
    server.start()
    try:
        port = ready.get(timeout=60)

        async def measure() -> dict[str, tuple[float, float]]:
            import aiohttp

            out = {}
            pools = Pools()
            async with aiohttp.ClientSession() as session:
                for label, name in zip(pages, names, strict=True):
                    url = f"http://127.0.0.1:{port}/{name}"

                    async def before_read(u: str = url) -> object:
                        text = await old_scrape.scrape(session, u, timeout=30)
                        try:
                            return old_parse.parse_spec_decode(text) if isinstance(text, str) else text
                        except ValueError as e:
                            return e

                    async def after_read(u: str = url) -> object:
                        return await scrape_object(pools, "bench", "obj", [u], timeout=30)

                    old = statistics.median([await longest_stall(before_read) for _ in range(runs)])
                    new = statistics.median([await longest_stall(after_read) for _ in range(runs)])
                    out[label] = (old, new)
            await pools.close()
            return out

        return asyncio.run(measure())
    finally:
        server.terminate()
        server.join(timeout=10)


def before(baseline: ModuleType, page: bytes) -> str:
    try:
        counters = baseline.parse_spec_decode(page.decode("utf-8", errors="replace"))
    except ValueError as e:
        return f"error: {str(e)[:70]}"
    return f"read {len(counters.series)} series" if counters else "no spec-decode series"


def after(page: bytes) -> str:
    from specdeploy.monitor.pagefilter import PageRejectedError, SpecDecodeFilter
    from specdeploy.monitor.parse import MetricsParseError, parse_lines

    lines = SpecDecodeFilter()
    try:
        for i in range(0, len(page), CHUNK):
            lines.feed(page[i : i + CHUNK])
        counters = parse_lines(lines.finish())
    except (PageRejectedError, MetricsParseError) as e:
        return f"error: {str(e)[:70]}"
    return f"read {len(counters.series)} series" if counters else "no spec-decode series"


def cpu_median(fn: Callable[[], str], runs: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        started = time.process_time()
        outcome = fn()
        times.append(time.process_time() - started)
    return statistics.median(times), outcome


def peak_mib(fn: Callable[[], str]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def run(runs: int, ref: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.harness import hostile_pages as pages

    baseline = load_baseline(ref)
    cases = {
        "100,000 spec-decode series": pages.many_series(),
        "7.5 MiB of other series + real page": pages.huge(int(7.5 * 1024 * 1024))(),
        "real vLLM page": pages.REAL_PAGE.read_bytes(),
    }
    out: dict[str, Any] = {}
    print(f"reading one /metrics page, before ({ref}) vs after; CPU median of {runs}, tracemalloc peak of one read")
    for name, page in cases.items():
        old_cpu, old_said = cpu_median(lambda p=page: before(baseline, p), runs)  # type: ignore[misc]
        new_cpu, new_said = cpu_median(lambda p=page: after(p), runs)  # type: ignore[misc]
        old_mem = peak_mib(lambda p=page: before(baseline, p))  # type: ignore[misc]
        new_mem = peak_mib(lambda p=page: after(p))  # type: ignore[misc]
        print(f"  {name} ({len(page) / 2**20:.2f} MiB)")
        print(f"    before: CPU {old_cpu * 1e3:9.1f} ms, peak {old_mem:7.1f} MiB  ({old_said})")
        print(f"    after:  CPU {new_cpu * 1e3:9.1f} ms, peak {new_mem:7.1f} MiB  ({new_said})")
        cpu_ratio, mem_ratio = old_cpu / max(new_cpu, 1e-9), old_mem / max(new_mem, 1e-9)
        print(f"    before/after: CPU {cpu_ratio:.2f}x, memory {mem_ratio:.1f}x")
        out[name] = {
            "page_bytes": len(page),
            "before": {"cpu_s": old_cpu, "peak_mib": old_mem, "outcome": old_said},
            "after": {"cpu_s": new_cpu, "peak_mib": new_mem, "outcome": new_said},
        }
    print(f"longest event-loop stall while the operator's path reads the page over HTTP (median of {runs})")
    for name, (old, new) in stalls(ref, cases, runs).items():
        print(f"  {name}: before {old * 1e3:8.1f} ms, after {new * 1e3:8.1f} ms ({old / max(new, 1e-9):.1f}x)")
        out[name]["loop_stall_s"] = {"before": old, "after": new}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = run(args.runs, args.baseline_ref)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""``make bench``: run every benchmark, print one table of budgets with PASS/FAIL, and save the numbers as JSON.

Why one entry point: the design's budgets (design.md section 5) are only meaningful side by side and from one run
on one machine, with the machine's load recorded, since every ratio is against a baseline measured in the same run.
The parse and validator benchmarks (other modules' files) run as subprocesses and are read from their output;
the others are imported. Results go to bench-results/bench-<UTC time>.json (git-ignored).

Run: .venv/bin/python -m bench.run_all [--only create,rollback,exposure,scrape,parse,validate] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench-results"
ALL = ("parse", "validate", "scrape", "rollback", "exposure", "create")


@dataclass(frozen=True)
class Row:
    budget: str
    measured: str
    goal: str
    verdict: str  # PASS, FAIL, INFO, ERROR


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _run_script(script: str, *args: str, timeout: float = 900) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout + proc.stderr
    print(out, flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench/{script} exited with {proc.returncode}")
    return out


def _grab(pattern: str, text: str, what: str) -> re.Match[str]:
    m = re.search(pattern, text, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"could not find {what} in the benchmark's output")
    return m


# ------------------------------------------------------------------------------------------- each benchmark
def parse_bench(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    out = _run_script("bench_parse.py", "--skip-scrape", "--runs", "100" if quick else "300")
    ratio = float(_grab(r"ratio \(prometheus_client / monitor\.parse\): ([\d.]+)x", out, "the parse ratio").group(1))
    same = _grab(r"same numbers as prometheus_client: (\w+)", out, "the differential check").group(1) == "True"
    ours = float(_grab(r"monitor\.parse \(str\):\s+median\s+([\d.]+) us", out, "the parse time").group(1))
    return {"ratio_vs_prometheus_client": ratio, "same_numbers": same, "median_us": ours}, [
        Row(
            "parse one real vLLM /metrics page vs prometheus_client",
            f"{ratio:.1f}x faster ({ours:.0f} us)",
            ">= 10x",
            _verdict(ratio >= 10),
        ),
        Row("parse: same numbers as prometheus_client", str(same), "True", _verdict(same)),
    ]


def validate_bench(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    out = _run_script("bench_validate.py", "--runs", "3" if quick else "7")
    rows: list[Row] = []
    data: dict[str, Any] = {}
    for m in re.finditer(r"^(two [\w.]+ loads \+ compare)\s+([\d.]+) ms\s+goal < 1000 ms", out, re.MULTILINE):
        ms = float(m.group(2))
        data[m.group(1)] = ms
        rows.append(
            Row(f"validator: 128k vocabularies, {m.group(1)}", f"{ms:.0f} ms", "< 1000 ms", _verdict(ms < 1000))
        )
    if not rows:
        raise RuntimeError("could not find the vocabulary timings in bench_validate's output")
    downloaded = int(_grab(r"bytes downloaded \(report\) ([\d,]+)", out, "bytes downloaded").group(1).replace(",", ""))
    weights = int(_grab(r"weight files requested: (\d+)", out, "weight files").group(1))
    data.update(downloaded_bytes=downloaded, weight_files=weights)
    ok = weights == 0 and downloaded < 20_000_000
    rows.append(
        Row(
            "validator: downloads only metadata (70B/8B pair)",
            f"{downloaded / 1e6:.2f} MB, {weights} weight files",
            "KB..few MB, 0 weights",
            _verdict(ok),
        )
    )
    return data, rows


def scrape_bench(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    from bench import bench_scrape

    r = bench_scrape.run(pods=200 if quick else 1000)
    pods, cpu, wall = r["pods"], r["cpu_per_interval_s"], r["wall_per_interval_s"]
    limit = bench_scrape.DEFAULT_INTERVAL_S
    return r, [
        Row(
            "scrape: CPU per pod scrape (fetch, parse, window, decide)",
            f"{r['cpu_per_pod_ms']:.2f} ms ({r['ratio_vs_fetch_only']:.1f}x fetch alone)",
            "(informational)",
            "INFO",
        ),
        Row(
            f"scrape: {pods} pods per interval on one core",
            f"CPU {cpu:.2f} s, wall {wall:.2f} s per interval",
            f"< {limit} s (default interval)",
            _verdict(cpu < limit and wall < limit),
        ),
    ]


def rollback_bench(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    from bench import bench_rollback

    r = bench_rollback.run(repeat=3 if quick else 6)
    budget = "rollback: K-th bad window closed -> Deployment patched"
    if "latency_s" not in r or r["missing"]:
        return r, [Row(budget, f"{len(r['missing'])} of {r['repeat']} not measured", "<= 1 scrape interval", "FAIL")]
    lat, iv = r["latency_s"], r["latency_intervals"]
    reaction = r.get("reaction_s")
    return r, [
        Row(
            budget,
            f"median {lat['median'] * 1e3:.0f} ms ({iv['median']:.2f} intervals), worst {iv['max']:.2f} intervals "
            f"(n={lat['count']}, intervals {'/'.join(map(str, r['scrape_intervals_s']))} s)",
            "<= 1 scrape interval",
            _verdict(iv["max"] <= 1.0),
        ),
        Row(
            "rollback: operator reaction after the judging scrape",
            f"median {reaction['median'] * 1e3:.0f} ms, max {reaction['max'] * 1e3:.0f} ms" if reaction else "-",
            "(informational)",
            "INFO",
        ),
    ]


def exposure_bench(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    from bench import bench_exposure

    setup = bench_exposure.Setup()
    r = bench_exposure.report(setup, repeat=10 if quick else 25)
    fleet = f"{setup.replicas}+{setup.canary}"
    return r, [
        Row(
            f"canary: bad-draft tokens served, Canary / Replace ({fleet} pods)",
            f"{r['bad_tokens_ratio']:.3f} ({r['canary_bad_tokens']:.0f} vs {r['replace_bad_tokens']:.0f}; "
            f"share {r['canary_share']:.1%} vs {r['replace_share']:.1%})",
            "< 1",
            _verdict(r["bad_tokens_ratio"] < 1),
        ),
        Row(
            "canary: first qualifying window -> verdict",
            f"abort {r['canary_first_window_to_abort_s']:.0f} s, promotion "
            f"{r['canary_first_window_to_promotion_s']:.0f} s (Replace rollback "
            f"{r['replace_first_window_to_verdict_s']:.0f} s)",
            "(informational)",
            "INFO",
        ),
    ]


def create_bench(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    from bench import bench_create

    sizes = (1, 20, 100) if quick else (1, 100, 500)
    r = bench_create.run(
        sizes, reps_of_one=3 if quick else 5, quiet_seconds=30 if quick else 60, rss_objects=200 if quick else 1000
    )
    rows: list[Row] = []
    goal = bench_create.GOAL_RATIO
    for s in r["sizes"]:
        n = s["n"]
        judged = n == 1 or n == max(sizes)
        d, o = s["direct"], s["operator"]
        measured = (
            f"{s['ratio_total']:.2f}x (operator {o['total_s']:.2f} s vs direct {d['total_s']:.2f} s; "
            f"median latency {o['latency_s']['median']:.2f} vs {d['latency_s']['median']:.2f} s)"
        )
        if s["not_ready"]:
            measured += f"; {s['not_ready']} never Ready"
        rows.append(
            Row(
                f"create->Ready, {n} object(s), operator / direct",
                measured,
                f"<= {goal}x",
                _verdict(s["ratio_total"] <= goal and not s["not_ready"]) if judged else "INFO",
            )
        )
        run = o["runs"][-1]
        per = run["api_per_object_operator"]
        direct_all = d["runs"][-1]["api_per_object_all_clients"]
        rows.append(
            Row(
                f"API requests per object, {n} object(s)",
                f"operator's own {per['reads']:.1f} reads + {per['writes']:.1f} writes; all clients "
                f"{run['api_per_object_all_clients']['writes']:.1f} writes (direct path {direct_all['writes']:.1f})",
                "(informational)",
                "INFO",
            )
        )
    q = r["quiet"]
    rows.append(
        Row(
            f"steady state: operator API writes, {q['objects']} objects, nothing changing",
            f"{q['operator_writes_per_object_per_minute']:.4f} per object per minute "
            f"({q['operator_writes']} in {q['quiet_s']:.0f} s)",
            "0",
            _verdict(q["operator_writes"] == 0),
        )
    )
    rss_mib = q["rss_bytes_max"] / 2**20
    rows.append(
        Row(
            f"operator RSS at {q['objects']} objects",
            f"{rss_mib:.0f} MiB (no objects: {q['rss_bytes_no_objects'] / 2**20:.0f} MiB)",
            "< 200 MiB",
            _verdict(q["rss_bytes_max"] < bench_create.GOAL_RSS_BYTES),
        )
    )
    return r, rows


BENCHES: dict[str, Callable[[bool], tuple[dict[str, Any], list[Row]]]] = {
    "parse": parse_bench,
    "validate": validate_bench,
    "scrape": scrape_bench,
    "rollback": rollback_bench,
    "exposure": exposure_bench,
    "create": create_bench,
}


def print_table(rows: list[Row]) -> None:
    w0 = max(len(r.budget) for r in rows)
    w1 = min(max(len(r.measured) for r in rows), 90)
    w2 = max(len(r.goal) for r in rows)
    print(f"\n{'budget':<{w0}}  {'measured':<{w1}}  {'goal':<{w2}}  result")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * w2}  ------")
    for r in rows:
        print(f"{r.budget:<{w0}}  {r.measured:<{w1}}  {r.goal:<{w2}}  {r.verdict}")


def _git_commit() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False
    )
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=REPO, check=False)
    return proc.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for checking the benchmarks themselves")
    args = parser.parse_args()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    started = dt.datetime.now(dt.UTC)
    env = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "commit": _git_commit(), "quick": args.quick}
    results: dict[str, Any] = {}
    rows: list[Row] = []
    for name in chosen:
        print(f"\n===== {name} =====", flush=True)
        t0 = time.monotonic()
        try:
            data, got = BENCHES[name](args.quick)
        except Exception as e:
            traceback.print_exc()
            data, got = {"error": f"{type(e).__name__}: {e}"}, [Row(f"{name} benchmark", f"error: {e}", "-", "ERROR")]
        data["wall_s"] = time.monotonic() - t0
        results[name] = data
        rows.extend(got)
    env["loadavg_end"] = os.getloadavg()
    print_table(rows)
    print(
        f"\nmachine: {env['cpus']} CPUs, load average {env['loadavg_start'][0]:.1f} at start, "
        f"{env['loadavg_end'][0]:.1f} at end; commit {env['commit']}"
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(
        json.dumps(
            {"started": started.isoformat(), "env": env, "summary": [asdict(r) for r in rows], "results": results},
            indent=2,
            default=str,
        )
    )
    print(f"results: {path.relative_to(REPO)}")
    return 1 if any(r.verdict == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

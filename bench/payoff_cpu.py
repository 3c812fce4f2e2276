"""Does speculation pay, on real vLLM 0.32 (CPU build) and the tiny models: the operator's speedup against a control
server, computed from vLLM's own /metrics by the operator's code, beside the client's own measurement (issue 14).

For each setting (n-gram k=4, copy draft k=4) and each concurrency (1 and 8), the same greedy requests go to a
speculative server and to a control server (the same target, speculation off; both command lines rendered by
``render.vllm_args`` exactly as for pods). While they run, each server's /metrics is read every 0.5 s and the reads
go through the operator's path: ``monitor.pagefilter`` -> ``monitor.speed`` -> ``monitor.window.WindowAccumulator``
-> ``monitor.control.compare`` (speedup per load bucket from time per output token). The client measures its own
time per output token (streamed, after the first token) and output tokens per second. The servers are measured one
after the other (two cores: two servers under load at once would slow each other), so the pairs are over the same
requests, not the same seconds. Finally ``monitor.payoff.choose_schedule`` picks the schedule the adaptive loop
would roll out from these measurements, and ``status.performance``'s speedup fields are printed as the operator
would publish them.

Run: .venv/bin/python -m bench.payoff_cpu [--requests 8] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.harness.tinymodels import PROMPTS
from tests.harness.vllm import install, server_from_argv, tiny_models
from tests.harness.vllmfleet import read_prompts

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.compare.server import VllmServer
from specdeploy.monitor.acceptance import delta, summarize
from specdeploy.monitor.control import compare
from specdeploy.monitor.pagefilter import filter_page
from specdeploy.monitor.parse import parse_lines
from specdeploy.monitor.payoff import choose_schedule
from specdeploy.monitor.performance import performance_status
from specdeploy.monitor.speed import parse_speed_lines
from specdeploy.monitor.window import PodSample, Window, WindowAccumulator
from specdeploy.render.vllm_args import VLLM_COMMAND, vllm_args

SETTINGS: dict[str, dict[str, Any]] = {
    "ngram k=4": {"speculation": {"method": "ngram", "numSpeculativeTokens": 4, "promptLookupMax": 4}},
    "copy draft k=4": {"draft": {"model": "tiny/copy"}, "speculation": {"numSpeculativeTokens": 4}},
}
TARGET = {"model": "tiny/target", "maxModelLen": 512}


def spec_of(setting: dict[str, Any]) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate({"target": TARGET, **setting})


def sample(server: VllmServer, pod: str) -> PodSample:
    """One read of the server's /metrics through the operator's filter and parsers."""
    kept = filter_page(server.metrics().encode())
    return PodSample(timestamp=time.time(), pod=pod, counters=parse_lines(kept), speed=parse_speed_lines(kept.speed))


def measured_window(server: VllmServer, pod: str, prompts: Sequence[str], max_tokens: int, concurrency: int) -> Any:
    """Drive the load, read /metrics every 0.5 s meanwhile, and close one window over the whole phase."""
    samples = [sample(server, pod)]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.5):
            samples.append(sample(server, pod))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    timings, wall = server.timed_many(prompts, max_tokens, concurrency=concurrency)
    done.set()
    poller.join()
    samples.append(sample(server, pod))
    start = samples[0].timestamp
    accumulator = WindowAccumulator(samples[-1].timestamp - start + 1e-3, start=start)
    for s in samples:
        accumulator.add(s)
    [window] = accumulator.advance(samples[-1].timestamp + 1.0)
    tpots = [t.time_per_output_token_s for t in timings if t.time_per_output_token_s is not None]
    tokens = sum(t.output_tokens for t in timings)
    acceptance = None
    first, last = samples[0].counters, samples[-1].counters
    if first is not None and last is not None:
        acceptance = summarize(delta(first, last))
    return window, statistics.mean(tpots), tokens / wall, acceptance


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("/tmp/specdeploy-payoff"))  # noqa: S108
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    python = install()
    models = tiny_models(python)
    model_map = {"tiny/target": str(models / "target"), "tiny/copy": str(models / "copy")}
    prompts = read_prompts(models / PROMPTS)[: args.requests]
    control_spec = spec_of(SETTINGS["ngram k=4"])
    servers: dict[str, VllmServer] = {
        "control": server_from_argv(
            python,
            [*VLLM_COMMAND, *vllm_args(control_spec, speculation_enabled=False)],
            model_map,
            host="127.0.0.31",
            log_path=args.out / "control.log",
        )
    }
    for index, (name, setting) in enumerate(SETTINGS.items()):
        servers[name] = server_from_argv(
            python,
            [*VLLM_COMMAND, *vllm_args(spec_of(setting))],
            model_map,
            host=f"127.0.0.{32 + index}",
            log_path=args.out / f"{name.split()[0]}.log",
        )
    rows: list[dict[str, Any]] = []
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready(900)
        for server in servers.values():  # warm-up at both concurrencies (first batches of a shape are slower)
            server.complete_many(prompts[:1], 8, concurrency=1)
            server.complete_many(prompts, 16, concurrency=8)
        for concurrency in (1, 8):
            control: tuple[Window, float, float, Any] = measured_window(
                servers["control"], "control", prompts, args.max_tokens, concurrency
            )
            for name in SETTINGS:
                ours = measured_window(servers[name], name, prompts, args.max_tokens, concurrency)
                payoff = compare(ours[0], control[0], min_tokens=1)
                rows.append(
                    {
                        "setting": name,
                        "concurrency": concurrency,
                        "operator_speedup": payoff.speedup,
                        "by_load": [b.status() for b in payoff.by_load],
                        "client_tpot_speedup": control[1] / ours[1],
                        "client_tokens_per_s_speedup": ours[2] / control[2],
                        "acceptance": None if ours[3] is None else ours[3].rate,
                        "per_position": None if ours[3] is None else list(ours[3].per_position),
                        "payoff": payoff,
                        "message": payoff.message,
                    }
                )
    finally:
        for server in servers.values():
            server.stop()
    (args.out / "payoff.json").write_text(
        json.dumps([{k: v for k, v in r.items() if k != "payoff"} for r in rows], indent=2) + "\n"
    )
    lines = [
        "setting          conc  operator speedup  client TPOT ratio  client tokens/s ratio  acceptance  agree",
    ]
    for r in rows:
        op, client = r["operator_speedup"], r["client_tokens_per_s_speedup"]
        rate = "-" if r["acceptance"] is None else f"{r['acceptance']:.2f}"
        agree = "yes" if op is not None and abs(op / client - 1) <= 0.15 else "NO"
        shown = "-" if op is None else f"{op:.2f}"
        lines.append(
            f"{r['setting']:<16} {r['concurrency']:>4}  {shown:>16}  {r['client_tpot_speedup']:>17.2f}  "
            f"{client:>21.2f}  {rate:>10}  {agree}"
        )
    for name in SETTINGS:
        mine = [r for r in rows if r["setting"] == name]
        buckets = [b for r in mine for b in r["payoff"].by_load]
        per_position = next((r["per_position"] for r in mine if r["per_position"]), None)
        choice = choose_schedule(4, per_position, None, measured=buckets, min_tokens=1)
        lines.append(
            f"{name}: adaptive schedule {list(choice.schedule) if choice else None}: "
            f"{choice.reason if choice else 'no acceptance measured'}"
        )
        published = performance_status("bench", None, mine[-1]["payoff"])
        fields = {key: published[key] for key in ("speedup", "speedupByLoad")}
        lines.append(f"{name}: status.performance speedup fields at 8: {json.dumps(fields)}")
    lines += [f"{r['setting']} at {r['concurrency']}: {r['message']}" for r in rows]
    text = "\n".join(lines)
    print(text)
    (args.out / "payoff.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fifty objects whose pods serve ~8 MiB hostile ``/metrics`` pages: the operator's RSS stays under its chart limit.

Issue 11, item 3: one page of 100,000 spec-decode series cost the operator ~90 MiB and seconds of event-loop time
per scrape, so a handful of such pods scraped at once took it past its memory limit. Here 25 objects serve that page
(refused at the series cap: the objects hold and say why) and 25 serve a page that is within every cap but
almost 8 MiB long (7.5 MiB of other series before the real spec-decode lines: read in full, every second). All 50
are scraped every second by one operator process. The test records the operator's RSS before the objects exist,
when all are scraped, and every second for a few windows, and asserts the peak stays below the memory limit the
chart gives the operator (``charts/specdeploy/values.yaml`` ``resources.limits.memory``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import hostile_pages as pages
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import manifest

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # asserts on time or memory: run alone

REPO = Path(__file__).resolve().parents[2]
OBJECTS = 50
WINDOW_SECONDS = 10
WATCH_SECONDS = 2 * WINDOW_SECONDS
MANY = pages.many_series()  # 100,000 spec-decode series, 7.8 MiB
LONG = pages.huge(int(7.5 * 1024 * 1024))()  # 7.5 MiB of other series, then the real spec-decode lines
GPUS_PER_NODE = 8


def chart_memory_limit_mib() -> float:
    values = yaml.safe_load((REPO / "charts" / "specdeploy" / "values.yaml").read_text())
    raw = str(values["resources"]["limits"]["memory"])
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", raw).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


def behaviour_for(draft: str | None) -> Behaviour:
    if draft == "hostile/many-series":
        return Behaviour(rate=None, page=lambda: MANY)
    if draft == "hostile/long-page":
        return Behaviour(rate=None, page=lambda: LONG)
    return Behaviour(rate=0.8 if draft else None)


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour_for).start()
    yield f
    f.stop()


def ensure_gpus(cluster: LocalCluster, kubectl: Kubectl, wanted: int) -> None:
    """One GPU per pod: add 8-GPU fake nodes (never a bigger node: other tests rely on 8 per node)."""
    nodes = kubectl.items("nodes")
    have = sum(int((n.get("status") or {}).get("allocatable", {}).get("nvidia.com/gpu", 0)) for n in nodes)
    missing = wanted - have
    if missing > 0:
        cluster.add_gpu_nodes(-(-missing // GPUS_PER_NODE), start=len(nodes), gpus=GPUS_PER_NODE)


def sd(i: int) -> dict[str, Any]:
    kind = "many-series" if i % 2 == 0 else "long-page"
    return manifest(
        f"bomb-{i:02d}",
        {
            "target": {"model": "org/target-8b"},
            "draft": {"model": f"hostile/{kind}"},
            "validation": {"policy": "Skip"},
            "rollback": {"windowSeconds": WINDOW_SECONDS, "warmupSeconds": 0, "minDraftTokens": 100},
            "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 5},
        },
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_fifty_hostile_pages_keep_the_operator_under_its_memory_limit(
    cluster: LocalCluster, kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    limit = chart_memory_limit_mib()
    ensure_gpus(cluster, kubectl, wanted=OBJECTS + 2 * GPUS_PER_NODE)
    pid = operator.pid
    rss_idle = rss_mib(pid)
    kubectl.apply([sd(i) for i in range(OBJECTS)], "-n", namespace)

    def messages() -> dict[str, str]:
        return {
            o["metadata"]["name"]: str(((o.get("status") or {}).get("acceptance") or {}).get("message", ""))
            for o in kubectl.items("sd", namespace)
        }

    def all_scraped() -> bool:
        said = messages()
        return len(said) == OBJECTS and all(
            ("more than 1024 spec-decode series" in m) if int(n[-2:]) % 2 == 0 else "no draft tokens" in m
            for n, m in said.items()
        )

    peak = rss_idle

    def sample_rss() -> float:
        nonlocal peak
        assert operator.alive(), f"operator exited:\n{operator.logs()[-3000:]}"
        rss = rss_mib(pid)
        peak = max(peak, rss)
        assert peak < limit, f"RSS {peak:.1f} MiB reached the chart's limit {limit:.0f} MiB (idle {rss_idle:.1f})"
        return rss

    def scraped_within_limit() -> bool:
        sample_rss()  # the ramp-up counts too: fail as soon as the limit is reached
        return all_scraped()

    wait_for("every object scraped and judged", scraped_within_limit, timeout=300, interval=1)
    rss_scraped = sample_rss()
    until = time.monotonic() + WATCH_SECONDS
    while time.monotonic() < until:
        sample_rss()
        time.sleep(1)
    rss_end = rss_mib(pid)
    scrapes = sum(s.scrapes for s in fleet.servers.values())
    said = messages()
    print(
        f"\n{OBJECTS} objects (25 x 100,000-series page of {len(MANY) / 2**20:.1f} MiB, 25 x {len(LONG) / 2**20:.1f} "
        f"MiB page within the caps), scraped every 1 s, watched {WATCH_SECONDS} s; {scrapes} pages served"
        f"\noperator RSS MiB: idle {rss_idle:.1f}, all scraped {rss_scraped:.1f}, peak {peak:.1f}, end {rss_end:.1f} "
        f"(chart limit {limit:.0f})"
        f"\n  bomb-00: {said['bomb-00'][:160]}\n  bomb-01: {said['bomb-01'][:160]}"
    )
    assert peak < limit, f"RSS peak {peak:.1f} MiB >= the chart's limit {limit:.0f} MiB"
    assert operator.alive()

"""Hostile ``/metrics`` pages never cause a rollback, never crash the operator, and each says why it holds.

One SpeculativeDeployment per hostile case, all in one namespace and judged at the same time by one operator
process, with a fast rollback policy (10 s windows, 2 consecutive bad windows, 100 draft tokens, no warm-up).
Every hostile page that carries numbers at all says "acceptance 0.20", so believing it would roll back; a
control object whose pods honestly report 0.20 proves the policy trips within the time the test waits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import hostile_pages as pages
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # asserts on time or memory: run alone

WINDOW_SECONDS = 10
WINDOWS_WATCHED = 3
TIMEOUT_SECONDS = 2
POLICY = {
    "minAcceptanceRate": 0.5,
    "windowSeconds": WINDOW_SECONDS,
    "consecutiveWindows": 2,
    "minDraftTokens": 100,
    "warmupSeconds": 0,
    "stableAfterSeconds": 5,
}
RSS_GROWTH_LIMIT_MIB = 64


@dataclass(frozen=True)
class Case:
    behaviour: Behaviour
    why: str  # a regular expression that a status.acceptance.message seen while watching (or an Event) must match


CASES: dict[str, Case] = {
    "garbage": Case(Behaviour(rate=None, page=pages.fixed(pages.garbage)), r"without spec-decode"),
    "garbled": Case(Behaviour(rate=None, page=pages.fixed(pages.garbled)), r"parse: .*label list not closed"),
    "truncated": Case(Behaviour(rate=None, page=pages.fixed(pages.truncated)), r"truncated"),
    "http500": Case(Behaviour(rate=0.2, status=500), r"HTTP 500"),
    "timeout": Case(Behaviour(rate=0.2, delay_seconds=TIMEOUT_SECONDS + 1.5), r"timeout: .*within 2s"),
    "huge": Case(Behaviour(rate=None, page=pages.huge(), content_length=False), r"too_large: .*exceeds"),
    "nan": Case(Behaviour(rate=None, page=pages.fixed(pages.nan)), r"value nan"),
    "inf": Case(Behaviour(rate=None, page=pages.fixed(pages.inf)), r"value inf"),
    "negative": Case(Behaviour(rate=None, page=pages.fixed(pages.negative)), r"value -800"),
    "decreasing": Case(Behaviour(rate=None, page=pages.decreasing()), r"went down"),
    "duplicate": Case(Behaviour(rate=None, page=pages.fixed(pages.duplicate)), r"duplicate series"),
    "zero": Case(Behaviour(rate=0.2, draft_tokens_per_second=0.0), r"no draft tokens"),
}
# A pod that restarts before every scrape while serving honestly at 0.8: the counter resets must not turn
# into a wrong number. It may hold or be healthy; if it reports a rate, the rate is the true one.
RESTARTING = Behaviour(rate=0.8, restart_every_scrape=True)
CONTROL = Behaviour(rate=0.2)


def draft_of(case: str) -> str:
    return f"hostile/{case}"


def behaviour_for(draft: str | None) -> Behaviour:
    """The fleet serves every vLLM pod of the cluster; pods of other tests' objects get an ordinary healthy page."""
    case = (draft or "").removeprefix("hostile/")
    if case == "restart":
        return RESTARTING
    if case == "control":
        return CONTROL
    if case in CASES:
        return CASES[case].behaviour
    return Behaviour(rate=0.8 if draft else None)


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour_for).start()
    yield f
    f.stop()


def sd(case: str) -> dict[str, Any]:
    return manifest(
        f"h-{case}",
        {
            "target": {"model": "org/target-8b"},
            "draft": {"model": draft_of(case)},
            "validation": {"policy": "Skip"},
            "rollback": POLICY,
            "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": TIMEOUT_SECONDS},
        },
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def statuses(kubectl: Kubectl, ns: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: dict(o.get("status") or {}) for o in kubectl.items("sd", ns)}


def scrape_errors(metrics: str, ns: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for m in re.finditer(r"^specdeploy_scrape_errors_total\{([^}]*)\} (\S+)$", metrics, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("namespace") == ns:
            out.setdefault(labels["name"], {})[labels["reason"]] = float(m.group(2))
    return out


def test_hostile_pages_hold_with_a_reason_and_never_roll_back(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    names = [*CASES, "restart", "control"]
    kubectl.apply([sd(c) for c in names], "-n", namespace)
    pid = operator.pid
    rss_start = rss_mib(pid)

    # Judged from the moment each object's pods are Ready (the tracker leaves NotReady).
    ready_at: dict[str, float] = {}

    def all_ready() -> bool:
        for name, st in statuses(kubectl, namespace).items():
            reason = (st.get("acceptance") or {}).get("reason")
            if name not in ready_at and reason and reason != "NotReady":
                ready_at[name] = time.monotonic()
        return len(ready_at) == len(names)

    wait_for("every object's pods Ready and scraped", all_ready, timeout=120, interval=0.5)
    rss_ready = rss_mib(pid)
    watch_until = max(ready_at.values()) + WINDOWS_WATCHED * WINDOW_SECONDS + 3
    rss_peak = rss_ready
    said: dict[str, set[str]] = {}  # every status.acceptance.message published while watching, per object
    while time.monotonic() < watch_until:
        assert operator.alive(), f"operator exited:\n{operator.logs()[-3000:]}"
        rss_peak = max(rss_peak, rss_mib(pid))
        for name, st in statuses(kubectl, namespace).items():
            said.setdefault(name, set()).add(str((st.get("acceptance") or {}).get("message", "")))
        time.sleep(1)
    rss_end = rss_mib(pid)
    final = statuses(kubectl, namespace)
    events = kubectl.items("events", namespace)
    errors = scrape_errors(operator.metrics(), namespace)

    print(f"\nhostile /metrics pages: {len(CASES)} cases + restart + control, one operator, watched "
          f"{WINDOWS_WATCHED} x {WINDOW_SECONDS} s windows after Ready")  # fmt: skip
    print(f"operator RSS MiB: start {rss_start:.1f}, all Ready {rss_ready:.1f}, peak {rss_peak:.1f}, "
          f"end {rss_end:.1f} (growth while hostile {rss_end - rss_ready:+.1f})")  # fmt: skip
    for name in names:
        acc = final[f"h-{name}"].get("acceptance") or {}
        print(f"  {name:<10} {acc.get('verdict', '-'):<8} {acc.get('reason', '-'):<26} "
              f"errors={errors.get(f'h-{name}', {})} :: {str(acc.get('message', ''))[:150]}")  # fmt: skip

    # The control object trips within the same time: the waiting was long enough for a rollback to happen.
    control = final["h-control"]
    assert condition(control, "RolledBack").get("status") == "True", control

    failures = []
    for name, case in [*CASES.items(), ("restart", None)]:
        st = final[f"h-{name}"]
        acc = st.get("acceptance") or {}
        if condition(st, "RolledBack").get("status") == "True" or st.get("revision", {}).get("failed"):
            failures.append(f"{name}: rolled back or marked failed: {st.get('revision')} {acc.get('message')}")
            continue
        if case is None:  # the restarting pod: holding or healthy, and any rate it reports is the true 0.8
            if acc.get("rate") is not None and abs(float(acc["rate"]) - 0.8) > 0.05:
                failures.append(f"restart: reported rate {acc['rate']}, the pod serves 0.8")
            continue
        if acc.get("verdict") != "Hold":
            failures.append(f"{name}: verdict {acc.get('verdict')} ({acc.get('message')})")
            continue
        texts = [str(acc.get("message", "")), *said.get(f"h-{name}", set())] + [
            str(e.get("message", "")) for e in events if e.get("involvedObject", {}).get("name") == f"h-{name}"
        ]
        if not any(re.search(case.why, text) for text in texts):
            failures.append(f"{name}: status/Events do not say why it holds (want /{case.why}/): {texts[0]!r}")
    assert not failures, "\n".join(failures)
    assert not [e for e in events if e.get("reason") == "RolledBack" and e["involvedObject"]["name"] != "h-control"]
    assert operator.alive()
    assert rss_end - rss_ready < RSS_GROWTH_LIMIT_MIB, f"RSS grew {rss_end - rss_ready:.1f} MiB"

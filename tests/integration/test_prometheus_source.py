"""``metrics.source: Prometheus`` against a real Prometheus (built from its Go module) on the real control plane.

Each Ready vLLM pod serves a scripted metrics page on its loopback pod IP (``tests.harness.fakevllm``); Prometheus
scrapes those pages every second through file service discovery, each target labelled as the chart's PodMonitor
makes prometheus-operator label it (``namespace``, ``pod``, ``specdeploy_io_name``, ...). The operator then sends
its PromQL to that Prometheus, which evaluates it: the same traffic must give the same decision as the ``Pods``
source, and a Prometheus that is down must hold the object, never roll it back, and say why in its status.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.prometheus import PodTargets, PrometheusServer, ScrapeJob, prometheus_bin
from tests.harness.specs import condition, manifest, sd_status

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GOOD, BAD = "org/good-draft", "org/bad-draft"
RATES = {GOOD: 0.8, BAD: 0.2}
ROLLBACK = {
    "minAcceptanceRate": 0.5,
    "windowSeconds": 10,
    "consecutiveWindows": 2,
    "minDraftTokens": 100,
    "warmupSeconds": 0,
    "stableAfterSeconds": 4,
}


def behaviour(draft: str | None) -> Behaviour:
    return Behaviour(rate=None) if draft is None else Behaviour(rate=RATES.get(draft, 0.7))


def chart_podmonitor(helm: Path) -> dict[str, Any]:
    """The chart's PodMonitor as `helm template` renders it (cluster-wide: every namespace)."""
    done = subprocess.run(
        [str(helm), "template", "sd", str(REPO / "charts" / "specdeploy"), "--set", "vllmPodMonitor.enabled=true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [pm] = [d for d in yaml.safe_load_all(done.stdout) if d and d.get("kind") == "PodMonitor"]
    pm["metadata"].setdefault("namespace", "default")
    return dict(pm)


def start_prometheus(cluster: LocalCluster, root: Path) -> tuple[PrometheusServer, PodTargets]:
    server = PrometheusServer(prometheus_bin(), root, jobs=[ScrapeJob("vllm")], query_log=True)
    targets = PodTargets(cluster.kubeconfig, server, "vllm", chart_podmonitor(cluster.bin_dir / "helm"))
    server.start()
    return server, targets.start()


def sd(name: str, draft: str, prometheus_url: str | None = None, **rollback: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2}
    if prometheus_url:
        metrics |= {"source": "Prometheus", "prometheus": {"url": prometheus_url}}
    return manifest(
        name,
        {
            "target": {"model": "org/target-8b", "tensorParallelSize": 1},
            "draft": {"model": draft},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
            "rollback": {**ROLLBACK, **rollback},
            "metrics": metrics,
        },
    )


@dataclass
class Run:
    """One operator on one namespace with five objects applied at once (the two tests share the waiting)."""

    namespace: str
    operator: OperatorProcess
    prometheus: PrometheusServer  # answers throughout
    down: PrometheusServer  # stopped before the first window; the "outage" object reads from it


@pytest.fixture(scope="module")
def run(cluster: LocalCluster, kubectl: Kubectl, crd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("prometheus-source")
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", ns)
    fleet = Fleet(cluster.kubeconfig, behaviour).start()
    prometheus, targets = start_prometheus(cluster, root / "up")
    down, down_targets = start_prometheus(cluster, root / "down")
    down.stop()  # every query the outage object sends is refused until the test starts it again
    op = OperatorProcess(kubeconfig=cluster.kubeconfig, namespaces=[ns], log_dir=root / "operator")
    try:
        op.start()
        objects = [
            sd("pods-good", GOOD),
            sd("prom-good", GOOD, prometheus.url),
            sd("pods-bad", BAD),
            sd("prom-bad", BAD, prometheus.url),
            sd("outage", BAD, down.url),
        ]
        kubectl.apply(objects, "-n", ns)
        yield Run(namespace=ns, operator=op, prometheus=prometheus, down=down)
    finally:
        op.stop()
        for t in (targets, down_targets):
            t.stop()
        for server in (prometheus, down):
            server.stop()
        fleet.stop()
        for obj in kubectl.items("sd", ns):
            kubectl.run(
                "patch", "sd", obj["metadata"]["name"], "-n", ns, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def wait_rolled_back(kubectl: Kubectl, name: str, ns: str, timeout: float = 120) -> dict[str, Any]:
    def rolled_back() -> dict[str, Any] | None:
        st = sd_status(kubectl, name, ns)
        return st if condition(st, "RolledBack").get("status") == "True" else None

    return wait_for(f"{name} rolled back", rolled_back, timeout=timeout)


def wait_stable(kubectl: Kubectl, name: str, ns: str, timeout: float = 120) -> dict[str, Any]:
    def stable() -> dict[str, Any] | None:
        st = sd_status(kubectl, name, ns)
        return st if st.get("revision", {}).get("stable") else None

    return wait_for(f"{name} stable", stable, timeout=timeout)


def test_prometheus_source_decides_as_the_pods_source_on_the_same_traffic(kubectl: Kubectl, run: Run) -> None:
    namespace, prometheus = run.namespace, run.prometheus
    bad = {name: wait_rolled_back(kubectl, name, namespace) for name in ("pods-bad", "prom-bad")}
    good = {name: wait_stable(kubectl, name, namespace) for name in ("pods-good", "prom-good")}

    # Bad acceptance: both sources roll back (a first revision: speculation off), with the measured rate.
    for name, st in bad.items():
        assert st["revision"]["serving"].endswith("-nospec"), name
        assert [f["id"] for f in st["revision"]["failed"]] == [st["revision"]["current"]], name
    events = [e for e in kubectl.items("events", namespace) if e.get("reason") == "RolledBack"]
    assert sorted(e["involvedObject"]["name"] for e in events if e["involvedObject"]["name"] != "outage") == [
        "pods-bad",
        "prom-bad",
    ]
    # Good acceptance: neither rolls back, both publish the same rate (Prometheus extrapolates; the ratio holds).
    for name, st in good.items():
        assert condition(st, "RolledBack").get("status") == "False", name
        assert st["acceptance"]["rate"] == pytest.approx(0.8, abs=0.03), name
        assert st["acceptance"]["podsCounted"] == 1, name
    assert good["prom-good"]["acceptance"]["rate"] == pytest.approx(good["pods-good"]["acceptance"]["rate"], abs=0.03)
    assert good["prom-good"]["acceptance"]["perPosition"][0] == pytest.approx(
        good["pods-good"]["acceptance"]["perPosition"][0], abs=0.03
    )
    # The numbers came from PromQL that this Prometheus evaluated: its query log holds the operator's queries.
    logged = prometheus.logged_queries()
    pod = kubectl.items("pods", namespace, "specdeploy.io/name=prom-good")[0]["metadata"]["name"]
    ours = [q for q in logged if f'namespace="{namespace}"' in q and pod in q]
    assert any(q.startswith("sum(increase(vllm:spec_decode_num_draft_tokens_total{") for q in ours), logged[-5:]
    assert any(q.startswith("sum by (position) (increase(") for q in ours), logged[-5:]
    # Speed (issue 14): both sources publish the time per output token from vLLM's histogram (sum and count
    # increases) and the output tokens per second; the same traffic gives the same numbers.
    perf = {
        name: wait_for(
            f"{name} status.performance",
            lambda name=name: (
                sd_status(kubectl, name, namespace).get("performance", {}).get("timePerOutputTokenSeconds")
                and sd_status(kubectl, name, namespace)["performance"]
            ),
            timeout=60,
        )
        for name in ("pods-good", "prom-good")
    }
    for name, p in perf.items():
        assert p["revision"] == good[name]["revision"]["serving"], name
        assert "control group" in p["message"] and "speedup" not in p, name
    pods_perf, prom_perf = perf["pods-good"], perf["prom-good"]
    assert prom_perf["timePerOutputTokenSeconds"] == pytest.approx(pods_perf["timePerOutputTokenSeconds"], rel=0.05)
    assert prom_perf["generationTokensPerSecond"] == pytest.approx(pods_perf["generationTokensPerSecond"], rel=0.25)
    assert any(q.startswith("sum(increase(vllm:request_time_per_output_token_seconds_sum{") for q in ours)


def test_a_prometheus_outage_holds_and_never_rolls_back(kubectl: Kubectl, run: Run) -> None:
    namespace, down = run.namespace, run.down

    def failed_queries() -> float:
        wanted = {"namespace": namespace, "name": "outage", "reason": "prometheus"}
        return sum(
            sample.value
            for family in text_string_to_metric_families(run.operator.metrics())
            for sample in family.samples
            if sample.name == "specdeploy_scrape_errors_total" and sample.labels == wanted
        )

    # Three windows without an answer: more than the two bad windows in a row that would roll the draft back.
    wait_for("three failed Prometheus windows", lambda: failed_queries() >= 3, timeout=90)
    st = sd_status(kubectl, "outage", namespace)
    assert condition(st, "RolledBack").get("status") != "True"
    assert not st["revision"].get("failed")
    acc = st["acceptance"]
    assert (acc["verdict"], acc["reason"]) == ("Hold", "NoData")
    message = acc["message"]
    assert "2 with pods that could not be read (prometheus: " in message, message
    assert f"127.0.0.1:{down.port}" in message, message  # which server, and that it did not answer
    assert "Connect" in message or "refused" in message, message

    # Prometheus back: the same bad traffic now rolls back, so the hold was the outage's doing.
    down.start()
    st = wait_rolled_back(kubectl, "outage", namespace, timeout=90)
    assert st["revision"]["serving"].endswith("-nospec")

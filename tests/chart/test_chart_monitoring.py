"""The chart's ServiceMonitor, PodMonitor and Grafana dashboard, loaded by the software they are written for.

prometheus-operator's own CRDs (from its Go module at the version pinned in hack/versions.env) are installed in the
local control plane, and `helm install` with the monitors and the dashboard enabled must be accepted by their real
schemas. Then a real Prometheus (hack/build-prometheus.sh) scrapes the scripted vLLM pods and the operator with the
labels those stored monitors give their targets, and every query of the dashboard, its variables' queries included,
must return series: a query that parses but matches nothing shows an empty panel to the user.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.chart.test_chart_install import Release, installed
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.gomodule import GoCrds, apply_crds, pinned
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.prometheus import (
    PodTargets,
    PrometheusServer,
    ScrapeJob,
    prometheus_bin,
    servicemonitor_target,
    wait_series,
)
from tests.harness.specs import condition, manifest, sd_status

pytestmark = [pytest.mark.chart, pytest.mark.integration]

# The two prometheus-operator CRDs the chart creates objects of (the other eight would only add apply time).
PROMETHEUS_OPERATOR_CRDS = GoCrds(
    "github.com/prometheus-operator/prometheus-operator",
    pinned("PROMETHEUS_OPERATOR_VERSION"),
    "example/prometheus-operator-crd",
    ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_servicemonitors.yaml"),
)
MONITORING = ("metrics.serviceMonitor.enabled=true", "vllmPodMonitor.enabled=true", "grafanaDashboard.enabled=true")
GOOD, BAD, BROKEN = "org/good-draft", "org/bad-draft", "org/broken-draft"
# What Grafana puts in for its interval macros on a short time range; scrapes here are 1 s apart.
MACROS = {"$__rate_interval": "30s", "$__interval": "30s", "${__rate_interval}": "30s", "${__interval}": "30s"}


def behaviour(draft: str | None) -> Behaviour:
    if draft == BROKEN:
        return Behaviour(rate=0.8, status=500)  # the operator counts scrape errors for it
    return Behaviour(rate={GOOD: 0.8, BAD: 0.2}.get(draft or "", 0.7) if draft else None)


@pytest.fixture(scope="module")
def monitoring_crds(kubectl: Kubectl) -> list[str]:
    return apply_crds(kubectl, PROMETHEUS_OPERATOR_CRDS.files())


@pytest.fixture(scope="module")
def release(
    cluster: LocalCluster,
    kubectl: Kubectl,
    helm_bin: str,
    monitoring_crds: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Release]:
    home = tmp_path_factory.mktemp("helm-monitoring")
    with installed(cluster, kubectl, helm_bin, home, namespaced=True, sets=MONITORING) as r:
        yield r


def stored(kubectl: Kubectl, kind: str, namespace: str) -> dict[str, Any]:
    [obj] = kubectl.items(kind, namespace, "app.kubernetes.io/managed-by=Helm")
    return obj


def test_monitors_are_accepted_by_prometheus_operator_schemas(release: Release, kubectl: Kubectl) -> None:
    pm = stored(kubectl, "podmonitors.monitoring.coreos.com", release.namespace)["spec"]
    sm = stored(kubectl, "servicemonitors.monitoring.coreos.com", release.namespace)["spec"]
    # Stored as written: nothing pruned as unknown by the structural schemas.
    assert pm["podTargetLabels"] == ["specdeploy.io/name", "specdeploy.io/revision"]
    assert pm["namespaceSelector"] == {"matchNames": release.watched}
    assert pm["podMetricsEndpoints"][0]["port"] == "http"
    assert sm["endpoints"][0] == {
        "port": "metrics",
        "path": "/metrics",
        "interval": "30s",
        "scrapeTimeout": "10s",
        "honorLabels": True,
    }
    # The schemas are enforced, so being accepted means something: a malformed duration is refused.
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "malformed", "namespace": release.namespace},
        "spec": {"selector": {}, "podMetricsEndpoints": [{"port": "http", "interval": "thirty seconds"}]},
    }
    refused = kubectl.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "interval" in refused.stderr, refused.stderr


# ----------------------------------------------------------------------------------------- the dashboard
@dataclass
class Scraped:
    prometheus: PrometheusServer
    namespace: str
    dashboard: dict[str, Any]


@pytest.fixture(scope="module")
def scraped(
    cluster: LocalCluster, kubectl: Kubectl, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scraped]:
    """The operator (Pods source) on three objects; Prometheus scrapes the pods and the operator as the monitors say."""
    ns = release.watched[0]
    pm = stored(kubectl, "podmonitors.monitoring.coreos.com", release.namespace)
    sm = stored(kubectl, "servicemonitors.monitoring.coreos.com", release.namespace)
    service = kubectl.get("service", f"{release.name}-specdeploy-metrics", release.namespace)
    [cm] = kubectl.items("configmaps", release.namespace, "app.kubernetes.io/component=dashboard")
    dashboard = json.loads(cm["data"]["specdeploy-overview.json"])
    root = tmp_path_factory.mktemp("prometheus-dashboard")
    honor = bool(sm["spec"]["endpoints"][0].get("honorLabels"))
    server = PrometheusServer(
        prometheus_bin(), root, jobs=[ScrapeJob("vllm"), ScrapeJob("operator", honor_labels=honor)]
    )
    fleet = Fleet(cluster.kubeconfig, behaviour).start()
    op = OperatorProcess(kubeconfig=cluster.kubeconfig, namespaces=[ns], log_dir=root / "operator")
    targets = PodTargets(cluster.kubeconfig, server, "vllm", pm)
    try:
        server.start()
        targets.start()
        op.start()
        server.set_targets("operator", [servicemonitor_target(sm, service, f"127.0.0.1:{op.metrics_port}")])
        rollback = {"windowSeconds": 10, "consecutiveWindows": 2, "minDraftTokens": 50, "warmupSeconds": 0}
        for name, draft in (("good", GOOD), ("bad", BAD), ("broken", BROKEN)):
            spec = {
                "target": {"model": "org/target-8b"},
                "draft": {"model": draft},
                "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
                "validation": {"policy": "Skip"},
                "rollback": rollback,
                "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 1},
            }
            kubectl.apply(manifest(name, spec), "-n", ns)
        wait_for(
            "the bad draft rolled back",
            lambda: condition(sd_status(kubectl, "bad", ns), "RolledBack").get("status") == "True",
            timeout=120,
        )
        wait_series(server, f'specdeploy_acceptance_rate{{namespace="{ns}",name="good"}}')
        wait_series(server, f'specdeploy_rollbacks_total{{namespace="{ns}",name="bad"}}')
        yield Scraped(prometheus=server, namespace=ns, dashboard=dashboard)
    finally:
        op.stop()
        targets.stop()
        fleet.stop()
        server.stop()
        for name in ("good", "bad", "broken"):
            kubectl.run("delete", "sd", name, "-n", ns, "--wait=false", check=False)


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target of the dashboard."""
    return [
        (f"panel {panel['title']!r} target {target.get('refId')}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def substitute(expr: str, variables: dict[str, str]) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), expr)


def test_every_dashboard_query_returns_series_from_the_scraped_pages(scraped: Scraped) -> None:
    queries = dashboard_queries(scraped.dashboard)
    titles = {p["title"] for p in scraped.dashboard["panels"]}
    assert {"Acceptance per revision (vLLM counters)", "Time per output token (p50, p95)"} <= titles
    # The variables as a user picks them: this namespace, every object ("All" is the regex .*).
    chosen = {"namespace": scraped.namespace, "name": ".*"}
    empty: list[str] = []
    for where, expr in queries:
        promql = substitute(expr, chosen)
        assert "$" not in promql, f"{where}: unsubstituted variable in {promql}"

        def answered(promql: str = promql) -> list[dict[str, Any]]:
            # A series whose every value is NaN (a quantile of no observations) draws nothing either.
            return [r for r in scraped.prometheus.query(promql) if math.isfinite(float(r["value"][1]))]

        try:
            wait_for(where, answered, timeout=45, interval=1)
        except AssertionError:
            empty.append(f"{where}: {promql}")
    assert not empty, "queries that match nothing:\n" + "\n".join(empty)


def test_dashboard_variables_list_the_objects(scraped: Scraped) -> None:
    variables = {v["name"]: v for v in scraped.dashboard["templating"]["list"]}
    ns_query = variables["namespace"]["query"]["query"]
    name_query = variables["name"]["query"]["query"]
    for query, label, wanted in (
        (ns_query, "namespace", {scraped.namespace}),
        (substitute(name_query, {"namespace": scraped.namespace}), "name", {"good", "bad", "broken"}),
    ):
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        assert m and m.group(2) == label, query
        values = set(scraped.prometheus.label_values(label, m.group(1)))
        assert wanted <= values, (query, values)


def test_acceptance_per_revision_separates_revisions(scraped: Scraped, kubectl: Kubectl) -> None:
    """The per-revision panel keys each series by the pod's revision label, the one the operator put on the pods."""
    [panel] = [p for p in scraped.dashboard["panels"] if p["title"] == "Acceptance per revision (vLLM counters)"]
    promql = substitute(panel["targets"][0]["expr"], {"namespace": scraped.namespace, "name": "good"})
    rows = wait_series(scraped.prometheus, promql)
    revision = sd_status(kubectl, "good", scraped.namespace)["revision"]["serving"]
    assert [(r["metric"]["specdeploy_io_revision"], round(float(r["value"][1]), 1)) for r in rows] == [(revision, 0.8)]

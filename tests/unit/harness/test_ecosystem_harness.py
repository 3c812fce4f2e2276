"""The harness pieces that stand in for prometheus-operator and fetch third-party CRDs: pure parts, no network.

``podmonitor_targets`` must label a pod's target as prometheus-operator does, or the dashboard and PromQL tests
would pass against series a user's Prometheus never holds; ``GoCrds`` must refuse a path that leaves the module and
a file that is not a CRD, since whatever it returns is applied to a cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.harness.gomodule import GoCrds, GoModuleError, check_crd_file, pinned
from tests.harness.prometheus import podmonitor_targets, sanitize, servicemonitor_target

PODMONITOR = {
    "metadata": {"name": "sd-specdeploy-vllm", "namespace": "specdeploy-system"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/component": "server"}},
        "namespaceSelector": {"matchNames": ["llm"]},
        "podTargetLabels": ["specdeploy.io/name", "specdeploy.io/revision"],
        "podMetricsEndpoints": [{"port": "http", "path": "/metrics"}],
    },
}


def pod(namespace: str = "llm", component: str = "server") -> dict[str, object]:
    labels = {"app.kubernetes.io/component": component, "specdeploy.io/name": "coder", "specdeploy.io/revision": "r1"}
    return {
        "metadata": {"name": "coder-abc", "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "vllm", "ports": [{"name": "http", "containerPort": 8000}]}]},
        "status": {"podIP": "127.3.1.7"},
    }


def test_pod_targets_carry_prometheus_operator_labels() -> None:
    assert podmonitor_targets(PODMONITOR, pod()) == [
        (
            "127.3.1.7:8000",
            {
                "namespace": "llm",
                "pod": "coder-abc",
                "container": "vllm",
                "endpoint": "http",
                "job": "specdeploy-system/sd-specdeploy-vllm",
                "specdeploy_io_name": "coder",
                "specdeploy_io_revision": "r1",
            },
        )
    ]
    assert podmonitor_targets(PODMONITOR, pod(namespace="other")) == []
    assert podmonitor_targets(PODMONITOR, pod(component="validator")) == []
    assert sanitize("app.kubernetes.io/name") == "app_kubernetes_io_name"


def test_service_target_is_refused_when_the_monitor_does_not_select_the_service() -> None:
    sm = {
        "metadata": {"name": "sd"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "endpoints": [{"port": "metrics"}]},
    }
    service = {"metadata": {"name": "sd-metrics", "namespace": "sys", "labels": {"app": "x"}}}
    assert servicemonitor_target(sm, service, "127.0.0.1:9") == (
        "127.0.0.1:9",
        {"namespace": "sys", "service": "sd-metrics", "endpoint": "metrics", "job": "sd-metrics"},
    )
    with pytest.raises(RuntimeError, match="does not select"):
        servicemonitor_target(sm, {"metadata": {**service["metadata"], "labels": {}}}, "127.0.0.1:9")


def test_go_crds_refuse_paths_outside_the_module_and_unpinned_versions() -> None:
    with pytest.raises(GoModuleError, match="relative path inside the module"):
        GoCrds("github.com/a/b", "v1.0.0", "../escape")
    with pytest.raises(GoModuleError, match="pinned semantic version"):
        GoCrds("github.com/a/b", "latest", "crds")
    with pytest.raises(GoModuleError, match="not a Go module path"):
        GoCrds("not a module", "v1.0.0", "crds")
    assert pinned("PROMETHEUS_OPERATOR_VERSION").startswith("v0.")


def test_a_file_that_is_not_a_crd_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("kind: ClusterRole\nmetadata: {name: evil}\n")
    with pytest.raises(GoModuleError, match=r"x\.yaml: expected only CustomResourceDefinitions, found 'ClusterRole'"):
        check_crd_file(f)
    f.write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.b.c}\n")
    assert check_crd_file(f) == ["a.b.c"]


def test_a_bare_equals_sign_reads_as_a_string(tmp_path: Path) -> None:
    """prometheus-operator's AlertmanagerConfig CRD has ``- =`` in an enum (YAML 1.1's "value" tag for PyYAML)."""
    f = tmp_path / "crd.yaml"
    f.write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.b.c}\n"
        "spec:\n  enum:\n  - =\n  - '!='\n"
    )
    assert check_crd_file(f) == ["a.b.c"]

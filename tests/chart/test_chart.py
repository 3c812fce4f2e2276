"""What `helm install charts/specdeploy` gives a user, checked on the real Helm's rendering.

The RBAC rules are compared to the exact list the operator uses, so that a new permission is a reviewed
change here and never a silent widening; Secrets and wildcards must never appear.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.chart.conftest import (
    CHART,
    INFERENCE_POOL_RULES,
    KUBE_VERSION,
    LEADER_WORKER_SET_RULES,
    OPERATOR_RULES,
    PEERING_VERBS,
    RELEASE,
    RELEASE_NAMESPACE,
    Manifest,
    Render,
    run_helm,
)

pytestmark = pytest.mark.chart

NAMESPACED = "ci/namespaced-values.yaml"
CLUSTERWIDE = "ci/clusterwide-values.yaml"
FULLNAME = f"{RELEASE}-specdeploy"


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def flatten_rules(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """One entry per (group, resource); a pair granted twice would hide a duplicate, so it fails here."""
    flat: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in flat, f"{group}/{resource} granted twice"
                flat[(group, resource)] = set(rule["verbs"])
    return flat


def assert_least_privilege(rules: list[dict[str, Any]]) -> None:
    text = json.dumps(rules)
    assert "*" not in text, f"wildcard in RBAC rules: {text}"
    assert "secrets" not in text, "the operator must never be granted Secrets"
    assert not any("resourceNames" in r or "nonResourceURLs" in r for r in rules)


def container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Manifest = containers[0]
    return result


def env_of(deployment: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


# --- lint ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, NAMESPACED, CLUSTERWIDE])
def test_helm_lint_strict_passes(helm_bin: str, values: str | None) -> None:
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if values:
        args += ["-f", str(CHART / values)]
    done = run_helm(helm_bin, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


# --- RBAC ------------------------------------------------------------------------------------------------


def test_default_install_is_cluster_wide_with_exactly_the_operator_rules(render: Render) -> None:
    docs = render()
    role = one(docs, "ClusterRole")
    assert flatten_rules(role["rules"]) == OPERATOR_RULES
    assert_least_privilege(role["rules"])
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FULLNAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}]
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding")
    assert one(docs, "ServiceAccount")["metadata"]["name"] == FULLNAME


def test_namespaced_install_grants_one_role_per_watched_namespace_and_nothing_cluster_wide(render: Render) -> None:
    docs = render(NAMESPACED)
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(docs, "RoleBinding")}
    assert set(roles) == set(bindings) == {"llm", "llm-staging"}
    expected = {**OPERATOR_RULES, ("kopf.dev", "kopfpeerings"): PEERING_VERBS}
    for ns, role in roles.items():
        assert flatten_rules(role["rules"]) == expected, ns
        assert_least_privilege(role["rules"])
        binding = bindings[ns]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
        # The subject lives in the release namespace, not the watched one.
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}]


def test_cluster_wide_peering_grants_cluster_peerings_only(render: Render) -> None:
    rules = flatten_rules(one(render(CLUSTERWIDE), "ClusterRole")["rules"])
    assert rules == {**OPERATOR_RULES, ("kopf.dev", "clusterkopfpeerings"): PEERING_VERBS}


def test_inference_pool_verbs_are_granted_only_when_enabled(render: Render) -> None:
    """Issue 15: the InferencePool verbs come with inferencePool.enabled, and only then."""
    assert ("inference.networking.k8s.io", "inferencepools") not in flatten_rules(one(render(), "ClusterRole")["rules"])
    role = one(render(sets=("inferencePool.enabled=true",)), "ClusterRole")
    assert flatten_rules(role["rules"]) == {**OPERATOR_RULES, **INFERENCE_POOL_RULES}
    assert_least_privilege(role["rules"])


def test_leaderworkerset_verbs_and_flag_come_only_when_enabled(render: Render) -> None:
    """Issue 16: the operator gets --leaderworkerset and the leaderworkersets verbs with leaderWorkerSet.enabled,
    and neither without it."""
    off = render()
    assert ("leaderworkerset.x-k8s.io", "leaderworkersets") not in flatten_rules(one(off, "ClusterRole")["rules"])
    assert "--leaderworkerset" not in container(one(off, "Deployment"))["args"]
    on = render(sets=("leaderWorkerSet.enabled=true",))
    role = one(on, "ClusterRole")
    assert flatten_rules(role["rules"]) == {**OPERATOR_RULES, **LEADER_WORKER_SET_RULES}
    assert_least_privilege(role["rules"])
    assert "--leaderworkerset" in container(one(on, "Deployment"))["args"]


def test_rbac_create_false_renders_no_rbac(render: Render) -> None:
    docs = render(sets=("rbac.create=false",))
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_existing_service_account_is_used_and_not_created(render: Render) -> None:
    docs = render(sets=("serviceAccount.create=false", "serviceAccount.name=ops-bot"))
    assert not of_kind(docs, "ServiceAccount")
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops-bot"
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "ops-bot"


def test_existing_service_account_without_a_name_is_refused(helm_bin: str) -> None:
    done = run_helm(
        helm_bin,
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "serviceAccount.create=false",
    )
    assert done.returncode != 0
    assert "serviceAccount.name" in done.stderr


# --- the operator Deployment -----------------------------------------------------------------------------


def test_operator_runs_once_with_recreate_and_probes_on_kopf_liveness(render: Render) -> None:
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    c = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    assert c["args"] == [
        "run",
        "--all-namespaces",
        "--standalone",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
        "--metrics-port",
        "9090",
        "--allowed-images=*",
        "--allowed-service-accounts=*",
        "--allowed-priority-classes=*",
        "--allowed-prometheus-urls=",
    ]
    assert c["image"] == "ghcr.io/specdeploy/operator:0.1.0"
    env = env_of(deployment)
    assert env["SPECDEPLOY_VALIDATOR_IMAGE"] == "ghcr.io/specdeploy/validator:0.1.0"
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_namespaced_values_reach_the_operator_command_line_and_env(render: Render) -> None:
    deployment = one(render(NAMESPACED), "Deployment")
    c = container(deployment)
    assert c["args"] == [
        "run",
        "--namespace",
        "llm",
        "--namespace",
        "llm-staging",
        "--peering",
        "specdeploy-llm",
        "--peering-lifetime",
        "30",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
        "--metrics-port",
        "9191",
        "--allowed-images=*",
        "--allowed-service-accounts=*",
        "--allowed-priority-classes=*",
        "--allowed-prometheus-urls=",
        "--debug",
    ]
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"] == 9191
    assert c["image"] == (
        "registry.local/specdeploy/operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    env = env_of(deployment)
    assert env["SPECDEPLOY_VALIDATOR_IMAGE"] == "registry.local/specdeploy/validator:0.1.0-rc1"
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"


def test_operator_meets_the_restricted_pod_security_profile(render: Render) -> None:
    for values in ((), (NAMESPACED,), (CLUSTERWIDE,)):
        deployment = one(render(*values), "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container(deployment)["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["runAsNonRoot"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        # A read-only root still leaves a writable /tmp.
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_verbose_log_level_maps_to_the_verbose_flag(render: Render) -> None:
    args = container(one(render(sets=("logLevel=verbose",)), "Deployment"))["args"]
    assert args[-1] == "--verbose" and "--debug" not in args


def test_resources_are_set_and_overridable(render: Render) -> None:
    assert container(one(render(), "Deployment"))["resources"]["limits"] == {"memory": "384Mi"}
    assert container(one(render(CLUSTERWIDE), "Deployment"))["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


# --- labels ----------------------------------------------------------------------------------------------


RECOMMENDED = {"helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version"}


def test_every_object_carries_the_recommended_labels(render: Render) -> None:
    for values in ((), (NAMESPACED,), (CLUSTERWIDE,)):
        for doc in render(*values):
            labels = doc["metadata"].get("labels", {})
            where = f"{doc['kind']}/{doc['metadata']['name']} with {values}"
            assert set(labels) >= RECOMMENDED, where
            assert labels["app.kubernetes.io/managed-by"] == "Helm", where
            assert labels["helm.sh/chart"] == "specdeploy-0.1.0", where
            assert labels["app.kubernetes.io/instance"] == RELEASE, where


def test_selectors_use_name_and_instance_only_and_match_the_pod(render: Render) -> None:
    docs = render(NAMESPACED)
    deployment = one(docs, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "specdeploy", "app.kubernetes.io/instance": RELEASE}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service")
    assert service["spec"]["selector"] == selector
    assert selector.items() <= pod_labels.items()
    # The ServiceMonitor must find the Service, and name a port the Service has.
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NAMESPACE]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"


# --- monitoring ------------------------------------------------------------------------------------------


def test_monitors_and_dashboard_are_opt_in(render: Render) -> None:
    kinds = Counter(d["kind"] for d in render())
    assert kinds["ServiceMonitor"] == kinds["PodMonitor"] == kinds["ConfigMap"] == 0
    assert kinds["CustomResourceDefinition"] == 0


def test_vllm_pod_monitor_scrapes_the_http_port_of_operator_made_pods(render: Render) -> None:
    namespaced = one(render(NAMESPACED), "PodMonitor")["spec"]
    assert namespaced["selector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "specdeploy", "app.kubernetes.io/component": "server"}
    }
    assert namespaced["podMetricsEndpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert namespaced["namespaceSelector"] == {"matchNames": ["llm", "llm-staging"]}
    assert namespaced["podTargetLabels"] == ["specdeploy.io/name", "specdeploy.io/revision"]
    clusterwide = one(render(CLUSTERWIDE), "PodMonitor")["spec"]
    assert clusterwide["namespaceSelector"] == {"any": True}
    assert clusterwide["podMetricsEndpoints"][0]["interval"] == "10s"


def test_grafana_dashboard_shows_acceptance_length_rollbacks_and_errors(render: Render) -> None:
    cm = one(render(NAMESPACED), "ConfigMap")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["specdeploy-overview.json"])
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in dashboard["panels"]}
    assert "specdeploy_acceptance_rate{" in exprs["Draft acceptance rate"]
    assert "specdeploy_mean_accepted_length{" in exprs["Mean accepted length"]
    assert "increase(specdeploy_rollbacks_total{" in exprs["Rollbacks"]
    assert "specdeploy_scrape_errors_total{" in exprs["Metric scrape errors"]
    assert "by (namespace, name)" in exprs["Rollbacks"]
    # issue 14: speed per revision, from the operator's per-revision gauges
    assert "specdeploy_time_per_output_token_seconds{" in exprs["Time per output token per revision (operator)"]
    assert "specdeploy_generation_tokens_per_second{" in exprs["Output tokens per second per revision"]
    assert "specdeploy_running_requests{" in exprs["Running requests per pod per revision"]
    # Panels must not overlap on Grafana's 24-column grid.
    cells: set[tuple[int, int]] = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine
    extra = one(render(CLUSTERWIDE), "ConfigMap")["metadata"]["labels"]
    assert extra["team"] == "inference" and extra["grafana_dashboard"] == "1"


# --- peering ---------------------------------------------------------------------------------------------


def test_peering_installs_kopf_crds_and_the_peering_objects_as_hooks(render: Render) -> None:
    docs = render(NAMESPACED)
    crds = {c["metadata"]["name"]: c for c in of_kind(docs, "CustomResourceDefinition")}
    assert set(crds) == {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}
    for crd in crds.values():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert crds["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    peerings = of_kind(docs, "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings} == {
        ("llm", "specdeploy-llm"),
        ("llm-staging", "specdeploy-llm"),
    }
    for p in peerings:
        assert p["apiVersion"] == "kopf.dev/v1"
        assert p["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    cluster = of_kind(render(CLUSTERWIDE), "ClusterKopfPeering")
    assert [c["metadata"]["name"] for c in cluster] == ["specdeploy"]
    assert "--peering" in container(one(render(CLUSTERWIDE), "Deployment"))["args"]


def test_peering_crds_can_be_left_to_another_operator(render: Render) -> None:
    docs = render(NAMESPACED, sets=("operator.peering.createCRD=false",))
    assert not of_kind(docs, "CustomResourceDefinition")
    assert len(of_kind(docs, "KopfPeering")) == 2


# --- values schema ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("image.tagg=v1", "tagg"),
        ("replicaCount=2", "replicaCount"),
        ("metrics.serviceMonitor.enabeld=true", "enabeld"),
        ("operator.peering.nmae=x", "nmae"),
    ],
)
def test_schema_refuses_an_unknown_key_and_names_it(helm_bin: str, setting: str, named: str) -> None:
    done = run_helm(helm_bin, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", setting)
    assert done.returncode != 0, f"--set {setting} was accepted"
    assert named in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("logLevel=warning", "/logLevel"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("metrics.port=8080", "/metrics/port"),
        ("watchNamespaces[0]=Not_A_Namespace", "/watchNamespaces/0"),
        ("securityContext.runAsUser=0", "/securityContext/runAsUser"),
    ],
)
def test_schema_refuses_a_bad_value_and_names_the_field(helm_bin: str, setting: str, named: str) -> None:
    done = run_helm(helm_bin, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", setting)
    assert done.returncode != 0, f"--set {setting} was accepted"
    assert named in done.stderr, done.stderr


def test_chart_refuses_kubernetes_older_than_1_29(helm_bin: str) -> None:
    done = run_helm(helm_bin, "template", RELEASE, str(CHART), "--kube-version", "1.28.9")
    assert done.returncode != 0
    assert "kubeVersion" in done.stderr or "1.29" in done.stderr, done.stderr


# --- NOTES.txt -------------------------------------------------------------------------------------------


def test_notes_tell_how_to_follow_objects_and_upgrade_the_crd(helm_bin: str) -> None:
    done = run_helm(
        helm_bin,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--dry-run=client",
        "-f",
        str(CHART / NAMESPACED),
    )
    assert done.returncode == 0, done.stderr
    notes = done.stdout[done.stdout.index("NOTES:") :]
    assert "kubectl get sd -n llm" in notes
    assert "kubectl apply --server-side --force-conflicts -f crds/" in notes
    assert "only these namespaces: llm, llm-staging" in notes
    assert 'KopfPeering "specdeploy-llm"' in notes

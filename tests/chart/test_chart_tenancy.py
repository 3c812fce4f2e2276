"""Multi-tenant safety in the chart: the admin's policy reaches the operator, and the opt-in guards render right.

Checked on the real Helm's rendering: the operator policy flags parse with `specdeploy run` into the policy the
values describe; the ValidatingAdmissionPolicy, the egress NetworkPolicy and the PodMonitor's scrape limits
appear only when asked for and say what docs/install.md says they do.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from specdeploy.cli import build_parser
from specdeploy.commands.run import admin_policy
from specdeploy.policy import AdminPolicy
from tests.chart.conftest import CHART, KUBE_VERSION, RELEASE, RELEASE_NAMESPACE, Manifest, Render, run_helm

pytestmark = pytest.mark.chart

FULLNAME = f"{RELEASE}-specdeploy"


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def policy_of(docs: list[Manifest]) -> AdminPolicy:
    [deployment] = of_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return admin_policy(build_parser().parse_args(args))


def test_the_default_policy_allows_any_image_and_no_prometheus_url_and_refuses_trust_remote_code(
    render: Render,
) -> None:
    assert policy_of(render()) == AdminPolicy(prometheus_urls=())


def test_policy_values_become_the_operators_policy(render: Render) -> None:
    sets = (
        "policy.allowedImages={vllm/vllm-openai:*,registry.example.com/llm/*}",
        "policy.allowedPriorityClasses={gpu-*}",
        "policy.allowedPrometheusURLs={http://prometheus-operated.monitoring:9090}",
        "policy.reservedEnv={CUDA_VISIBLE_DEVICES}",
        "policy.allowTrustRemoteCode=true",
    )
    assert policy_of(render(sets=sets)) == AdminPolicy(
        images=("vllm/vllm-openai:*", "registry.example.com/llm/*"),
        priority_classes=("gpu-*",),
        prometheus_urls=("http://prometheus-operated.monitoring:9090",),
        allow_trust_remote_code=True,
        reserved_env=("CUDA_VISIBLE_DEVICES",),
    )


def test_an_empty_list_reaches_the_operator_as_allowing_nothing(helm_bin: str) -> None:
    done = run_helm(
        helm_bin, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
        "--set-json", "policy.allowedServiceAccounts=[]", "--set-json", "policy.allowedImages=[]",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    policy = policy_of([d for d in yaml.safe_load_all(done.stdout) if d])
    assert policy.service_accounts == policy.images == ()


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("policy.allowedPrometheusURLs={http://user@prometheus:9090}", "allowedPrometheusURLs"),
        ("policy.allowedPrometheusURLs={http://prometheus:9090/#x}", "allowedPrometheusURLs"),
        ("policy.reservedEnv={BAD-NAME}", "reservedEnv"),
        ("admissionPolicy.validationActions={Block}", "validationActions"),
    ],
)
def test_schema_refuses_bad_policy_values(helm_bin: str, setting: str, named: str) -> None:
    done = run_helm(helm_bin, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", setting)
    assert done.returncode != 0, f"--set {setting} was accepted"
    assert named in done.stderr, done.stderr


def test_guards_are_opt_in(render: Render) -> None:
    kinds = {d["kind"] for d in render()}
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "NetworkPolicy"}


def validations(docs: list[Manifest]) -> list[dict[str, Any]]:
    [vap] = of_kind(docs, "ValidatingAdmissionPolicy")
    result: list[dict[str, Any]] = vap["spec"]["validations"]
    return result


def test_admission_policy_checks_the_requesters_rights_on_spec_changes_only(render: Render) -> None:
    docs = render(sets=("admissionPolicy.enabled=true",))
    [vap] = of_kind(docs, "ValidatingAdmissionPolicy")
    [binding] = of_kind(docs, "ValidatingAdmissionPolicyBinding")
    assert vap["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert binding["spec"]["policyName"] == vap["metadata"]["name"] == f"{FULLNAME}-requester-rights"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]  # cluster-wide operator: every namespace
    assert vap["spec"]["failurePolicy"] == "Fail"
    [rule] = vap["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["speculativedeployments"] and rule["operations"] == ["CREATE", "UPDATE"]
    assert "oldObject.spec != object.spec" in vap["spec"]["matchConditions"][0]["expression"]
    checks = [(v["expression"], v["messageExpression"]) for v in validations(docs)]
    wanted = {  # the field a refusal names -> (resource asked about, how many checks)
        "'spec: '": ("resource('pods')", 1),
        "'spec.serving.hfTokenSecretRef.name: '": ("resource('secrets')", 1),
        "'spec.serving.env: ": ("size(variables.envSecrets) <= 12", 1),
        "'spec.serving.env[].valueFrom.secretKeyRef.name: '": ("resource('secrets')", 12),
        "'spec.serving.env[].valueFrom.configMapKeyRef.name: '": ("resource('configmaps')", 4),
        "'spec.serving.serviceAccountName: '": ("resource('serviceaccounts')", 1),
        "'spec.serving.modelCache.persistentVolumeClaim: '": ("resource('persistentvolumeclaims')", 1),
    }
    for named, (asked, count) in wanted.items():
        found = [e for e, m in checks if m.startswith(named)]
        assert len(found) == count and all(asked in e for e in found), (named, found)
    assert len(checks) == sum(count for _, count in wanted.values())
    # The API server allows two authorizer checks per expression (CEL cost): each expression makes at most one.
    assert all(e.count(".check(") <= 1 for e, _ in checks)


def test_admission_policy_binds_to_the_watched_namespaces(render: Render) -> None:
    [binding] = of_kind(
        render("ci/namespaced-values.yaml", sets=("admissionPolicy.enabled=true",)), "ValidatingAdmissionPolicyBinding"
    )
    selector = binding["spec"]["matchResources"]["namespaceSelector"]
    assert selector == {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["llm", "llm-staging"]}]
    }


def test_admission_policy_needs_kubernetes_1_30(helm_bin: str) -> None:
    args = ("template", RELEASE, str(CHART), "--set", "admissionPolicy.enabled=true", "--kube-version")
    done = run_helm(helm_bin, *args, "1.29.9")
    assert done.returncode != 0 and "1.30" in done.stderr, done.stderr
    assert run_helm(helm_bin, *args, "1.30.0").returncode == 0


def test_network_policy_allows_dns_api_server_vllm_pods_and_listed_prometheus_only(render: Render) -> None:
    sets = (
        "networkPolicy.enabled=true",
        "networkPolicy.apiServerCIDRs={127.0.0.10/32}",
        "networkPolicy.prometheus[0].namespace=monitoring",
        "networkPolicy.prometheus[0].podLabels.app\\.kubernetes\\.io/name=prometheus",
        "networkPolicy.prometheus[0].port=9090",
        "networkPolicy.prometheus[1].cidr=192.0.2.0/24",
        "networkPolicy.prometheus[1].port=443",
    )
    [np] = of_kind(render("ci/namespaced-values.yaml", sets=sets), "NetworkPolicy")
    spec = np["spec"]
    assert spec["policyTypes"] == ["Egress"]
    selector = {"app.kubernetes.io/name": "specdeploy", "app.kubernetes.io/instance": RELEASE}
    assert spec["podSelector"]["matchLabels"] == selector
    dns, api, vllm, prom, external = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert api["to"] == [{"ipBlock": {"cidr": "127.0.0.10/32"}}]
    assert [p["port"] for p in api["ports"]] == [443, 6443]
    assert vllm["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert vllm["to"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "specdeploy",
        "app.kubernetes.io/component": "server",
    }
    assert vllm["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["llm", "llm-staging"]
    assert prom["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert prom["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert external["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]


def test_network_policy_without_the_api_server_address_is_refused_with_instructions(helm_bin: str) -> None:
    done = run_helm(
        helm_bin, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", "networkPolicy.enabled=true"
    )
    assert done.returncode != 0 and "networkPolicy.apiServerCIDRs is required" in done.stderr, done.stderr


def test_vllm_pod_monitor_bounds_every_scrape(render: Render) -> None:
    [monitor] = of_kind(render("ci/clusterwide-values.yaml"), "PodMonitor")
    spec = monitor["spec"]
    assert (spec["sampleLimit"], spec["labelLimit"]) == (20000, 64)
    assert (spec["labelNameLengthLimit"], spec["labelValueLengthLimit"]) == (128, 512)
    assert spec["bodySizeLimit"] == "4MiB"


def test_notes_say_what_the_create_right_amounts_to_and_how_to_guard_it(helm_bin: str) -> None:
    done = run_helm(helm_bin, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--dry-run=client")
    assert done.returncode == 0, done.stderr
    notes = done.stdout[done.stdout.index("NOTES:") :]
    assert "mount any Secret or ConfigMap key" in notes
    assert "--set admissionPolicy.enabled=true" in notes
    assert "metrics.source Prometheus is refused until you list yours" in notes
    assert "--trust-remote-code refused" in notes

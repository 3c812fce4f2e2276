"""The chart's ValidatingAdmissionPolicy on the real API server: a SpeculativeDeployment is accepted only from a
requester who could create its pods and read the Secrets it names.

Three users, all allowed to create SpeculativeDeployments in the namespace: alice may also create pods and get the
Secret ``hf``, carol may create pods but read no Secret, bob may do nothing else. The requests are made by the
admin impersonating each user (``kubectl --as``): the API server's authorizer, which the policy asks, checks the
impersonated user. The policy objects are the chart's own (``helm template --show-only``), applied as they are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, KUBE_VERSION, RELEASE, run_helm
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.specs import manifest

pytestmark = [pytest.mark.chart, pytest.mark.integration]

SD = "speculativedeployments.specdeploy.io"


def sd(name: str, **serving: Any) -> dict[str, Any]:
    return manifest(
        name,
        {
            "target": {"model": "org/target"},
            "draft": {"model": "org/draft"},
            "validation": {"policy": "Skip"},
            "serving": serving,
        },
    )


def role(name: str, rules: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": name}, "rules": rules},
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    ]


SD_VERBS = ["get", "create", "update", "patch"]
SD_RULE = {"apiGroups": ["specdeploy.io"], "resources": ["speculativedeployments"], "verbs": SD_VERBS}
PODS_RULE = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
HF_RULE = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["hf"], "verbs": ["get"]}


@pytest.fixture(scope="module")
def guarded(kubectl: Kubectl, crd: str, helm_bin: str) -> Iterator[str]:
    """A namespace with the three users' Roles, the Secret ``hf``, and the chart's policy bound to it."""
    ns = f"vap-{uuid.uuid4().hex[:6]}"
    rendered = run_helm(
        helm_bin, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
        "--show-only", "templates/admission-policy.yaml",
        "--set", "admissionPolicy.enabled=true", "--set", f"admissionPolicy.namespaces={{{ns}}}",
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    policy = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert [d["kind"] for d in policy] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    for d in policy:  # another test's install of the chart must not collide with these cluster-scoped objects
        d["metadata"]["name"] = f"{d['metadata']['name']}-{ns}"
    policy[1]["spec"]["policyName"] = policy[0]["metadata"]["name"]
    kubectl.run("create", "namespace", ns)
    try:
        kubectl.run("create", "secret", "generic", "hf", "--from-literal=token=hf_x", "-n", ns)
        kubectl.run("create", "secret", "generic", "other", "--from-literal=key=x", "-n", ns)
        objects = [
            *role("alice", [SD_RULE, PODS_RULE, HF_RULE], "alice"),
            *role("carol", [SD_RULE, PODS_RULE], "carol"),
            *role("bob", [SD_RULE], "bob"),
        ]
        kubectl.apply({"apiVersion": "v1", "kind": "List", "items": objects}, "-n", ns)
        kubectl.apply({"apiVersion": "v1", "kind": "List", "items": policy})
        # The API server picks a new policy up from its informer: wait until it refuses bob.
        wait_for(
            "the admission policy to be in force",
            lambda: "denied request" in create_as(kubectl, "bob", ns, sd("probe"), dry_run=True),
            timeout=30,
        )
        yield ns
    finally:
        for d in policy:
            kubectl.run("delete", d["kind"], d["metadata"]["name"], "--ignore-not-found", check=False)
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def create_as(kubectl: Kubectl, user: str, ns: str, obj: dict[str, Any], *, dry_run: bool = False) -> str:
    """Create ``obj`` as ``user``; the empty string when accepted, the API server's refusal otherwise."""
    extra = ["--dry-run=server"] if dry_run else []
    done = kubectl.run("create", "-f", "-", "-n", ns, f"--as={user}", *extra, stdin=json.dumps(obj), check=False)
    return "" if done.returncode == 0 else done.stderr


def test_a_requester_who_may_create_the_pods_and_read_the_secret_is_accepted(kubectl: Kubectl, guarded: str) -> None:
    assert create_as(kubectl, "alice", guarded, sd("alices", hfTokenSecretRef={"name": "hf"})) == ""
    assert kubectl.get("sd", "alices", guarded) is not None


def test_a_requester_who_may_only_create_speculativedeployments_is_refused(kubectl: Kubectl, guarded: str) -> None:
    refusal = create_as(kubectl, "bob", guarded, sd("bobs", hfTokenSecretRef={"name": "hf"}))
    assert "denied request" in refusal
    assert "spec: bob may not create pods in namespace " + guarded in refusal
    assert kubectl.get("sd", "bobs", guarded) is None


def test_the_refusal_names_the_secret_field_the_requester_may_not_read(kubectl: Kubectl, guarded: str) -> None:
    refusal = create_as(kubectl, "carol", guarded, sd("carols", hfTokenSecretRef={"name": "hf"}))
    assert f"spec.serving.hfTokenSecretRef.name: carol may not get Secret hf in namespace {guarded}" in refusal
    env = [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "other", "key": "key"}}}]
    refusal = create_as(kubectl, "alice", guarded, sd("alices-env", env=env))
    assert f"spec.serving.env[].valueFrom.secretKeyRef.name: alice may not get Secret other in namespace {guarded}" in (
        refusal
    )
    assert create_as(kubectl, "carol", guarded, sd("carols-plain")) == ""  # no Secret named: pods create suffices


def test_an_edit_of_the_spec_is_checked_and_a_metadata_only_change_is_not(kubectl: Kubectl, guarded: str) -> None:
    """The operator's finalizer patch changes no spec: it must pass although the operator may not create pods."""
    assert create_as(kubectl, "alice", guarded, sd("shared")) == ""
    spec_patch = json.dumps({"spec": {"serving": {"hfTokenSecretRef": {"name": "hf"}}}})
    bob_edit = kubectl.run(
        "patch", "sd", "shared", "-n", guarded, "--type=merge", "-p", spec_patch, "--as=bob", check=False
    )
    assert bob_edit.returncode != 0 and "spec: bob may not create pods" in bob_edit.stderr
    label = json.dumps({"metadata": {"labels": {"team": "b"}, "finalizers": ["specdeploy.io/finalizer"]}})
    bob_label = kubectl.run(
        "patch", "sd", "shared", "-n", guarded, "--type=merge", "-p", label, "--as=bob", check=False
    )
    assert bob_label.returncode == 0, bob_label.stderr
    kubectl.run("patch", "sd", "shared", "-n", guarded, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def test_a_spec_naming_more_secrets_than_the_policy_can_check_is_refused_and_the_most_it_can_check_fits(
    kubectl: Kubectl, guarded: str
) -> None:
    """The API server allows a bounded CEL cost per request (about 28 authorizer checks): 12 env Secrets, 4
    ConfigMaps, the token, a ServiceAccount and a PVC (20 checks) must still be evaluated, a 13th Secret refused."""
    env = [{"name": f"S{i}", "valueFrom": {"secretKeyRef": {"name": f"s{i}", "key": "k"}}} for i in range(12)]
    env += [{"name": f"C{i}", "valueFrom": {"configMapKeyRef": {"name": f"c{i}", "key": "k"}}} for i in range(4)]
    serving = {
        "hfTokenSecretRef": {"name": "hf"},
        "serviceAccountName": "sa",
        "modelCache": {"persistentVolumeClaim": "pvc"},
    }
    full = sd("full", env=env, **serving)  # created by the admin, who may do all: every check runs and passes
    done = kubectl.run("create", "-f", "-", "-n", guarded, "--dry-run=server", stdin=json.dumps(full), check=False)
    assert done.returncode == 0, done.stderr
    env.append({"name": "S12", "valueFrom": {"secretKeyRef": {"name": "s12", "key": "k"}}})
    done = kubectl.run(
        "create", "-f", "-", "-n", guarded, "--dry-run=server", stdin=json.dumps(sd("over", env=env)), check=False
    )
    assert "spec.serving.env: the admission policy checks at most 12 valueFrom.secretKeyRef" in done.stderr
    assert "this spec has 13 and 4" in done.stderr

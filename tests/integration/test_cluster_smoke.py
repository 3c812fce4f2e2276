"""The local control plane behaves like a real cluster with GPU nodes: scheduling, Jobs, loopback pod IPs."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster

pytestmark = pytest.mark.integration


def _gpu_deployment(name: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "registry.invalid/never-pulled:1",
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                        }
                    ]
                },
            },
        },
    }


def test_nodes_are_ready_gpu_nodes_on_loopback(kubectl: Kubectl) -> None:
    nodes = kubectl.items("nodes")
    assert len(nodes) >= 2
    for node in nodes:
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert node["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True"
        internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal and all(ipaddress.ip_address(a).is_loopback for a in internal)
        assert ipaddress.ip_network(node["spec"]["podCIDR"]).subnet_of(ipaddress.ip_network("127.0.0.0/8"))


def test_four_gpu_deployment_is_scheduled_and_ready_with_a_loopback_ip(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(_gpu_deployment("four", 4), "-n", namespace)

    def ready_pod() -> dict[str, Any] | None:
        pods = kubectl.items("pods", namespace, "app=four")
        ok = [
            p
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        return ok[0] if ok else None

    pod = wait_for("a Ready pod of the 4-GPU Deployment", ready_pod, timeout=60)
    assert pod["spec"]["nodeName"].startswith("gpu-node-")
    assert ipaddress.ip_address(pod["status"]["podIP"]).is_loopback
    dep = wait_for(
        "Deployment available",
        lambda: (d := kubectl.get("deployment", "four", namespace)) and d["status"].get("readyReplicas") == 1 and d,
    )
    assert dep["status"]["readyReplicas"] == 1


def test_sixteen_gpus_stay_pending_unschedulable(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(_gpu_deployment("sixteen", 16), "-n", namespace)

    def unschedulable() -> dict[str, Any] | None:
        for p in kubectl.items("pods", namespace, "app=sixteen"):
            for c in p["status"].get("conditions", []):
                if c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable":
                    return p
        return None

    pod = wait_for("the 16-GPU pod to be reported Unschedulable", unschedulable, timeout=60)
    assert pod["status"]["phase"] == "Pending"
    message = next(c["message"] for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert "nvidia.com/gpu" in message


def test_a_job_completes(kubectl: Kubectl, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.invalid/job:1"}]}
            },
        },
    }
    kubectl.apply(job, "-n", namespace)

    def complete() -> bool:
        j = kubectl.get("job", "once", namespace)
        return bool(j) and any(
            c["type"] == "Complete" and c["status"] == "True" for c in j["status"].get("conditions", [])
        )

    wait_for("the Job to complete", complete, timeout=60)


def test_rbac_is_enforced_for_service_account_tokens(
    cluster: LocalCluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    kubectl.run("create", "serviceaccount", "reader", "-n", namespace)
    kubectl.run("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    kubectl.run(
        "create", "rolebinding", "reader", "--role=pod-reader", f"--serviceaccount={namespace}:reader", "-n", namespace
    )
    token = kubectl.run("create", "token", "reader", "-n", namespace).stdout.strip()
    assert token.count(".") == 2  # a signed JWT: the token controller and signing keys work
    as_sa = Kubectl(kubectl.binary, cluster.token_kubeconfig(token, tmp_path / "sa.kubeconfig", namespace))
    assert as_sa.run("get", "pods", "-n", namespace).returncode == 0
    denied = as_sa.run("get", "secrets", "-n", namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    other = as_sa.run("get", "pods", "-n", "default", check=False)
    assert other.returncode != 0 and "forbidden" in other.stderr.lower()

"""The vLLM Deployment and Service: GPUs, shared memory, probes, secrets, labels, selectors, ownership."""

from __future__ import annotations

from typing import Any

from specdeploy.render import owner_for, render_deployment, render_service, startup_allowance
from specdeploy.render.labels import selector_labels

from .specs import make_spec, walk

OWNER = owner_for("coder", "9b0e2a4c-1111-2222-3333-444455556666")


def deployment(**sections: Any) -> dict[str, Any]:
    return render_deployment("coder", "llm", make_spec(**sections), "0123456789", owner=OWNER)


def container(dep: dict[str, Any]) -> dict[str, Any]:
    (vllm,) = dep["spec"]["template"]["spec"]["containers"]
    assert vllm["name"] == "vllm"
    c: dict[str, Any] = vllm
    return c


def env_of(dep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(dep)["env"]}


def test_gpu_request_and_limit_equal_target_tensor_parallelism() -> None:
    for tp in (1, 2, 8):
        resources = container(deployment(target={"tensorParallelSize": tp}))["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == str(tp)
        assert resources["requests"]["nvidia.com/gpu"] == str(tp)


def test_user_resources_are_merged_but_cannot_change_the_gpu_count() -> None:
    dep = deployment(
        target={"tensorParallelSize": 4},
        serving={
            "gpuResource": "amd.com/gpu",
            "resources": {"requests": {"cpu": 8, "memory": "64Gi"}, "limits": {"memory": "96Gi", "amd.com/gpu": 1}},
        },
    )
    resources = container(dep)["resources"]
    assert resources["requests"] == {"cpu": "8", "memory": "64Gi", "amd.com/gpu": "4"}
    assert resources["limits"] == {"memory": "96Gi", "amd.com/gpu": "4"}


def test_shared_memory_is_an_in_memory_empty_dir_of_the_requested_size() -> None:
    dep = deployment(serving={"shmSize": "16Gi"})
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(dep)["volumeMounts"]


def test_probes_hit_health_on_the_named_port_with_a_long_startup_allowance() -> None:
    c = container(deployment())
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 1350  # 15 min +50% for the draft


def test_startup_allowance_depends_on_the_draft_and_can_be_set() -> None:
    assert startup_allowance(make_spec()) == 1350
    assert startup_allowance(make_spec(), speculation_enabled=False) == 900
    assert startup_allowance(make_spec(draft=None, speculation={"method": "ngram"})) == 900
    assert startup_allowance(make_spec(serving={"startupTimeoutSeconds": 3600})) == 3600
    dep = deployment(serving={"startupTimeoutSeconds": 3600})
    assert container(dep)["startupProbe"]["failureThreshold"] == 360
    assert dep["spec"]["progressDeadlineSeconds"] > 3600


def test_hf_token_comes_only_from_a_secret_key_ref() -> None:
    dep = deployment(serving={"hfTokenSecretRef": {"name": "hf-secret-xyz", "key": "tok"}})
    env = env_of(dep)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "hf-secret-xyz", "key": "tok"}}}
    # The secret's name appears nowhere but as a secretKeyRef name; no env var carries a literal token.
    hits = [path for path, value in walk(dep) if value == "hf-secret-xyz"]
    assert hits and all(path.endswith(".valueFrom.secretKeyRef.name") for path in hits), hits
    assert all("value" not in e for e in container(dep)["env"] if "TOKEN" in e["name"])
    assert "HF_TOKEN" not in env_of(deployment())


def test_model_cache_claim_is_mounted_and_hf_home_points_there() -> None:
    dep = deployment(serving={"modelCache": {"persistentVolumeClaim": "models", "mountPath": "/models"}})
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": False}
    assert {"name": "model-cache", "mountPath": "/models", "readOnly": False} in container(dep)["volumeMounts"]
    assert env_of(dep)["HF_HOME"] == {"name": "HF_HOME", "value": "/models"}


def test_pod_ip_and_user_env_are_passed() -> None:
    env = env_of(deployment(serving={"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]}))
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["VLLM_LOGGING_LEVEL"] == {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}


def test_labels_selector_and_revision() -> None:
    dep = deployment()
    labels = dep["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "coder",
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/managed-by": "specdeploy",
        "app.kubernetes.io/part-of": "specdeploy",
        "specdeploy.io/name": "coder",
        "specdeploy.io/revision": "0123456789",
    }
    selector = dep["spec"]["selector"]["matchLabels"]
    # one Deployment per revision (issue 13): it selects its own revision's pods only
    assert selector == {
        "specdeploy.io/name": "coder",
        "app.kubernetes.io/component": "server",
        "specdeploy.io/revision": "0123456789",
    }
    assert dep["metadata"]["name"] == "coder-0123456789"
    template = dep["spec"]["template"]["metadata"]
    assert selector.items() <= template["labels"].items()
    assert template["annotations"]["specdeploy.io/revision"] == "0123456789"


def test_a_new_revision_gets_its_own_deployment_and_the_legacy_one_keeps_name_and_selector() -> None:
    a = render_deployment("coder", "llm", make_spec(), "aaaaaaaaaa", owner=None)
    b = render_deployment("coder", "llm", make_spec(speculation={"numSpeculativeTokens": 8}), "bbbbbbbbbb", owner=None)
    assert (a["metadata"]["name"], b["metadata"]["name"]) == ("coder-aaaaaaaaaa", "coder-bbbbbbbbbb")
    assert a["spec"]["selector"] != b["spec"]["selector"]  # neither claims the other's pods
    assert a["spec"]["template"] != b["spec"]["template"]
    # the Deployment an earlier version named <name>, with the selector it was created with (immutable), is kept
    legacy = {"metadata": {"name": "coder"}, "spec": {"selector": {"matchLabels": selector_labels("coder")}}}
    kept = render_deployment("coder", "llm", make_spec(), "aaaaaaaaaa", owner=None, existing=legacy)
    assert kept["metadata"]["name"] == "coder"
    assert kept["spec"]["selector"] == {"matchLabels": selector_labels("coder")}


def test_user_pod_labels_and_annotations_cannot_override_ours() -> None:
    dep = deployment(
        serving={
            "podLabels": {"team": "ml", "specdeploy.io/name": "hijack", "app.kubernetes.io/component": "x"},
            "podAnnotations": {"prometheus.io/scrape": "true", "specdeploy.io/revision": "fake"},
        }
    )
    template = dep["spec"]["template"]["metadata"]
    assert template["labels"]["team"] == "ml"
    assert template["labels"]["specdeploy.io/name"] == "coder"
    assert template["labels"]["app.kubernetes.io/component"] == "server"
    assert template["annotations"]["prometheus.io/scrape"] == "true"
    assert template["annotations"]["specdeploy.io/revision"] == "0123456789"


def test_owner_reference_makes_deletion_cascade() -> None:
    refs = deployment()["metadata"]["ownerReferences"]
    assert refs == [
        {
            "apiVersion": "specdeploy.io/v1alpha1",
            "kind": "SpeculativeDeployment",
            "name": "coder",
            "uid": "9b0e2a4c-1111-2222-3333-444455556666",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert "ownerReferences" not in render_deployment("coder", "llm", make_spec(), "0123456789", owner=None)["metadata"]


def test_pod_is_hardened_where_vllm_allows_it() -> None:
    dep = deployment()
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False  # a Service named "vllm" would inject VLLM_PORT and break vLLM
    security = container(dep)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}


def test_rollout_never_needs_a_spare_gpu() -> None:
    strategy = deployment(replicas=3)["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert deployment(replicas=3)["spec"]["replicas"] == 3


def test_scheduling_fields_reach_the_pod() -> None:
    pod = deployment(
        serving={
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
            "priorityClassName": "inference",
            "serviceAccountName": "vllm",
            "imagePullSecrets": [{"name": "regcred"}],
        }
    )["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["affinity"] == {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert (pod["priorityClassName"], pod["serviceAccountName"]) == ("inference", "vllm")
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_disabled_speculation_renders_the_target_alone() -> None:
    dep = render_deployment("coder", "llm", make_spec(), "0123456789-nospec", owner=None, speculation_enabled=False)
    assert "--speculative-config" not in container(dep)["args"]
    assert dep["metadata"]["labels"]["specdeploy.io/revision"] == "0123456789-nospec"


def test_service_selects_the_deployments_pods_on_the_named_port() -> None:
    spec = make_spec(serving={"port": 9000})
    svc = render_service("coder", "llm", spec, "0123456789", owner=OWNER)
    dep = render_deployment("coder", "llm", spec, "0123456789", owner=OWNER)
    assert svc["metadata"]["name"] == "coder" and dep["metadata"]["name"] == "coder-0123456789"
    assert svc["spec"]["type"] == "ClusterIP"
    # the Service selects the pods of every revision: the Deployment's selector narrows it by revision
    assert svc["spec"]["selector"] == selector_labels("coder")
    assert svc["spec"]["selector"].items() <= dep["spec"]["selector"]["matchLabels"].items()
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
    ]
    assert container(dep)["ports"][0] == {"name": "http", "containerPort": 9000, "protocol": "TCP"}
    assert svc["metadata"]["ownerReferences"][0]["uid"] == OWNER["uid"]
    assert svc["metadata"]["labels"]["specdeploy.io/revision"] == "0123456789"


def test_extra_args_reach_vllm_literally_and_never_expand_the_token() -> None:
    """The kubelet expands $(VAR) in args from the container env, which holds HF_TOKEN: nothing may expand."""
    from tests.harness.podrunner import expand

    written = ["--root-path=/$(HF_TOKEN)", "--chat-template=$$x $(POD_IP) $", "--api-key=$(MISSING)"]
    dep = deployment(serving={"hfTokenSecretRef": {"name": "hf"}, "extraArgs": written})
    env = {"HF_TOKEN": "hf_secret_value", "HUGGING_FACE_HUB_TOKEN": "hf_secret_value", "POD_IP": "127.0.0.9"}
    as_run = [expand(arg, env) for arg in container(dep)["args"]]
    assert as_run[-3:] == written
    assert not any("hf_secret_value" in arg for arg in as_run)

"""The vLLM Deployment: one pod per replica, each holding ``tensorParallelSize`` GPUs.

Choices a reader may question, and why:
- Rollout strategy is RollingUpdate with maxSurge 0 and maxUnavailable 1: a surge pod would need spare GPUs,
  which GPU clusters rarely have, so a rollout would hang Pending. The cost: with one replica, a rollout is a
  restart (the old pod stops before the new one loads).
- One Deployment per revision (issue 13), named ``<name>-<serving id>``, so a canary runs beside the serving
  revision. Its selector holds the revision too (a selector is immutable, and a revision's Deployment never
  runs another revision), so Deployments of two revisions never claim each other's pods. The Deployment that
  earlier versions named ``<name>`` (selector: name and component) is kept under its name and selector for the
  revision it runs (``name``/``selector`` arguments), so an operator upgrade restarts no pod.
- Model loading takes minutes (downloads, weights, CUDA graphs) and longer with a draft, so the startup probe
  allows 15 minutes, +50% when a draft model is loaded, before liveness starts to count; the Deployment's
  progress deadline is longer still.
- The pod runs as root because the upstream vLLM image expects to (its caches live under /root), so
  runAsNonRoot is not forced here; privilege escalation and all capabilities are dropped and the seccomp
  profile is the runtime default. The root filesystem stays writable for vLLM's compile caches.
- ``enableServiceLinks`` is off: a Service named "vllm" in the namespace would otherwise inject VLLM_PORT,
  which vLLM reads as its own setting and fails on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render import drain
from specdeploy.render import labels as lbl
from specdeploy.render.meta import OwnerRef, object_meta
from specdeploy.render.names import HTTP_PORT_NAME, VLLM_CONTAINER, revision_deployment_name
from specdeploy.render.pod import (
    cache_mount,
    cache_volume,
    hf_token_env,
    image_pull_secrets,
    literal_args,
    quantity,
    scheduling,
    user_env,
)
from specdeploy.render.vllm_args import VLLM_COMMAND, vllm_args

STARTUP_SECONDS: Final = 900
DRAFT_STARTUP_FACTOR: Final = 1.5
PROBE_PERIOD_SECONDS: Final = 10
PROGRESS_MARGIN_SECONDS: Final = 600
SHM_VOLUME: Final = "dshm"
SHM_PATH: Final = "/dev/shm"  # noqa: S108 - a path inside the vLLM container


def startup_allowance(spec: SpeculativeDeploymentSpec, *, speculation_enabled: bool = True) -> int:
    """Seconds a pod may take to start serving: the spec's value, or 900 (1350 when a draft model loads)."""
    if spec.serving.startup_timeout_seconds is not None:
        return spec.serving.startup_timeout_seconds
    loads_draft = speculation_enabled and spec.draft is not None
    return int(STARTUP_SECONDS * DRAFT_STARTUP_FACTOR) if loads_draft else STARTUP_SECONDS


def _probes(allowance: int) -> dict[str, Any]:
    def http_get() -> dict[str, Any]:
        return {"httpGet": {"path": "/health", "port": HTTP_PORT_NAME}}

    return {
        "startupProbe": {
            **http_get(),
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": math.ceil(allowance / PROBE_PERIOD_SECONDS),
        },
        "readinessProbe": {**http_get(), "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        # Generous: /health can be slow while the engine is saturated, and a restart costs minutes of loading.
        "livenessProbe": {**http_get(), "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
    }


def _resources(spec: SpeculativeDeploymentSpec) -> dict[str, Any]:
    serving = spec.serving
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if serving.resources is not None:
        requests = {k: quantity(v) for k, v in serving.resources.requests.items()}
        limits = {k: quantity(v) for k, v in serving.resources.limits.items()}
    gpus = str(spec.target.gpus_per_replica)
    requests[serving.gpu_resource] = gpus
    limits[serving.gpu_resource] = gpus
    return {"requests": requests, "limits": limits}


def _container(spec: SpeculativeDeploymentSpec, *, speculation_enabled: bool) -> dict[str, Any]:
    serving = spec.serving
    env: list[dict[str, Any]] = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    env += hf_token_env(serving.hf_token_secret_ref)
    mounts: list[dict[str, Any]] = [{"name": SHM_VOLUME, "mountPath": SHM_PATH}]
    if serving.model_cache is not None:
        env.append({"name": "HF_HOME", "value": serving.model_cache.mount_path})
        mounts.append(cache_mount(serving.model_cache, read_only=serving.model_cache.read_only))
    env += user_env(serving)
    return {
        "name": VLLM_CONTAINER,
        "image": serving.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(VLLM_COMMAND),
        "args": literal_args(vllm_args(spec, speculation_enabled=speculation_enabled)),
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": serving.port, "protocol": "TCP"}],
        "env": env,
        "resources": _resources(spec),
        "volumeMounts": mounts,
        **_probes(startup_allowance(spec, speculation_enabled=speculation_enabled)),
        # Issue 13 (canary e2e): a deleted pod keeps serving until proxies stop routing to it (render/drain.py).
        "lifecycle": drain.lifecycle(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _volumes(spec: SpeculativeDeploymentSpec) -> list[dict[str, Any]]:
    serving = spec.serving
    volumes: list[dict[str, Any]] = [
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": quantity(serving.shm_size)}}
    ]
    if serving.model_cache is not None:
        volumes.append(cache_volume(serving.model_cache, read_only=serving.model_cache.read_only))
    return volumes


def render_deployment(
    name: str,
    namespace: str,
    spec: SpeculativeDeploymentSpec,
    revision: str,
    *,
    owner: OwnerRef | None,
    speculation_enabled: bool = True,
    replicas: int | None = None,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The apps/v1 Deployment that serves ``revision`` of ``spec`` (without a draft if speculation is off).

    ``replicas``: its pod count when not ``spec.replicas`` (a canary, a step of a promotion). ``existing``: the live
    Deployment that runs this revision already, whose name and (immutable) selector are kept.
    """
    serving = spec.serving
    labels = lbl.common_labels(name, revision, "server")
    pod_labels = lbl.merged(serving.pod_labels, labels)
    pod_annotations = lbl.merged(
        serving.pod_annotations,
        {lbl.ANNOTATION_REVISION: revision, lbl.ANNOTATION_DEFAULT_CONTAINER: VLLM_CONTAINER},
    )
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 60,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(spec, speculation_enabled=speculation_enabled)],
        "volumes": _volumes(spec),
        **scheduling(serving),
        **image_pull_secrets(serving),
    }
    if serving.service_account_name is not None:
        pod_spec["serviceAccountName"] = serving.service_account_name
    allowance = startup_allowance(spec, speculation_enabled=speculation_enabled)
    template = {"metadata": {"labels": pod_labels, "annotations": pod_annotations}, "spec": pod_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(
            str(existing["metadata"]["name"]) if existing else revision_deployment_name(name, revision),
            namespace,
            labels,
            owner=owner,
            annotations={lbl.ANNOTATION_REVISION: revision, lbl.ANNOTATION_TEMPLATE_HASH: template_hash(template)},
        ),
        "spec": {
            "replicas": spec.replicas if replicas is None else replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": allowance + PROGRESS_MARGIN_SECONDS,
            "selector": dict((existing or {}).get("spec", {}).get("selector") or {})
            or {"matchLabels": lbl.revision_selector_labels(name, revision)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": template,
        },
    }


def template_hash(template: Mapping[str, Any]) -> str:
    """A short digest of a rendered pod template: tells a template this operator version rendered from one an
    older version rendered for the same revision (``rollout.writes.keep_running_template``)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

"""The validation Job: runs ``specdeploy validate`` for one revision's target and draft, before it serves.

The validator reads only configs and tokenizer files, so the Job is small, CPU-only and locked down (non-root,
read-only root filesystem, no service account token, nothing but /tmp writable). Its JSON report goes to
``/dev/termination-log`` where the operator reads it from the pod status; ``FallbackToLogsOnError`` makes a
crash still say something there. There is no retry (``backoffLimit: 0``): the checks are deterministic, and a
failure is reported, not repeated.

n-gram speculation has no Job: it has no draft to compare, so ``needs_validation_job`` is False and the operator
treats the revision as validated. MTP without a draft does get one: the validator reads the target's own config
(an MTP target must have multi-token-prediction layers), and the argv then names the target and no ``--draft``.

The model cache claim, when there is one, is mounted read-only so that local model paths resolve; the
validator's own Hugging Face cache lives in /tmp. Mounting the claim writable would need an fsGroup, and the
kubelet would then re-own every cached weight file on the claim before the Job could start.
"""

from __future__ import annotations

import os
from typing import Any, Final

from specdeploy.api.constants import DEFAULT_VALIDATOR_IMAGE
from specdeploy.api.spec import Method, SpeculativeDeploymentSpec, ValidationPolicy
from specdeploy.render import labels as lbl
from specdeploy.render.meta import OwnerRef, object_meta
from specdeploy.render.names import VALIDATOR_CONTAINER, job_name
from specdeploy.render.pod import cache_mount, cache_volume, hf_token_env, image_pull_secrets, literal_args

VALIDATOR_COMMAND: Final = ("specdeploy", "validate")
REPORT_FILE: Final = "/dev/termination-log"
TTL_SECONDS_AFTER_FINISHED: Final = 3600
NONROOT_ID: Final = 65532
TMP_VOLUME: Final = "tmp"
# Paths inside the validator container (its only writable place is the /tmp emptyDir).
TMP_PATH: Final = "/tmp"  # noqa: S108
VALIDATOR_HF_HOME: Final = "/tmp/huggingface"  # noqa: S108


def needs_validation_job(spec: SpeculativeDeploymentSpec) -> bool:
    """True when a compatibility Job runs for this spec: policy is not Skip, and there is a draft model or the
    method is mtp (whose target must carry the MTP layers)."""
    if spec.validation.policy == ValidationPolicy.SKIP:
        return False
    return spec.draft is not None or spec.speculation.method == Method.MTP


def validator_args(spec: SpeculativeDeploymentSpec) -> list[str]:
    """Arguments of ``specdeploy validate`` for this spec (see ``needs_validation_job`` for when there is a Job)."""
    target, draft = spec.target, spec.draft
    if draft is None and spec.speculation.method != Method.MTP:
        raise ValueError("spec.draft is not set: there is nothing to validate (no Job for this spec)")
    args = ["--target", target.model]
    if draft is not None:
        args += ["--draft", draft.model]
    args += ["--method", spec.speculation.method.value]
    if target.revision is not None:
        args += ["--revision", target.revision]
    if draft is not None and draft.revision is not None:
        args += ["--draft-revision", draft.revision]
    args += ["--tensor-parallel-size", str(target.tensor_parallel_size)]
    if draft is not None and draft.tensor_parallel_size is not None:
        args += ["--draft-tensor-parallel-size", str(draft.tensor_parallel_size)]
    if target.max_model_len is not None:
        args += ["--max-model-len", str(target.max_model_len)]
    if spec.validation.gpu_memory_gib is not None:
        args += ["--gpu-memory-gib", str(spec.validation.gpu_memory_gib)]
    args += ["--output", "json", "--report-file", REPORT_FILE]
    return args


def default_validator_image() -> str:
    """The validator image when the spec names none: the operator's own setting (the chart passes the image that
    matches the operator's version), else the image of this release."""
    return os.environ.get("SPECDEPLOY_VALIDATOR_IMAGE") or DEFAULT_VALIDATOR_IMAGE


def _container(spec: SpeculativeDeploymentSpec) -> dict[str, Any]:
    serving = spec.serving
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": TMP_PATH},
        {"name": "HF_HOME", "value": VALIDATOR_HF_HOME},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        *hf_token_env(serving.hf_token_secret_ref),
    ]
    mounts: list[dict[str, Any]] = [{"name": TMP_VOLUME, "mountPath": TMP_PATH}]
    if serving.model_cache is not None:
        mounts.append(cache_mount(serving.model_cache, read_only=True))
    return {
        "name": VALIDATOR_CONTAINER,
        "image": spec.validation.image or default_validator_image(),
        "imagePullPolicy": "IfNotPresent",
        "command": list(VALIDATOR_COMMAND),
        "args": literal_args(validator_args(spec)),
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "1Gi"},
        },
        "volumeMounts": mounts,
        "terminationMessagePath": REPORT_FILE,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": NONROOT_ID,
            "runAsGroup": NONROOT_ID,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def render_validation_job(
    name: str, namespace: str, spec: SpeculativeDeploymentSpec, revision: str, *, owner: OwnerRef | None
) -> dict[str, Any]:
    """The batch/v1 Job that validates ``revision``; named ``<name>-validate-<revision>``."""
    labels = lbl.common_labels(name, revision, "validator")
    volumes: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "2Gi"}}]
    if spec.serving.model_cache is not None:
        volumes.append(cache_volume(spec.serving.model_cache, read_only=True))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(
            job_name(name, revision), namespace, labels, owner=owner, annotations={lbl.ANNOTATION_REVISION: revision}
        ),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.validation.active_deadline_seconds,
            "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {lbl.ANNOTATION_REVISION: revision}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": NONROOT_ID,
                        "runAsGroup": NONROOT_ID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(spec)],
                    "volumes": volumes,
                    **image_pull_secrets(spec.serving),
                },
            },
        },
    }

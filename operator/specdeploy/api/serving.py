"""``spec.serving``: how the vLLM pods run (image, port, resources, scheduling, secrets, cache).

Only what users of GPU inference commonly need is typed here; anything else vLLM accepts goes through
``extraArgs``, minus the reserved flags (see ``rules``). The Hugging Face token is a reference to a
Secret, never a value, so it never appears in the object, in ``kubectl get -o yaml`` or in the operator's logs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from specdeploy.api.affinity import Affinity
from specdeploy.api.base import SpecModel
from specdeploy.api.constants import DEFAULT_VLLM_IMAGE
from specdeploy.api.rules import (
    EXTRA_ARGS_MESSAGE,
    EXTRA_ARGS_MESSAGE_EXPRESSION,
    EXTRA_ARGS_RULE,
    RESERVED_ENV,
    RESERVED_ENV_MESSAGE,
    RESERVED_ENV_RULE,
    reserved_flag,
    reserved_flag_message,
)
from specdeploy.api.types import (
    ENV_NAME_PATTERN,
    QUALIFIED_NAME_PATTERN,
    SECRET_KEY_PATTERN,
    SERVED_NAME_PATTERN,
    AnnotationValue,
    DnsSubdomain,
    Image,
    LabelKey,
    LabelValue,
    Quantity,
    check_qualified_keys,
    qualified_keys,
)

SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
ExtraArg = Annotated[str, Field(max_length=1024)]
ResourceName = Annotated[str, Field(min_length=1, max_length=253, pattern=QUALIFIED_NAME_PATTERN)]


class HfTokenSecretRef(SpecModel):
    """A key of a Secret in the same namespace that holds a Hugging Face access token."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the namespace of the SpeculativeDeployment.")
    key: SecretKey = Field("token", description="Key in the Secret whose value is the token. Default: token.")


class ModelCache(SpecModel):
    """A PersistentVolumeClaim that keeps downloaded models across pod restarts."""

    persistent_volume_claim: DnsSubdomain = Field(
        description=(
            "Name of an existing PersistentVolumeClaim in the same namespace. It is mounted in the vLLM pods and "
            "in the validation Job; with ReadWriteOnce storage they must run on the same node, so prefer "
            "ReadWriteMany (or ReadOnlyMany for a pre-filled cache)."
        )
    )
    mount_path: str = Field(
        "/root/.cache/huggingface",
        min_length=2,
        max_length=256,
        pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$",
        description=(
            "Where the claim is mounted; HF_HOME points here, so the Hugging Face cache lives on the claim. "
            "Default: /root/.cache/huggingface (vLLM's image runs as root)."
        ),
    )
    read_only: bool = Field(
        False,
        description="Mount the claim read-only (a cache filled in advance, e.g. for clusters without internet).",
    )


class KeySelector(SpecModel):
    """A key of a Secret or ConfigMap in the same namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret or ConfigMap.")
    key: SecretKey = Field(description="Key whose value becomes the variable's value.")
    optional: bool | None = Field(None, description="Start the pod even if the object or key does not exist.")


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from: exactly one of secretKeyRef and configMapKeyRef."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "message": "spec.serving.env[].valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
                }
            ]
        }
    )

    secret_key_ref: KeySelector | None = Field(None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(None, description="A key of a ConfigMap.")

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("valueFrom needs exactly one of secretKeyRef and configMapKeyRef")
        return self


class EnvVar(SpecModel):
    """An environment variable of the vLLM container."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": RESERVED_ENV_RULE, "message": RESERVED_ENV_MESSAGE},
                {
                    "rule": "!(has(self.value) && has(self.valueFrom))",
                    "message": "spec.serving.env[]: set value or valueFrom, not both",
                },
            ]
        }
    )

    name: str = Field(min_length=1, max_length=128, pattern=ENV_NAME_PATTERN, description="Variable name.")
    value: str | None = Field(None, max_length=8192, description="A literal value (never a secret: use valueFrom).")
    value_from: EnvVarSource | None = Field(None, description="Take the value from a Secret or ConfigMap key.")

    @model_validator(mode="after")
    def _checks(self) -> EnvVar:
        if self.name in RESERVED_ENV:
            raise ValueError(RESERVED_ENV_MESSAGE)
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class Resources(SpecModel):
    """Compute resources of the vLLM container, merged with the GPU request the operator computes."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Minimum resources, e.g. {cpu: 8, memory: 64Gi}. The GPU count is set by the operator.",
        json_schema_extra=qualified_keys("spec.serving.resources.requests"),
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description=(
            "Maximum resources, e.g. {memory: 96Gi}. The limit of spec.serving.gpuResource is always "
            "spec.target.tensorParallelSize."
        ),
        json_schema_extra=qualified_keys("spec.serving.resources.limits"),
    )

    _keys = field_validator("requests", "limits")(check_qualified_keys)


class Toleration(SpecModel):
    """Lets the pods run on nodes with a matching taint (GPU nodes are often tainted)."""

    key: LabelKey | None = Field(None, description="Taint key to match.")
    operator: Literal["Exists", "Equal"] | None = Field(
        None, description="Exists (any value) or Equal (the value below). Kubernetes default: Equal."
    )
    value: LabelValue | None = Field(None, description="Taint value to match with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        None, ge=0, le=31_536_000, description="With NoExecute: how long the pod stays after the taint appears."
    )


class LocalObjectReference(SpecModel):
    """A reference to an object in the same namespace, by name."""

    name: DnsSubdomain = Field(description="Name of the object (for imagePullSecrets: a docker-registry Secret).")


class Serving(SpecModel):
    """How the vLLM pods run. Everything has a default; an empty object is a working configuration."""

    image: Image = Field(
        DEFAULT_VLLM_IMAGE,
        description=f"vLLM server image (the OpenAI-compatible server). Default: {DEFAULT_VLLM_IMAGE}.",
    )
    served_model_name: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        pattern=SERVED_NAME_PATTERN,
        description="Model name clients send in API requests. Default: spec.target.model.",
    )
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of the API, /health and /metrics. Default: 8000.")
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Fraction of each GPU's memory vLLM may use, for weights of target and draft plus both KV caches "
            "(vLLM's default is 0.9)."
        ),
    )
    extra_args: list[ExtraArg] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "More vLLM server arguments, one argv item each (no shell), e.g. [--max-num-seqs, '64']. Reserved flags "
            "are refused in every spelling: those the operator renders (--model, --revision, --port, --host, "
            "--tensor-parallel-size, --speculative-config, --max-model-len, ...) and those that break what it "
            "relies on (--disable-log-stats, --ssl-*, --uds, --grpc, --headless, --config, --hf-token)."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": EXTRA_ARGS_RULE,
                    "message": EXTRA_ARGS_MESSAGE,
                    "messageExpression": EXTRA_ARGS_MESSAGE_EXPRESSION,
                }
            ]
        },
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Environment variables of the vLLM container; secrets only through valueFrom.",
    )
    resources: Resources | None = Field(
        None, description="CPU, memory and other resources of the vLLM container (GPUs are set by the operator)."
    )
    gpu_resource: ResourceName = Field(
        "nvidia.com/gpu",
        description=(
            "Extended resource that counts GPUs; requests and limits are set to spec.target.tensorParallelSize. "
            "Default: nvidia.com/gpu."
        ),
    )
    shm_size: Quantity = Field(
        "8Gi",
        description=(
            "Size of the in-memory /dev/shm that tensor-parallel workers share (counts against the pod's "
            "memory). Default: 8Gi."
        ),
    )
    startup_timeout_seconds: int | None = Field(
        None,
        ge=60,
        le=86_400,
        description=(
            "How long a pod may take to download and load the models before it is restarted. Default: 900, "
            "or 1350 when a draft model is loaded too."
        ),
    )
    hf_token_secret_ref: HfTokenSecretRef | None = Field(
        None,
        description="Secret key holding a Hugging Face token, for gated or private models (HF_TOKEN in the pods).",
    )
    model_cache: ModelCache | None = Field(
        None, description="A PersistentVolumeClaim for the Hugging Face cache, so restarts do not download again."
    )
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=32,
        description="Node labels the pods must match, e.g. a GPU product label.",
        json_schema_extra=qualified_keys("spec.serving.nodeSelector"),
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Tolerations for tainted (e.g. GPU) nodes."
    )
    affinity: Affinity | None = Field(None, description="Node and pod affinity of the vLLM pods.")
    priority_class_name: DnsSubdomain | None = Field(None, description="PriorityClass of the vLLM pods.")
    pod_annotations: dict[str, AnnotationValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Extra annotations on the vLLM pods; the operator's own annotations win on conflict.",
        json_schema_extra=qualified_keys("spec.serving.podAnnotations"),
    )
    pod_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=32,
        description="Extra labels on the vLLM pods; the operator's own labels win on conflict.",
        json_schema_extra=qualified_keys("spec.serving.podLabels"),
    )
    service_account_name: DnsSubdomain | None = Field(None, description="ServiceAccount of the vLLM pods.")
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=16,
        description="Secrets for pulling the vLLM and validator images from private registries.",
    )

    @field_validator("extra_args")
    @classmethod
    def _no_reserved_flags(cls, value: list[str]) -> list[str]:
        for index, arg in enumerate(value):
            flag = reserved_flag(arg)
            if flag is not None:
                shown = repr(arg) if len(arg) <= 60 else repr(arg[:57] + "...")
                raise ValueError(f"{reserved_flag_message(flag)} [extraArgs[{index}] is {shown}]")
        return value

    _label_keys = field_validator("node_selector", "pod_annotations", "pod_labels")(check_qualified_keys)


__all__ = [
    "Affinity",
    "EnvVar",
    "EnvVarSource",
    "HfTokenSecretRef",
    "KeySelector",
    "LocalObjectReference",
    "ModelCache",
    "Resources",
    "Serving",
    "Toleration",
]

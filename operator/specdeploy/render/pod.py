"""Pod pieces shared by the vLLM Deployment and the validation Job: secrets, cache, scheduling, quantities.

The Hugging Face token is only ever a ``secretKeyRef``: the kubelet resolves it, so the token is never in the
SpeculativeDeployment, the rendered manifests, the operator's memory or its logs, and the operator needs no
RBAC on Secrets.
"""

from __future__ import annotations

from typing import Any, Final

from specdeploy.api.serving import HfTokenSecretRef, ModelCache, Serving

HF_TOKEN_ENV: Final = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")  # current name, and the one older hub versions read
CACHE_VOLUME: Final = "model-cache"


def literal_args(args: list[str]) -> list[str]:
    """Container args the kubelet passes through unchanged.

    The kubelet expands ``$(NAME)`` in ``command`` and ``args`` from the container's environment, which holds the
    Hugging Face token: an extra argument ``--x=$(HF_TOKEN)`` would put the token on the process's command line
    (in ``ps``, in vLLM's start-up log). Every ``$`` is doubled; the kubelet turns ``$$`` back into ``$``, so the
    process gets exactly the text the user wrote and nothing is ever expanded.
    """
    return [arg.replace("$", "$$") for arg in args]


def quantity(value: int | str) -> str:
    """A quantity as the API server serialises it (always a string)."""
    return str(value)


def hf_token_env(ref: HfTokenSecretRef | None) -> list[dict[str, Any]]:
    """HF_TOKEN and HUGGING_FACE_HUB_TOKEN from the referenced Secret key; nothing without a reference."""
    if ref is None:
        return []
    return [{"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}} for name in HF_TOKEN_ENV]


def cache_volume(cache: ModelCache, *, read_only: bool) -> dict[str, Any]:
    """The model cache claim as a pod volume."""
    return {
        "name": CACHE_VOLUME,
        "persistentVolumeClaim": {"claimName": cache.persistent_volume_claim, "readOnly": read_only},
    }


def cache_mount(cache: ModelCache, *, read_only: bool) -> dict[str, Any]:
    """The model cache claim mounted at its mountPath."""
    return {"name": CACHE_VOLUME, "mountPath": cache.mount_path, "readOnly": read_only}


def user_env(serving: Serving) -> list[dict[str, Any]]:
    """``spec.serving.env`` as core/v1 EnvVar objects (reserved names were refused when the spec was parsed)."""
    return [var.model_dump(mode="json", by_alias=True, exclude_none=True) for var in serving.env]


def scheduling(serving: Serving) -> dict[str, Any]:
    """Where the GPU pods may run: node selector, tolerations, affinity, priority."""
    out: dict[str, Any] = {}
    if serving.node_selector:
        out["nodeSelector"] = dict(serving.node_selector)
    if serving.tolerations:
        out["tolerations"] = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in serving.tolerations]
    if serving.affinity is not None:
        affinity = serving.affinity.model_dump(mode="json", by_alias=True, exclude_none=True)
        if affinity:
            out["affinity"] = affinity
    if serving.priority_class_name is not None:
        out["priorityClassName"] = serving.priority_class_name
    return out


def image_pull_secrets(serving: Serving) -> dict[str, Any]:
    """``imagePullSecrets`` for both pods (the validator image may live in the same private registry)."""
    if not serving.image_pull_secrets:
        return {}
    return {"imagePullSecrets": [{"name": ref.name} for ref in serving.image_pull_secrets]}

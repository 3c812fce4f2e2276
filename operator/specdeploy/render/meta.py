"""Object metadata of the children: name, namespace, labels and the owner reference.

The owner reference (controller, blockOwnerDeletion) is what makes deletion cascade: the Kubernetes garbage
collector removes the Deployment, Service and Job when the SpeculativeDeployment goes, with no finalizer.
"""

from __future__ import annotations

from typing import Any, TypedDict

from specdeploy.api.constants import API_VERSION, KIND


class OwnerRef(TypedDict):
    """The parent object as an owner reference needs it."""

    apiVersion: str
    kind: str
    name: str
    uid: str


def owner_for(name: str, uid: str) -> OwnerRef:
    """The owner reference of a SpeculativeDeployment."""
    return {"apiVersion": API_VERSION, "kind": KIND, "name": name, "uid": uid}


def object_meta(
    name: str,
    namespace: str,
    labels: dict[str, str],
    *,
    owner: OwnerRef | None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a child; ownerReferences only when the owner (with its uid) is known."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def owner_reference(owner: OwnerRef) -> dict[str, Any]:
    """The controller owner reference every child carries (the ControllerRevisions too)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["name"],
        "uid": owner["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

"""The one place that talks to the Kubernetes API server (besides kopf's own watches and its log Events).

Handlers call these coroutines with plain dicts; nothing here decides anything. The official ``kubernetes``
client is synchronous, so each call runs in a bounded thread pool, never on the event loop. Responses are read
as raw JSON (``_preload_content=False``) to skip the client's slow model deserialisation.

Writes are idempotent by construction: children have deterministic names, so a retried create meets a 409
and is treated as "already there"; patches of children are JSON merge patches without resourceVersion, so they
never conflict, and only the keys the operator owns are sent. The status is the exception: its conditions are
one list that a merge patch replaces whole, other writers' conditions included, so a status write names the
resourceVersion it was computed from and a stale one is refused (409) rather than undoing someone else's write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from specdeploy.api import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
T = TypeVar("T")

# Connect and read timeouts of every request: a hung API server must not freeze a reconcile.
REQUEST_TIMEOUT = (5.0, 30.0)
MERGE_PATCH = "application/merge-patch+json"

_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kube")
_api: client.ApiClient | None = None


class KubeError(RuntimeError):
    """An API call failed; ``status`` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def load() -> None:
    """Load the kubeconfig ($KUBECONFIG / ~/.kube/config) or, inside a pod, the in-cluster config."""
    global _api  # noqa: PLW0603 - one shared client per process
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    # The API classes are imported lazily and take about 2 s together; pay that at start-up, not on the event
    # loop during the first reconcile.
    for api in ("AppsV1Api", "CoreV1Api", "BatchV1Api", "CustomObjectsApi"):
        getattr(client, api)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 32
    cfg.retries = 3
    _api = client.ApiClient(cfg)


def _client() -> client.ApiClient:
    if _api is None:
        load()
    assert _api is not None
    return _api


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as e:
            reason = e.reason
            with contextlib.suppress(ValueError, AttributeError):
                reason = json.loads(e.body or b"{}").get("message", reason)
            raise KubeError(f"{fn.__name__}: {e.status} {reason}", status=e.status or 0) from None
        except Exception as e:  # urllib3 connection errors and timeouts
            raise KubeError(f"{fn.__name__}: {type(e).__name__}: {e}") from None
        data = resp.data
        return json.loads(data) if data else {}

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, run)


# -------------------------------------------------------------------------------------- typed helpers
def _apps() -> client.AppsV1Api:
    return client.AppsV1Api(_client())


def _core() -> client.CoreV1Api:
    return client.CoreV1Api(_client())


def _batch() -> client.BatchV1Api:
    return client.BatchV1Api(_client())


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(_client())


_CREATE: dict[str, Callable[[], Callable[..., Any]]] = {
    "Deployment": lambda: _apps().create_namespaced_deployment,
    "Service": lambda: _core().create_namespaced_service,
    "Job": lambda: _batch().create_namespaced_job,
}
_PATCH: dict[str, Callable[[], Callable[..., Any]]] = {
    "Deployment": lambda: _apps().patch_namespaced_deployment,
    "Service": lambda: _core().patch_namespaced_service,
    "ControllerRevision": lambda: _apps().patch_namespaced_controller_revision,
}
_READ: dict[str, Callable[[], Callable[..., Any]]] = {
    "Deployment": lambda: _apps().read_namespaced_deployment,
    "Service": lambda: _core().read_namespaced_service,
    "Job": lambda: _batch().read_namespaced_job,
    "ControllerRevision": lambda: _apps().read_namespaced_controller_revision,
}
_DELETE: dict[str, Callable[[], Callable[..., Any]]] = {
    "Job": lambda: _batch().delete_namespaced_job,
    "ControllerRevision": lambda: _apps().delete_namespaced_controller_revision,
}


APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "specdeploy"


async def create(obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create ``obj``; return (object, created). An existing object of that name is returned as not created."""
    kind, ns = obj["kind"], obj["metadata"]["namespace"]
    if kind == "ControllerRevision":
        return await _create_revision(obj)
    try:
        return await _call(_CREATE[kind](), ns, obj), True
    except KubeError as e:
        if e.status != 409:
            raise
    return await get(kind, ns, obj["metadata"]["name"]) or {}, False


async def _create_revision(obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """ControllerRevisions are created by server-side apply, never by a plain POST.

    Their ``data`` is immutable and compared byte for byte. A POST stores the bytes as the client serialised them
    (with whitespace), while any later patch of the annotations re-serialises ``data`` canonically, so the
    API server would refuse every annotation patch as a change of ``data``. Server-side apply stores the
    canonical form from the start. An existing revision is left as it is.
    """
    meta = obj["metadata"]
    existing = await get("ControllerRevision", meta["namespace"], meta["name"])
    if existing is not None:
        return existing, False
    created = await _call(
        _apps().patch_namespaced_controller_revision,
        meta["name"],
        meta["namespace"],
        obj,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=APPLY_PATCH,
    )
    return created, True


async def create_event(event: dict[str, Any]) -> bool:
    """Create a core/v1 Event under the name it carries; True when created, False when an Event of that name
    exists already (409: it was said before, by this process or one that died before writing the status)."""
    try:
        await _call(_core().create_namespaced_event, event["metadata"]["namespace"], event)
    except KubeError as e:
        if e.status == 409:
            return False
        raise
    return True


async def get(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """Read one object; None when it does not exist."""
    try:
        return await _call(_READ[kind](), name, namespace)
    except KubeError as e:
        if e.status == 404:
            return None
        raise


async def patch(kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """JSON-merge-patch ``body`` into the object (only the keys given change)."""
    return await _call(_PATCH[kind](), name, namespace, body, _content_type=MERGE_PATCH)


async def delete(kind: str, namespace: str, name: str) -> None:
    """Delete with background propagation; a missing object is fine."""
    try:
        await _call(_DELETE[kind](), name, namespace, body={"propagationPolicy": "Background"})
    except KubeError as e:
        if e.status != 404:
            raise


async def patch_status(
    namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
) -> dict[str, Any]:
    """Merge-patch the SpeculativeDeployment's status subresource; with ``resource_version``, only over that
    version of the object (KubeError 409 when it changed since)."""
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return await _call(
        _custom().patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body,
        _content_type=MERGE_PATCH,
    )

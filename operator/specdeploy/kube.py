"""The one place that talks to the Kubernetes API server (besides kopf's own watches and its log Events).

Handlers call these coroutines with plain dicts; nothing here decides anything. The official ``kubernetes``
client is synchronous, so each call runs in a bounded thread pool, never on the event loop. Only its transport is
used (``ApiClient``: kubeconfig or in-cluster credentials, token refresh, TLS, connection pool): requests go to
REST paths built here and answers are read as raw JSON. The generated API classes are not imported at all: they
cost about 27 MiB of memory at start-up and a pydantic argument check on every call, for nothing the operator
needs.

Writes are idempotent by construction: children have deterministic names, so a retried create meets a 409
and is treated as "already there"; patches of children are JSON merge patches without resourceVersion, so they
never conflict, and only the keys the operator owns are sent. The status is the exception: its conditions are
one list that a merge patch replaces whole, other writers' conditions included, so a status write names the
resourceVersion it was computed from and a stale one is refused (409) rather than undoing someone else's write.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from kubernetes import client
from kubernetes.config import ConfigException, load_incluster_config, load_kube_config

from specdeploy.api import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
T = TypeVar("T")

# Connect and read timeouts of every request: a hung API server must not freeze a reconcile.
REQUEST_TIMEOUT = (5.0, 30.0)
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "specdeploy"
# Threads that may wait on the API server at once (each holds one pooled connection while it waits).
WORKERS = 16

# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Let the request threads share malloc arenas instead of one each.

    glibc gives every thread that allocates under contention its own 64 MiB arena, up to 8 per core, and each keeps
    the pages it touched: measured at 1,000 objects, 16 arenas held about 100 MiB of the operator's RSS (design
    budget: 200 MB), for threads that mostly wait on sockets. Two arenas (the main one and one the threads share)
    cost no measurable throughput. Called before the first thread starts; a no-op where the C library is not
    glibc (the chart's image is Debian-based).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas)


def prepare_process() -> None:
    """Process-wide settings of the operator, made by ``specdeploy run`` before kopf starts any thread.

    Not done on import: importing this module (tests, ``specdeploy render``, benchmarks) changes nothing about
    the process.
    """
    _limit_malloc_arenas()


_executor: ThreadPoolExecutor | None = None
_api: client.ApiClient | None = None


def _threads() -> ThreadPoolExecutor:
    """The bounded pool the blocking client calls run in, started on first use."""
    global _executor  # noqa: PLW0603 - one pool per process
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kube")
    return _executor


# kind -> (API prefix, resource plural): the REST path of every kind the operator reads or writes.
_PATHS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "ControllerRevision": ("/apis/apps/v1", "controllerrevisions"),
    "Service": ("/api/v1", "services"),
    "Event": ("/api/v1", "events"),
    "Job": ("/apis/batch/v1", "jobs"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "InferencePool": ("/apis/inference.networking.k8s.io/v1", "inferencepools"),
    "LeaderWorkerSet": ("/apis/leaderworkerset.x-k8s.io/v1", "leaderworkersets"),  # issue 16
    "SpeculativeDeployment": (f"/apis/{GROUP}/{VERSION}", PLURAL),
}


class KubeError(RuntimeError):
    """An API call failed; ``status`` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def load() -> None:
    """Load the kubeconfig ($KUBECONFIG / ~/.kube/config) or, inside a pod, the in-cluster config."""
    global _api  # noqa: PLW0603 - one shared client per process
    try:
        load_incluster_config()  # type: ignore[no-untyped-call,unused-ignore]
    except ConfigException:
        load_kube_config()  # type: ignore[no-untyped-call,unused-ignore]
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 2 * WORKERS
    cfg.retries = 3
    _api = client.ApiClient(cfg)


def _client() -> client.ApiClient:
    if _api is None:
        load()
    assert _api is not None
    return _api


def path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    """The REST path of a namespaced kind's collection, or of one object (and one of its subresources)."""
    try:
        prefix, plural = _PATHS[kind]
    except KeyError:
        raise KubeError(f"kind {kind!r} is not one the operator talks about") from None
    out = f"{prefix}/namespaces/{quote(namespace, safe='')}/{plural}"
    if name is not None:
        out += f"/{quote(name, safe='')}"
    if subresource is not None:
        out += f"/{subresource}"
    return out


def _request_sync(
    method: str,
    url_path: str,
    body: Any,
    query: list[tuple[str, str]],
    content_type: str,
) -> dict[str, Any]:
    api = _client()
    what = f"{method} {url_path}"
    try:
        # Credentials (and their refresh) come from the client's configuration; the body is serialised by the
        # transport as it is, without the generated client's model walk.
        method_, url, headers, _, _ = api.param_serialize(
            method=method,
            resource_path=url_path,
            query_params=query,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"],
        )
        resp = api.call_api(method_, url, header_params=headers, body=body, _request_timeout=REQUEST_TIMEOUT)
        data = resp.read()  # type: ignore[no-untyped-call,unused-ignore]
        status = int(resp.status)
    except client.ApiException as e:
        raise KubeError(f"{what}: {e.status} {e.reason}", status=e.status or 0) from None
    except Exception as e:  # urllib3 connection errors and timeouts
        raise KubeError(f"{what}: {type(e).__name__}: {e}") from None
    if not 200 <= status <= 299:
        reason: Any = resp.reason
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            reason = json.loads(data or b"{}").get("message", reason)
        raise KubeError(f"{what}: {status} {reason}", status=status)
    return json.loads(data) if data else {}


async def _request(
    method: str,
    url_path: str,
    body: Any = None,
    *,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_threads(), _request_sync, method, url_path, body, query or [], content_type)


async def create(obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create ``obj``; return (object, created). An existing object of that name is returned as not created."""
    kind, ns = obj["kind"], obj["metadata"]["namespace"]
    if kind == "ControllerRevision":
        return await _create_revision(obj)
    try:
        return await _request("POST", path(kind, ns), obj), True
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
    created = await _request(
        "PATCH",
        path("ControllerRevision", meta["namespace"], meta["name"]),
        obj,
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        content_type=APPLY_PATCH,
    )
    return created, True


async def create_event(event: dict[str, Any]) -> bool:
    """Create a core/v1 Event under the name it carries; True when created, False when an Event of that name
    exists already (409: it was said before, by this process or one that died before writing the status)."""
    try:
        await _request("POST", path("Event", event["metadata"]["namespace"]), event)
    except KubeError as e:
        if e.status == 409:
            return False
        raise
    return True


async def get(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """Read one object; None when it does not exist."""
    try:
        return await _request("GET", path(kind, namespace, name))
    except KubeError as e:
        if e.status == 404:
            return None
        raise


async def patch(kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """JSON-merge-patch ``body`` into the object (only the keys given change)."""
    return await _request("PATCH", path(kind, namespace, name), body, content_type=MERGE_PATCH)


async def delete(kind: str, namespace: str, name: str) -> None:
    """Delete with background propagation; a missing object is fine."""
    try:
        await _request("DELETE", path(kind, namespace, name), {"propagationPolicy": "Background"})
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
    return await _request(
        "PATCH", path("SpeculativeDeployment", namespace, name, "status"), body, content_type=MERGE_PATCH
    )

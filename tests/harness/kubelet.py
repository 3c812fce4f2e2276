"""The kubelet's part of a server pod's life that kwok does not play: readiness from the server itself, and a
graceful termination (preStop, then SIGTERM, then the pod removed) instead of an instant delete.

Why: kwok marks every pod Ready the moment it is scheduled and deletes it the moment it gets a deletionTimestamp.
With real vLLM behind a pod that is wrong twice over for anything that claims "no request fails": the
EndpointSlice controller would list a pod as ready a minute before its vLLM answers, and a deleted pod's server
would be killed while a Service proxy may still route to it. A real kubelet holds Ready until the readiness probe
passes, and on deletion runs the container's preStop hook, then sends SIGTERM and waits up to
``terminationGracePeriodSeconds`` before it removes the pod; meanwhile the EndpointSlice controller has marked the
endpoint not ready (terminating), so proxies stop sending new requests to it.

Opt-in per pod: a pod annotated ``kwok.specdeploy.io/kubelet: harness`` is started by kwok as Running but not
Ready and is not deleted by kwok at once (``hack/kwok/stages.yaml``); the harness that runs its server (the vLLM
fleet, the scripted fleet) calls :func:`set_ready` when the server answers and :func:`terminate` when the pod is
deleted. Should no harness be watching, kwok still removes a terminating annotated pod after two minutes, so a
namespace left behind can be deleted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

#: Pod annotation: this pod's readiness and termination are played by the test harness, as a kubelet would.
ANNOTATION = "kwok.specdeploy.io/kubelet"
VALUE = "harness"
#: Longest preStop pause honoured (a bound on what a pod spec can make the harness wait).
MAX_PRESTOP_S = 120.0


def managed(pod: Any) -> bool:
    """Whether the harness plays this pod's kubelet (the annotation is set)."""
    return bool((pod.metadata.annotations or {}).get(ANNOTATION) == VALUE)


def pre_stop_seconds(container: Any) -> float:
    """How long the container's preStop hook pauses: a ``sleep`` action, or an ``exec`` of ``sleep N``; 0 without
    one (other hooks are not run here)."""
    hook = getattr(getattr(container, "lifecycle", None), "pre_stop", None)
    if hook is None:
        return 0.0
    if getattr(hook, "sleep", None) is not None:
        return min(float(hook.sleep.seconds), MAX_PRESTOP_S)
    command = list(getattr(getattr(hook, "_exec", None), "command", None) or [])
    if len(command) == 2 and command[0].rsplit("/", 1)[-1] == "sleep":
        try:
            return min(float(command[1]), MAX_PRESTOP_S)
        except ValueError:
            return 0.0
    return 0.0


def set_ready(api: client.CoreV1Api, pod: Any, ready: bool) -> None:
    """Write the pod's Ready and ContainersReady conditions and the containers' ready flags, as the kubelet does
    when the readiness probe passes (or fails)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    flag = "True" if ready else "False"
    conditions = [
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
    ]
    statuses = []
    for status in pod.status.container_statuses or []:
        statuses.append(
            {
                "name": status.name,
                "image": status.image,
                "imageID": status.image_id or "",
                "ready": ready,
                "started": True,
                "restartCount": status.restart_count or 0,
                "state": {"running": {"startedAt": now}},
            }
        )
    body: dict[str, Any] = {"status": {"conditions": conditions}}
    if statuses:
        body["status"]["containerStatuses"] = statuses
    api.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, body)


def terminate(api: client.CoreV1Api, pod: Any, stop: Callable[[float], None], container: Any | None = None) -> float:
    """Play a deleted pod's termination: the preStop pause, then ``stop(grace)`` (SIGTERM, SIGKILL after ``grace``
    seconds), then remove the pod from the API. Returns the preStop pause used."""
    spec_container = container if container is not None else pod.spec.containers[0]
    pause = pre_stop_seconds(spec_container)
    grace = float(pod.spec.termination_grace_period_seconds or 30)
    started = time.monotonic()
    if pause:
        time.sleep(pause)
    stop(max(1.0, grace - (time.monotonic() - started)))
    try:
        api.delete_namespaced_pod(
            pod.metadata.name,
            pod.metadata.namespace,
            grace_period_seconds=0,
            body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=pod.metadata.uid)
            ),
        )
    except client.ApiException as err:
        if err.status not in (404, 409):  # already gone (kwok's fallback, or a namespace deletion)
            raise
    return pause

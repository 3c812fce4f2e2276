"""The server container's preStop pause: a deleted vLLM pod keeps answering until proxies have stopped sending.

Why: when a pod is deleted (a canary aborted, an old revision scaled down during a promotion, a rollback), the
EndpointSlice controller marks its endpoint terminating at once, but every Service proxy and gateway learns of it
a moment later, and the kubelet sends SIGTERM right after the preStop hook. vLLM's default on SIGTERM
(``--shutdown-timeout 0``) aborts what is in flight, so without a pause the requests routed in that moment fail.
The pause is an ``exec`` of ``sleep`` (every vLLM image has coreutils), not the ``sleep`` lifecycle action, which
needs Kubernetes 1.30 while the chart supports 1.29. The grace period must cover the pause plus vLLM's own
shutdown; the renderer's 60 s does. Measured in the harness (tests/integration/test_endpointclient.py): pods
deleted while a client routes by the Service's endpoints lose requests without the pause and none with it.
"""

from __future__ import annotations

from typing import Any, Final

#: Seconds a deleted server pod keeps serving before SIGTERM: endpoint propagation plus a short request
#: (KServe uses the same 15 s). Longer streams need vLLM's ``--shutdown-timeout`` as well (serving.extraArgs).
PRE_STOP_SECONDS: Final = 15


def lifecycle() -> dict[str, Any]:
    """The container's ``lifecycle``: pause ``PRE_STOP_SECONDS`` before the kubelet sends SIGTERM."""
    return {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}}

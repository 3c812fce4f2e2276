"""The server pod's preStop pause (render/drain.py): present, inside the grace period, and what the harness reads."""

from __future__ import annotations

from kubernetes import client as k8s
from tests.harness.kubelet import pre_stop_seconds

from specdeploy.render.drain import PRE_STOP_SECONDS

from .test_render_deployment import container, deployment


def test_server_container_pauses_before_sigterm_within_the_grace_period() -> None:
    dep = deployment()
    c = container(dep)
    assert c["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}}
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # vLLM needs time of its own after SIGTERM: the pause may take at most half the grace period.
    assert 5 <= PRE_STOP_SECONDS <= grace / 2


def test_the_harness_kubelet_honours_the_rendered_pause() -> None:
    """The e2e's kubelet stand-in reads the pause from the rendered pod spec, as a kubelet would run it."""
    c = container(deployment())
    api = k8s.ApiClient()
    typed = api._ApiClient__deserialize(c, "V1Container")  # type: ignore[attr-defined]
    assert pre_stop_seconds(typed) == PRE_STOP_SECONDS
    assert pre_stop_seconds(k8s.V1Container(name="x")) == 0

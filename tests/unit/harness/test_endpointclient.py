"""The Service client's routing rule: which endpoints a proxy sends to, from EndpointSlices or computed from pods."""

from __future__ import annotations

from typing import Any

from tests.harness.endpointclient import Endpoint, ready_endpoints, slices_from_pods

SERVICE = {
    "metadata": {"name": "coder"},
    "spec": {"selector": {"app": "coder"}, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]},
}


def pod(name: str, ip: str | None, *, ready: bool = True, deleting: bool = False, app: str = "coder") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-07T04:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "vllm", "ports": [{"name": "http", "containerPort": 8123}]}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_only_ready_not_terminating_selected_pods_are_routed_to_on_the_target_port() -> None:
    pods = [
        pod("a", "127.9.0.1"),
        pod("loading", "127.9.0.2", ready=False),
        pod("deleted", "127.9.0.3", deleting=True),
        pod("other-app", "127.9.0.4", app="other"),
        pod("no-ip", None),
    ]
    slices = slices_from_pods(SERVICE, pods)
    assert ready_endpoints(slices) == [Endpoint("127.9.0.1", 8123, "a")]
    conditions = {ep["targetRef"]["name"]: ep["conditions"] for sl in slices for ep in sl["endpoints"]}
    # The controller's podToEndpoint: a terminating pod is listed (serving, not ready); an unready one too.
    assert conditions["deleted"] == {"ready": False, "serving": True, "terminating": True}
    assert conditions["loading"] == {"ready": False, "serving": False, "terminating": False}
    assert set(conditions) == {"a", "loading", "deleted"}


def test_real_endpointslices_are_read_by_the_same_rule_and_sorted() -> None:
    slices = [
        {
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8000}],
            "endpoints": [
                {"addresses": ["127.9.0.7"], "conditions": {"ready": True}, "targetRef": {"name": "b"}},
                {"addresses": ["127.9.0.5"], "conditions": {"ready": True}, "targetRef": {"name": "a"}},
                {"addresses": ["127.9.0.6"], "conditions": {"ready": None}},
            ],
        },
        {"addressType": "IPv6", "ports": [{"port": 8000}], "endpoints": [{"addresses": ["::1"]}]},
        {"addressType": "IPv4", "ports": None, "endpoints": [{"addresses": ["127.9.0.8"]}]},
    ]
    assert ready_endpoints(slices) == [Endpoint("127.9.0.5", 8000, "a"), Endpoint("127.9.0.7", 8000, "b")]
    assert ready_endpoints(slices, port_name="metrics") == []


def test_a_service_without_selector_has_no_computed_endpoints() -> None:
    assert slices_from_pods({"spec": {"ports": [{"port": 80}]}}, [pod("a", "127.9.0.1")]) == []

"""'Is what we want already there?': the comparison that keeps a steady state at zero API writes.

The live objects here are the rendered ones with what the API server adds on create: metadata it owns, the
defaults of apps/v1 and core/v1 (``SetDefaults_*``: dnsPolicy, restartPolicy, probe thresholds, ...), quantities
in canonical form, and a status. Other actors' labels and annotations are added the way Argo CD or a user would.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from tests.unit.rollout.world import merge_patch

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.render import owner_for, render_deployment, render_service
from specdeploy.rollout.drift import is_subset, patch_for, quantity

SPEC: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
    "serving": {
        "resources": {"requests": {"memory": "1024Mi", "cpu": "500m"}, "limits": {"memory": "64Gi"}},
        "hfTokenSecretRef": {"name": "hf"},
    },
}


def rendered(**overrides: Any) -> dict[str, Any]:
    spec = SpeculativeDeploymentSpec.model_validate({**copy.deepcopy(SPEC), **overrides})
    return render_deployment("coder", "llm", spec, "0123456789", owner=owner_for("coder", "uid-1"))


def as_served(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment as a GET returns it after create: server metadata, defaults, canonical quantities, status."""
    live = copy.deepcopy(deployment)
    meta = live["metadata"]
    meta.update(
        uid="7c4a1d52-0000-4000-8000-000000000001",
        resourceVersion="91842",
        generation=1,
        creationTimestamp="2026-01-01T12:00:00Z",
        managedFields=[{"manager": "specdeploy", "operation": "Update", "apiVersion": "apps/v1"}],
    )
    meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
    pod = live["spec"]["template"]["spec"]
    pod.update(dnsPolicy="ClusterFirst", restartPolicy="Always", schedulerName="default-scheduler")
    for container in pod["containers"]:
        container["terminationMessagePath"] = "/dev/termination-log"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            container[probe]["successThreshold"] = 1
            container[probe]["httpGet"]["scheme"] = "HTTP"
        for env in container["env"]:
            ref = env.get("valueFrom", {}).get("fieldRef")
            if ref is not None:
                ref["apiVersion"] = "v1"
        container["resources"]["requests"]["memory"] = "1Gi"  # 1024Mi, canonicalised
    live["status"] = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}
    return live


# ----------------------------------------------------------------------------------------- quantities
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", Decimal(2**30)),
        ("1024Mi", Decimal(2**30)),
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1e3", Decimal(1000)),
        ("1.5G", Decimal(1_500_000_000)),
        ("8Ki", Decimal(8192)),
    ],
)
def test_quantities_are_compared_by_value(text: str, value: Decimal) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1Gb", "one", "1 Gi", "org/target-70b", "v0.32.0", "--port"])
def test_text_that_is_not_a_quantity_is_not_read_as_one(text: str) -> None:
    assert quantity(text) is None


@pytest.mark.parametrize(
    ("desired", "live", "same"),
    [
        ("1Gi", "1024Mi", True),
        ("0.5", "500m", True),
        (4, "4", True),
        ("64Gi", "64G", False),
        ("1Gi", "1Mi", False),
        ("vllm", "vLLM", False),
        (8000, 8001, False),
    ],
)
def test_scalar_values_match_exactly_or_as_equal_quantities(desired: Any, live: Any, same: bool) -> None:
    assert is_subset({"x": desired}, {"x": live}) is same


# ----------------------------------------------------------------------------------------- whole objects
def test_a_deployment_as_the_api_server_returns_it_holds_everything_we_rendered() -> None:
    desired = rendered()
    live = as_served(desired)
    assert desired != live
    assert is_subset(desired, live)


def test_labels_and_annotations_added_by_others_are_not_a_difference() -> None:
    desired = rendered()
    live = as_served(desired)
    live["metadata"]["labels"]["argocd.argoproj.io/instance"] = "llm-apps"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-01-02T00:00:00Z"
    assert is_subset(desired, live)


@pytest.mark.parametrize(
    "change",
    [
        {"speculation": {"numSpeculativeTokens": 6}},
        {"replicas": 3},
        {"target": {"model": "org/target-70b", "tensorParallelSize": 8}},
        {"serving": {**SPEC["serving"], "extraArgs": ["--max-num-seqs", "64"]}},
        {"serving": {**SPEC["serving"], "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]}},
    ],
    ids=["k", "replicas", "tensor-parallel", "extra-arg", "extra-env"],
)
def test_a_change_the_user_made_is_a_difference(change: dict[str, Any]) -> None:
    live = as_served(rendered())
    assert not is_subset(rendered(**change), live)


def test_a_list_item_removed_or_reordered_is_a_difference() -> None:
    desired = rendered()
    live = as_served(desired)
    args = live["spec"]["template"]["spec"]["containers"][0]["args"]
    shorter = copy.deepcopy(live)
    shorter["spec"]["template"]["spec"]["containers"][0]["args"] = args[:-2]
    assert not is_subset(desired, shorter)
    swapped = copy.deepcopy(live)
    swapped["spec"]["template"]["spec"]["containers"][0]["args"] = [args[1], args[0], *args[2:]]
    assert not is_subset(desired, swapped)


def test_a_label_we_own_changed_by_someone_else_is_a_difference() -> None:
    desired = rendered()
    live = as_served(desired)
    live["spec"]["template"]["metadata"]["labels"]["specdeploy.io/revision"] = "fedcba9876"
    assert not is_subset(desired, live)


def test_none_in_what_we_want_means_we_do_not_care() -> None:
    assert is_subset({"a": 1, "b": None}, {"a": 1})
    assert not is_subset({"a": {"b": 1}}, {"a": "not a mapping"})
    assert not is_subset({"a": [1]}, {"a": {"0": 1}})


def test_the_merge_patch_makes_the_live_object_hold_what_we_want_and_keeps_what_others_added() -> None:
    live = as_served(rendered())
    live["metadata"]["labels"]["team"] = "inference"
    desired = rendered(speculation={"numSpeculativeTokens": 6}, replicas=2)
    patch = patch_for(desired)
    assert set(patch) == {"metadata", "spec"}, "no apiVersion, kind or status in a patch"
    assert set(patch["metadata"]) == {"labels", "annotations", "ownerReferences"}, "never name, namespace or uid"
    patched = merge_patch(live, patch)
    assert is_subset(desired, patched)
    assert patched["metadata"]["labels"]["team"] == "inference"
    assert patched["metadata"]["uid"] == live["metadata"]["uid"]
    assert patched["status"] == live["status"]


def test_a_service_with_a_cluster_ip_and_defaulted_ports_holds_what_we_rendered() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(SPEC)
    desired = render_service("coder", "llm", spec, "0123456789", owner=owner_for("coder", "uid-1"))
    live = copy.deepcopy(desired)
    live["spec"].update(
        clusterIP="127.128.12.34",
        clusterIPs=["127.128.12.34"],
        ipFamilies=["IPv4"],
        ipFamilyPolicy="SingleStack",
        sessionAffinity="None",
        internalTrafficPolicy="Cluster",
    )
    for port in live["spec"]["ports"]:
        port.setdefault("protocol", "TCP")
    live["metadata"].update(uid="u", resourceVersion="1", creationTimestamp="2026-01-01T12:00:00Z")
    assert is_subset(desired, live)

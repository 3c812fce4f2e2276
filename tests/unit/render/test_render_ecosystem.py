"""Issue 15: the PodDisruptionBudget and the InferencePool, and the selector the scale subresource publishes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from specdeploy.api.revision import revision_id
from specdeploy.render import owner_for, render_all, render_deployment, render_service
from specdeploy.render.ecosystem import OPTIONAL_KINDS, render_optional
from specdeploy.render.labels import selector_labels, selector_string

from .specs import BASE, make_spec

OWNER = owner_for("coder", "9b0e2a4c-1111-2222-3333-444455556666")


def optional(**sections: Any) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in render_optional("coder", "llm", make_spec(**sections), "0123456789", owner=OWNER)}


def test_no_budget_below_two_replicas_and_one_unavailable_by_default_from_two() -> None:
    assert "PodDisruptionBudget" not in optional(replicas=1)
    assert "PodDisruptionBudget" not in optional(replicas=0)
    pdb = optional(replicas=2)["PodDisruptionBudget"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == OWNER["uid"]


def test_budget_takes_a_count_or_a_percentage() -> None:
    assert optional(replicas=4, disruption={"maxUnavailable": 2})["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 2
    pdb = optional(replicas=4, disruption={"maxUnavailable": "25%"})["PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == "25%"


@pytest.mark.parametrize("bad", [0, -1, 1001, "0%", "101%", "5", "ten", True, 2.5])
def test_a_budget_that_blocks_drains_or_is_not_a_count_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValidationError, match="maxUnavailable"):
        make_spec(disruption={"maxUnavailable": bad})


def test_budget_and_pool_select_every_revision_of_the_object_as_the_service_does() -> None:
    children = optional(replicas=3, routing={"inferencePool": {"enabled": True}})
    svc = render_service("coder", "llm", make_spec(), "0123456789", owner=OWNER)
    dep = render_deployment("coder", "llm", make_spec(), "0123456789", owner=OWNER)
    want = selector_labels("coder")
    assert "specdeploy.io/revision" not in want  # a canary's pods and the serving ones alike
    assert children["PodDisruptionBudget"]["spec"]["selector"] == {"matchLabels": want}
    assert children["InferencePool"]["spec"]["selector"] == {"matchLabels": want}
    assert svc["spec"]["selector"] == want
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in want.items())


def test_scale_selector_string_matches_the_pods() -> None:
    assert selector_string("coder") == "app.kubernetes.io/component=server,specdeploy.io/name=coder"


def test_pool_only_when_enabled_on_the_serving_port_with_the_default_or_given_picker() -> None:
    assert "InferencePool" not in optional()
    pool = optional(serving={"port": 8123}, routing={"inferencePool": {"enabled": True}})["InferencePool"]
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["name"] == "coder"
    assert pool["spec"]["targetPorts"] == [{"number": 8123}]
    assert pool["spec"]["endpointPickerRef"] == {
        "group": "",
        "kind": "Service",
        "name": "coder-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }
    given = {"name": "picker", "port": 9100, "failureMode": "FailOpen"}
    pool = optional(routing={"inferencePool": {"enabled": True, "endpointPickerRef": given}})["InferencePool"]
    assert pool["spec"]["endpointPickerRef"]["name"] == "picker"
    assert pool["spec"]["endpointPickerRef"]["port"] == {"number": 9100}
    assert pool["spec"]["endpointPickerRef"]["failureMode"] == "FailOpen"


def test_disruption_and_routing_are_not_part_of_the_revision() -> None:
    plain = make_spec()
    tuned = make_spec(disruption={"maxUnavailable": "50%"}, routing={"inferencePool": {"enabled": True}})
    assert revision_id(plain) == revision_id(tuned)


def test_render_all_lists_the_optional_children_after_the_service() -> None:
    manifest = {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": "coder", "namespace": "llm"},
        "spec": {**BASE, "replicas": 2, "routing": {"inferencePool": {"enabled": True}}},
    }
    kinds = [o["kind"] for o in render_all(manifest)]
    assert kinds[-3:] == ["Service", "PodDisruptionBudget", "InferencePool"]
    assert set(OPTIONAL_KINDS) == {"PodDisruptionBudget", "InferencePool"}

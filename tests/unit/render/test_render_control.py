"""The control group's Deployment: the same target and serving settings, no speculation, told apart by its labels."""

from __future__ import annotations

from typing import Any

from specdeploy.render import labels as lbl
from specdeploy.render import owner_for
from specdeploy.render.control import (
    GROUP_LABEL,
    control_deployment_name,
    is_control,
    render_control_deployment,
)
from specdeploy.render.deployment import render_deployment
from specdeploy.render.service import render_service

from .specs import make_spec

OWNER = owner_for("coder", "u-1")
SERVING = {"image": "vllm/vllm-openai:v0.32.0", "extraArgs": ["--max-num-seqs", "64"], "gpuMemoryUtilization": 0.8}


def control(**sections: Any) -> dict[str, Any] | None:
    return render_control_deployment("coder", "llm", make_spec(**sections), "0123456789", owner=OWNER)


def selected(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_control_pods_serve_the_same_target_and_settings_without_speculation() -> None:
    spec = dict(speculation={"control": {"replicas": 2}}, serving=SERVING)
    ours = render_deployment("coder", "llm", make_spec(**spec), "0123456789", owner=OWNER)
    theirs = control(**spec)
    assert theirs is not None
    assert theirs["metadata"]["name"] == control_deployment_name("coder") == "coder-control"
    assert theirs["spec"]["replicas"] == 2
    assert theirs["metadata"]["ownerReferences"][0]["uid"] == "u-1"  # deleted with the object
    [c_ours] = ours["spec"]["template"]["spec"]["containers"]
    [c_theirs] = theirs["spec"]["template"]["spec"]["containers"]
    assert "--speculative-config" in c_ours["args"] and "--speculative-config" not in c_theirs["args"]
    without = [a for a in c_ours["args"] if a != "--speculative-config" and not a.startswith("{")]
    assert c_theirs["args"] == without  # everything else the same: target, flags, port
    assert (c_theirs["image"], c_theirs["resources"]) == (c_ours["image"], c_ours["resources"])


def test_labels_tell_control_pods_apart_and_the_service_selects_both() -> None:
    theirs = control(speculation={"control": {"replicas": 1}})
    assert theirs is not None
    ours = render_deployment("coder", "llm", make_spec(), "0123456789", owner=OWNER)
    control_pod = theirs["spec"]["template"]["metadata"]["labels"]
    our_pod = ours["spec"]["template"]["metadata"]["labels"]
    assert is_control(control_pod) and not is_control(our_pod)
    assert control_pod[lbl.SD_REVISION] == "0123456789-control" != our_pod[lbl.SD_REVISION]
    service = render_service("coder", "llm", make_spec(), "0123456789", owner=OWNER)
    assert selected(service["spec"]["selector"], control_pod) and selected(service["spec"]["selector"], our_pod)
    # The control Deployment never selects a speculative pod.
    assert not selected(theirs["spec"]["selector"]["matchLabels"], our_pod)
    assert theirs["spec"]["selector"]["matchLabels"][GROUP_LABEL] == "control"


def test_no_control_deployment_without_a_control_group_or_when_speculation_is_off() -> None:
    assert control() is None
    assert control(speculation={"control": {"replicas": 0}}) is None
    spec = make_spec(speculation={"control": {"replicas": 1}})
    assert render_control_deployment("coder", "llm", spec, "0123456789-nospec", owner=OWNER) is None

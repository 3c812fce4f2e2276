"""The LeaderWorkerSet of a multi-node revision: group size, argv of leader and workers, what only the leader has."""

from __future__ import annotations

import re
from typing import Any

import pytest

from specdeploy.render import render_all
from specdeploy.render.deployment import render_deployment
from specdeploy.render.leaderworkerset import group_size, is_multi_node, render_leaderworkerset
from specdeploy.render.service import render_service

from .specs import flags_with_values, make_spec

TP8_PP2: dict[str, Any] = {"tensorParallelSize": 8, "pipelineParallelSize": 2}
_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$")


def kubelet_expand(arg: str, env: dict[str, str]) -> str:
    """What the kubelet passes to the process for one arg: ``$$`` -> ``$``, ``$(VAR)`` -> its value if defined."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REF.sub(one, arg)


def templates(lws: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    group = lws["spec"]["leaderWorkerTemplate"]
    return group["leaderTemplate"], group["workerTemplate"]


def container(template: dict[str, Any]) -> dict[str, Any]:
    (only,) = template["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def lws_for(**target: Any) -> dict[str, Any]:
    spec = make_spec(target=target, serving={"hfTokenSecretRef": {"name": "hf", "key": "token"}}, replicas=3)
    return render_leaderworkerset("big", "llm", spec, "rev1", owner=None)


def test_sixteen_gpus_on_eight_gpu_nodes_is_a_group_of_two_pods_with_eight_gpus_each() -> None:
    lws = lws_for(**TP8_PP2)
    assert (lws["apiVersion"], lws["kind"]) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    assert lws["spec"]["replicas"] == 3  # groups
    group = lws["spec"]["leaderWorkerTemplate"]
    assert group["size"] == 2
    assert group["restartPolicy"] == "RecreateGroupOnPodRestart"
    for template in templates(lws):
        resources = container(template)["resources"]
        assert resources["requests"]["nvidia.com/gpu"] == "8"
        assert resources["limits"]["nvidia.com/gpu"] == "8"


def test_group_size_follows_gpus_per_node() -> None:
    spec = make_spec(target={"tensorParallelSize": 4, "pipelineParallelSize": 4}, serving={"gpusPerNode": 4})
    assert group_size(spec) == 4
    lws = render_leaderworkerset("x", "ns", spec, "r", owner=None)
    assert container(templates(lws)[1])["resources"]["limits"]["nvidia.com/gpu"] == "4"


def test_leader_runs_vllm_serve_as_node_zero_and_workers_headless_with_their_index() -> None:
    leader, worker = (container(t) for t in templates(lws_for(**TP8_PP2)))
    for c in (leader, worker):
        assert [*c["command"], c["args"][0]] == ["vllm", "serve", "org/target"]
        flags = dict(flags_with_values(c["args"][1:]))  # every flag a real vLLM 0.32 serve option
        assert flags["--tensor-parallel-size"] == "8"
        assert flags["--pipeline-parallel-size"] == "2"
        assert flags["--nnodes"] == "2"
        assert flags["--master-addr"] == "$(LWS_LEADER_ADDRESS)"
    assert dict(flags_with_values(leader["args"][1:]))["--node-rank"] == "0"
    assert "--headless" not in leader["args"]
    assert dict(flags_with_values(worker["args"][1:]))["--node-rank"] == "$(LWS_WORKER_INDEX)"
    assert "--headless" in worker["args"]


def test_kubelet_expands_the_lws_references_but_never_a_users_text() -> None:
    spec = make_spec(
        target=TP8_PP2, serving={"extraArgs": ["--chat-template=$(HF_TOKEN)", "--served-model-name-x=$$x"]}
    )
    lws = render_leaderworkerset("big", "llm", spec, "rev1", owner=None)
    env = {"LWS_LEADER_ADDRESS": "big-0.big.llm", "LWS_WORKER_INDEX": "1", "HF_TOKEN": "hf_secret"}
    leader, worker = ([kubelet_expand(a, env) for a in container(t)["args"]] for t in templates(lws))
    for argv in (leader, worker):
        assert argv[argv.index("--master-addr") + 1] == "big-0.big.llm"
        assert "--chat-template=$(HF_TOKEN)" in argv  # what the user wrote, not the token
        assert "--served-model-name-x=$$x" in argv
        assert not any("hf_secret" in a for a in argv)
    assert worker[worker.index("--node-rank") + 1] == "1"
    assert leader[leader.index("--node-rank") + 1] == "0"


def test_only_the_leader_has_the_port_and_probes_and_is_selected_by_the_service() -> None:
    spec = make_spec(target=TP8_PP2)
    lws = render_leaderworkerset("big", "llm", spec, "rev1", owner=None)
    leader, worker = templates(lws)
    assert container(leader)["ports"][0]["name"] == "http"
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= container(leader).keys()
    assert "ports" not in container(worker)
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & container(worker).keys()
    selector = render_service("big", "llm", spec, "rev1", owner=None)["spec"]["selector"]
    assert selector.items() <= leader["metadata"]["labels"].items()
    assert not selector.items() <= worker["metadata"]["labels"].items()


def test_every_pod_has_shared_memory_and_the_token_only_by_secret_reference() -> None:
    for template in templates(lws_for(**TP8_PP2)):
        c = container(template)
        assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
        assert any(v["name"] == "dshm" and v["emptyDir"]["medium"] == "Memory" for v in template["spec"]["volumes"])
        token = next(e for e in c["env"] if e["name"] == "HF_TOKEN")
        assert token == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}


def test_owner_reference_and_revision_label_carry_over() -> None:
    spec = make_spec(target=TP8_PP2)
    owner = {"apiVersion": "specdeploy.io/v1alpha1", "kind": "SpeculativeDeployment", "name": "big", "uid": "u-1"}
    lws = render_leaderworkerset("big", "llm", spec, "rev1", owner=owner)  # type: ignore[arg-type]
    assert lws["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    for template in templates(lws):
        assert template["metadata"]["labels"]["specdeploy.io/revision"] == "rev1"


def test_without_speculation_neither_pod_loads_a_draft() -> None:
    spec = make_spec(target=TP8_PP2)
    lws = render_leaderworkerset("big", "llm", spec, "rev1", owner=None, speculation_enabled=False)
    for template in templates(lws):
        assert "--speculative-config" not in container(template)["args"]


def test_a_replica_that_fits_one_node_stays_a_deployment() -> None:
    fits = make_spec(target={"tensorParallelSize": 2, "pipelineParallelSize": 2})
    assert not is_multi_node(fits)
    assert not is_multi_node(make_spec(target={"tensorParallelSize": 8}))
    with pytest.raises(ValueError, match="gpusPerNode"):
        render_leaderworkerset("x", "ns", fits, "r", owner=None)
    deployment = render_deployment("x", "ns", fits, "r", owner=None)
    c = container(deployment["spec"]["template"])
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "4"  # TP x PP GPUs on one node
    assert dict(flags_with_values(c["args"][1:]))["--pipeline-parallel-size"] == "2"


def test_render_all_prints_a_leaderworkerset_for_a_multi_node_spec() -> None:
    doc = {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": "big", "namespace": "llm"},
        "spec": {"target": {"model": "org/t", **TP8_PP2}, "draft": {"model": "org/d"}},
    }
    assert [o["kind"] for o in render_all(doc)] == ["Job", "LeaderWorkerSet", "Service"]

"""A validation report comes only from the pod the validation Job controls: a pod that a user created with the
Job's ``job-name`` label and a forged "compatible" report in its termination message is not read.

On the real control plane, with the validator's own command run by the harness (tests/harness/podrunner.py, a
kubelet stand-in) for both pods: the Job's pod runs ``specdeploy validate`` on an incompatible pair, the forged pod
writes a made-up report and exits 0.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness import zoo
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.podrunner import PodRunner
from tests.harness.specs import condition, manifest, sd_status

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.render import job_name, render_validation_job

pytestmark = pytest.mark.integration

FORGED = {
    "checks": [{"name": "vocabulary", "status": "pass", "message": "FORGED: the vocabularies are identical"}],
    "compatible": True,
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return zoo.model_folders(tmp_path_factory.mktemp("models"))


@pytest.fixture
def runner(cluster: LocalCluster) -> Iterator[PodRunner]:
    r = PodRunner(cluster.kubeconfig).start()
    yield r
    r.stop()


def forged_pod(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A pod that looks like the validation Job's (same labels, the Job's name label) but that the user made."""
    parsed = SpeculativeDeploymentSpec.model_validate(spec)
    rev = revision_id(parsed)
    job = render_validation_job(name, namespace, parsed, rev, owner=None)
    template = copy.deepcopy(job["spec"]["template"])
    jname = job_name(name, rev)
    labels = {**template["metadata"]["labels"], "job-name": jname, "batch.kubernetes.io/job-name": jname}
    container = template["spec"]["containers"][0]
    container["command"] = ["python3", "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"]
    container["args"] = [container.get("terminationMessagePath") or "/dev/termination-log", json.dumps(FORGED)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{jname}-forged", "labels": labels},
        "spec": template["spec"],
    }


def test_a_pod_with_the_jobs_label_that_the_job_does_not_own_supplies_no_report(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, runner: PodRunner, models: dict[str, str]
) -> None:
    obj = manifest(
        "forged",
        {
            "target": {"model": models["target"], "maxModelLen": 8192},
            "draft": {"model": models["bad"]},
            "validation": {"policy": "Enforce"},
        },
    )
    pod = forged_pod("forged", namespace, obj["spec"])
    kubectl.apply(pod, "-n", namespace)  # first, so that it is the first pod the index holds

    def forged_done() -> bool:
        got = kubectl.get("pod", pod["metadata"]["name"], namespace) or {}
        states = [cs.get("state", {}) for cs in (got.get("status") or {}).get("containerStatuses") or []]
        return any("terminated" in s for s in states)

    wait_for("the forged pod's report", forged_done, timeout=60)
    kubectl.apply(obj, "-n", namespace)
    st = wait_for(
        "the validation outcome",
        lambda: (s := sd_status(kubectl, "forged", namespace)).get("validation") and s,
        timeout=120,
    )
    assert st["validation"]["compatible"] is False, st["validation"]
    assert not any("FORGED" in c["message"] for c in st["validation"]["checks"])
    assert condition(st, "Validated")["reason"] == "ValidationFailed"
    assert kubectl.deployment("forged", namespace) is None
    assert pod["metadata"]["name"] in {run["pod"] for run in runner.runs}  # the forgery did run

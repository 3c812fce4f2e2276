"""`helm upgrade` from the previous chart to this one keeps the objects and the running pods; the README's CRD
upgrade path (server-side apply of the new CRD over the one the old chart installed) works.

The previous version is the chart, CRD and operator code as they were on the main branch before this round
(commit ``PREVIOUS``, read with ``git archive``). It runs in a control plane of its own, so that the CRD the old
chart installs is really the first one in that cluster (Helm installs ``crds/`` only when absent) and the shared
session cluster is left alone. The sequence is a user's: install the old chart, let the old operator serve an
object, upgrade the chart, apply the new CRD as the README says, replace the operator by the new one; the object's
pods must be the same pods (same UIDs), the Deployment not rolled, the object still Ready.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, REPO
from tests.chart.test_chart_install import Helm
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster, running
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status

pytestmark = [pytest.mark.chart, pytest.mark.integration]

PREVIOUS = "f2ab2dbb4736157adca137306fc87764caae283d"  # main before the ecosystem round (issue 15)
CRD_NAME = "speculativedeployments.specdeploy.io"
RELEASE, SYSTEM, LLM = "sdup", "sdup-system", "sdup-llm"


def previous_tree(dest: Path) -> Path:
    """charts/, crds/ and operator/ as of ``PREVIOUS`` (needs the commit in the clone: not a shallow one)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", PREVIOUS, "charts/specdeploy", "crds", "operator"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if archive.returncode != 0:
        pytest.fail(f"git archive {PREVIOUS} failed (a shallow clone?): {archive.stderr.decode()}", pytrace=False)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def documented_crd_upgrade(crds: Path) -> list[str]:
    """The `kubectl apply` line of docs/install.md's "Upgrading the CRD" block, as kubectl arguments for ``crds``."""
    text = (REPO / "docs" / "install.md").read_text()
    section = text.split("## 2. Upgrading the CRD", 1)[1].split("\n## ", 1)[0]
    [line] = [ln for ln in section.splitlines() if ln.startswith("kubectl apply")]
    args = shlex.split(line)[1:]
    assert args[-2:] == ["-f", "crds/"], line
    return [*args[:-1], str(crds)]


def changed_crds(dest: Path) -> Path:
    """This CRD with its schema's description changed: the shape of every release that changes the schema.

    Needed because the CRD may be unchanged since ``PREVIOUS``; Helm 4 installs ``crds/`` by server-side apply
    as the field manager "helm", so a new value of any field it set is a conflict for any other manager."""
    dest.mkdir(parents=True, exist_ok=True)
    crd = yaml.safe_load((REPO / "crds" / "specdeploy.io_speculativedeployments.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["description"] = "A newer release. " + str(schema.get("description", ""))
    (dest / "specdeploy.io_speculativedeployments.yaml").write_text(yaml.safe_dump(crd))
    return dest


@dataclass
class Upgraded:
    cluster: LocalCluster
    admin: Kubectl
    before: dict[str, Any]
    after: dict[str, Any]
    history: list[dict[str, Any]]
    changed_apply: subprocess.CompletedProcess[str]
    crd_apply: subprocess.CompletedProcess[str]
    served_crd: dict[str, Any]
    new_operator_log: str


def snapshot(admin: Kubectl, name: str) -> dict[str, Any]:
    pods = admin.items("pods", LLM, f"specdeploy.io/name={name}")
    deployment = admin.get("deployment", name, LLM)
    return {
        "pods": sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pods),
        "deployment": (deployment["metadata"]["uid"], deployment["metadata"]["generation"]),
        "sd_uid": admin.get("sd", name, LLM)["metadata"]["uid"],
        "status": sd_status(admin, name, LLM),
    }


def ready(admin: Kubectl, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = sd_status(admin, name, LLM)
        ok = st.get("phase") == "Ready" and condition(st, "Ready").get("status") == "True"
        pods = admin.items("pods", LLM, f"specdeploy.io/name={name}")
        return st if ok and len(pods) == 2 else None

    return wait_for(f"{name} Ready with its 2 pods", check, timeout=90)


@pytest.fixture(scope="module")
def upgraded(helm_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    root = tmp_path_factory.mktemp("upgrade")
    old = previous_tree(root / "previous")
    with running(root / "cluster", nodes=1) as cluster:
        admin = Kubectl(binary=cluster.bin_dir / "kubectl", kubeconfig=cluster.kubeconfig)
        helm = Helm(helm_bin, cluster.kubeconfig, root / "helm")
        admin.run("create", "namespace", LLM)
        helm.run(
            "install", RELEASE, str(old / "charts" / "specdeploy"), "-n", SYSTEM, "--create-namespace",
            "--set", f"watchNamespaces={{{LLM}}}", "--wait", "--timeout", "90s",
        )  # fmt: skip
        spec = {
            "target": {"model": "org/target-8b", "tensorParallelSize": 2},
            "draft": {"model": "org/draft-1b"},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
            "replicas": 2,
        }
        admin.apply(manifest("coder", spec), "-n", LLM)
        # The previous operator (its own code, on the same interpreter) serves the object first.
        old_op = OperatorProcess(
            kubeconfig=cluster.kubeconfig,
            namespaces=[LLM],
            log_dir=root / "old-operator",
            env={"PYTHONPATH": str(old / "operator")},
        )
        old_op.start()
        try:
            ready(admin, "coder")
            assert old_operator_code(old_op) == str(old / "operator" / "specdeploy" / "__init__.py")
            before = snapshot(admin, "coder")
        finally:
            old_op.stop()

        # docs/install.md, "Upgrading the CRD": the new CRD first, with the documented command, then the chart.
        changed_apply = admin.run(*documented_crd_upgrade(changed_crds(root / "changed")), check=False)
        crd_apply = admin.run(*documented_crd_upgrade(REPO / "crds"), check=False)
        helm.run(
            "upgrade", RELEASE, str(CHART), "-n", SYSTEM, "--set", f"watchNamespaces={{{LLM}}}",
            "--wait", "--timeout", "90s",
        )  # fmt: skip
        new_op = OperatorProcess(kubeconfig=cluster.kubeconfig, namespaces=[LLM], log_dir=root / "new-operator")
        new_op.start()
        try:
            # The new operator has looked at the object (kopf resumes every object it finds at start), then
            # a few reconcile periods pass in which a changed rendering would have been patched in.
            wait_for("the new operator to resume the object", lambda: "coder" in new_op.logs(), timeout=60)
            time.sleep(8)
            after = snapshot(admin, "coder")
            log = new_op.logs()
        finally:
            new_op.stop()
        history = json.loads(helm.run("history", RELEASE, "-n", SYSTEM, "-o", "json").stdout)
        yield Upgraded(
            cluster=cluster,
            admin=admin,
            before=before,
            after=after,
            history=history,
            changed_apply=changed_apply,
            crd_apply=crd_apply,
            served_crd=admin.get("crd", CRD_NAME),
            new_operator_log=log,
        )


def old_operator_code(op: OperatorProcess) -> str:
    """Which specdeploy package ``python -m specdeploy.cli`` imports with the operator's environment."""
    done = subprocess.run(
        [sys.executable, "-c", "import specdeploy; print(specdeploy.__file__)"],
        capture_output=True,
        text=True,
        env={**os.environ, **op.env},
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_the_upgrade_is_a_new_revision_of_the_same_release(upgraded: Upgraded) -> None:
    assert [(h["revision"], h["status"]) for h in upgraded.history] == [(1, "superseded"), (2, "deployed")]


def test_the_documented_crd_upgrade_applies_server_side_over_the_crd_helm_installed(upgraded: Upgraded) -> None:
    # A changed schema field owned by Helm's apply: without --force-conflicts this is "conflict with helm".
    assert upgraded.changed_apply.returncode == 0, upgraded.changed_apply.stderr
    assert upgraded.crd_apply.returncode == 0, upgraded.crd_apply.stderr
    shipped = yaml.safe_load((REPO / "crds" / "specdeploy.io_speculativedeployments.yaml").read_text())
    assert upgraded.served_crd["spec"]["versions"] == shipped["spec"]["versions"]
    assert any(
        c["type"] == "Established" and c["status"] == "True" for c in upgraded.served_crd["status"]["conditions"]
    )


def test_the_object_and_its_running_pods_survive_the_upgrade(upgraded: Upgraded) -> None:
    before, after = upgraded.before, upgraded.after
    assert after["sd_uid"] == before["sd_uid"]
    assert len(before["pods"]) == 2
    assert after["pods"] == before["pods"], "the upgrade replaced running vLLM pods"
    assert after["deployment"] == before["deployment"], "the new operator rolled the Deployment"
    assert after["status"]["revision"]["serving"] == before["status"]["revision"]["serving"]
    assert condition(after["status"], "Ready")["status"] == "True"

"""The validator image runs the validation Job's container as the operator renders it: same command, arguments,
environment, user, read-only root, /tmp emptyDir, model cache mounted read-only and the report written to the
termination-message path. Model folders are the real-tokenizer fixtures of the validator's unit tests.

Exit 0 (compatible), 1 (incompatible) and 2 (could not check) are what the operator reads from the Job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.render.job import render_validation_job
from tests.harness import zoo
from tests.images.conftest import Images, Podman

pytestmark = pytest.mark.images

MODELS = "/models"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HF-style folders with real tokenizer files, readable by the image's non-root user."""
    root = tmp_path_factory.mktemp("models")
    zoo.llama(root / "llama31-70b-instruct", zoo.LLAMA_31_70B_INSTRUCT, eos="<|eot_id|>")
    zoo.llama(root / "llama31-8b-instruct", zoo.LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>")
    zoo.mistral(root / "mistral-v03", zoo.MISTRAL_7B_V03, tokenizer="spm-v3")
    zoo.mistral(root / "mistral-v01", zoo.MISTRAL_7B_V01, tokenizer="spm-v1")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def job_container(target: str, draft: str, **target_fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rendered validation Job's pod spec and its one container, for models under the read-only cache."""
    spec = SpeculativeDeploymentSpec.model_validate({
        "target": {"model": f"{MODELS}/{target}", **target_fields},
        "draft": {"model": f"{MODELS}/{draft}"},
        "serving": {"modelCache": {"persistentVolumeClaim": "models", "mountPath": MODELS, "readOnly": True}},
    })  # fmt: skip
    pod = render_validation_job("sd", "ns", spec, "r1", owner=None)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def podman_options(pod: dict[str, Any], container: dict[str, Any], models: Path, report: Path) -> list[str]:
    """The pod's container as podman options: what a kubelet would set up for it on one node."""
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["capabilities"] == {"drop": ["ALL"]}
    options = [f"--user={ctx['runAsUser']}:{ctx['runAsGroup']}", f"--entrypoint={json.dumps(container['command'])}"]
    options += [f"--env={e['name']}={e['value']}" for e in container["env"]]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            options.append(f"--tmpfs={mount['mountPath']}:rw,size=256m,mode=1777")
        else:
            assert volume["persistentVolumeClaim"]["readOnly"] and mount["readOnly"], volume
            options.append(f"--volume={models}:{mount['mountPath']}:ro")
    report.write_text("")
    report.chmod(0o666)
    options.append(f"--volume={report}:{container['terminationMessagePath']}:rw")
    return options


def run_job(
    podman: Podman, images: Images, models: Path, tmp_path: Path, target: str, draft: str, **fields: Any
) -> tuple[int, str, dict[str, Any]]:
    pod, container = job_container(target, draft, **fields)
    report = tmp_path / "termination-log"
    done = podman.run(images.validator, container["args"], options=podman_options(pod, container, models, report))
    text = report.read_text()
    assert text, f"no report in the termination-message file (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return done.returncode, done.stdout, json.loads(text)


def test_compatible_pair_exits_0_with_the_report(podman: Podman, images: Images, models: Path, tmp_path: Path) -> None:
    code, stdout, report = run_job(
        podman, images, models, tmp_path, "llama31-70b-instruct", "llama31-8b-instruct",
        tensorParallelSize=8, maxModelLen=8192,
    )  # fmt: skip
    assert code == 0, stdout
    assert report["compatible"] is True
    assert json.loads(stdout) == report
    assert len(json.dumps(report)) <= 4096


def test_incompatible_pair_exits_1_naming_the_failed_checks(
    podman: Podman, images: Images, models: Path, tmp_path: Path
) -> None:
    code, stdout, report = run_job(podman, images, models, tmp_path, "mistral-v03", "mistral-v01")
    assert code == 1, stdout
    assert report["compatible"] is False
    failed = {c["name"] for c in report["checks"] if c["status"] == "fail"}
    assert {"vocabulary", "token_ids"} <= failed, report


def test_missing_draft_exits_2_and_still_reports(podman: Podman, images: Images, models: Path, tmp_path: Path) -> None:
    code, stdout, report = run_job(podman, images, models, tmp_path, "llama31-70b-instruct", "no-such-model")
    assert code == 2, stdout
    assert report["error"]["source"] == "draft"
    assert "no-such-model" in report["error"]["message"]


def test_runs_as_the_non_root_user_on_a_read_only_root(podman: Podman, images: Images) -> None:
    # The image's own user (no --user): uid 65532 with a home, and nothing outside /tmp is writable.
    probe = (
        "import os, pathlib\n"
        "print(os.getuid(), os.getgid())\n"
        "for p in ('/home/specdeploy/x', '/opt/venv/x', '/x'):\n"
        "    try: pathlib.Path(p).write_text('x'); print('wrote', p)\n"
        "    except OSError as e: print('refused', p, e.errno)\n"
        "pathlib.Path('/tmp/x').write_text('x'); print('tmp ok')\n"
    )
    done = podman.run(
        images.validator, ["-c", probe], options=["--entrypoint=python", "--tmpfs=/tmp:rw,size=16m,mode=1777"]
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "65532 65532"
    assert [ln.split()[0] for ln in lines[1:4]] == ["refused"] * 3, lines
    assert lines[4] == "tmp ok"

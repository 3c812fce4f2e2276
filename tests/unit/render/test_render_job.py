"""The validation Job: the validator's argv, a locked-down pod, a report in the termination message."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from specdeploy.render import job_name, needs_validation_job, owner_for, render_validation_job, validator_args
from specdeploy.validate.cli import add_arguments

from .specs import make_spec, walk

OWNER = owner_for("coder", "uid-1")


def job(**sections: Any) -> dict[str, Any]:
    return render_validation_job("coder", "llm", make_spec(**sections), "0123456789", owner=OWNER)


def container(j: dict[str, Any]) -> dict[str, Any]:
    (c,) = j["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = c
    return result


def test_minimal_args() -> None:
    assert validator_args(make_spec()) == [
        "--target", "org/target",
        "--draft", "org/draft",
        "--method", "draft_model",
        "--tensor-parallel-size", "1",
        "--output", "json",
        "--report-file", "/dev/termination-log",
    ]  # fmt: skip


def test_every_optional_setting_is_passed() -> None:
    spec = make_spec(
        target={"revision": "r1", "tensorParallelSize": 4, "maxModelLen": 8192},
        draft={"revision": "r2", "tensorParallelSize": 1},
        speculation={"method": "eagle3"},
        validation={"gpuMemoryGiB": 80},
    )
    assert validator_args(spec) == [
        "--target", "org/target",
        "--draft", "org/draft",
        "--method", "eagle3",
        "--revision", "r1",
        "--draft-revision", "r2",
        "--tensor-parallel-size", "4",
        "--draft-tensor-parallel-size", "1",
        "--max-model-len", "8192",
        "--gpu-memory-gib", "80",
        "--output", "json",
        "--report-file", "/dev/termination-log",
    ]  # fmt: skip


def test_job_runs_specdeploy_validate_once_within_the_deadline() -> None:
    j = job(validation={"activeDeadlineSeconds": 300, "image": "registry.example/validator:1"})
    assert j["metadata"]["name"] == "coder-validate-0123456789"
    assert j["spec"]["backoffLimit"] == 0
    assert j["spec"]["activeDeadlineSeconds"] == 300
    assert j["spec"]["ttlSecondsAfterFinished"] == 3600
    c = container(j)
    assert c["image"] == "registry.example/validator:1"
    assert c["command"] == ["specdeploy", "validate"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_job_pod_is_non_root_read_only_and_small() -> None:
    j = job()
    pod = j["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["automountServiceAccountToken"] is False
    security = container(j)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container(j)["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    # The only writable place is the /tmp emptyDir, and the Hugging Face cache lives there.
    mounts = {m["mountPath"]: m for m in container(j)["volumeMounts"]}
    assert set(mounts) == {"/tmp"}
    env = {e["name"]: e.get("value") for e in container(j)["env"]}
    assert env["HF_HOME"].startswith("/tmp/")
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert "nvidia.com/gpu" not in str(j)


def test_job_gets_the_token_by_reference_and_the_cache_read_only() -> None:
    j = job(serving={"hfTokenSecretRef": {"name": "hf"}, "modelCache": {"persistentVolumeClaim": "models"}})
    env = {e["name"]: e for e in container(j)["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    hits = [path for path, value in walk(j) if value == "hf"]
    assert all(path.endswith(".secretKeyRef.name") for path in hits), hits
    volumes = {v["name"]: v for v in j["spec"]["template"]["spec"]["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert {"name": "model-cache", "mountPath": "/root/.cache/huggingface", "readOnly": True} in container(j)[
        "volumeMounts"
    ]


def test_job_labels_and_owner() -> None:
    j = job()
    labels = j["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "specdeploy-validator"
    assert labels["app.kubernetes.io/component"] == "validator"
    assert labels["specdeploy.io/revision"] == "0123456789"
    assert j["spec"]["template"]["metadata"]["labels"] == labels
    assert j["metadata"]["ownerReferences"][0]["controller"] is True


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({}, True),
        ({"validation": {"policy": "Warn"}}, True),
        ({"validation": {"policy": "Skip"}}, False),
        ({"draft": None, "speculation": {"method": "ngram"}}, False),
        ({"draft": None, "speculation": {"method": "mtp"}}, True),  # the validator checks the target's MTP layers
        ({"draft": None, "speculation": {"method": "mtp"}, "validation": {"policy": "Skip"}}, False),
        ({"speculation": {"method": "mtp"}}, True),
    ],
)
def test_which_specs_get_a_job(sections: dict[str, Any], expected: bool) -> None:
    assert needs_validation_job(make_spec(**sections)) is expected


def test_no_args_without_a_draft() -> None:
    with pytest.raises(ValueError, match=r"spec\.draft"):
        validator_args(make_spec(draft=None, speculation={"method": "ngram"}))


def test_mtp_without_a_draft_gets_a_job_that_checks_the_target_alone() -> None:
    # vLLM loads the MTP layers from the target itself: the validator must read the target's config (does it have
    # MTP layers?) before any GPU pod starts, and the argv must be one `specdeploy validate` accepts.
    spec = make_spec(draft=None, target={"revision": "v1.2", "tensorParallelSize": 2}, speculation={"method": "mtp"})
    assert needs_validation_job(spec), "the operator plans a Job for it (rollout.validation asks this function)"
    args = validator_args(spec)
    assert args[:4] == ["--target", "org/target", "--method", "mtp"]
    assert "--draft" not in args and "--draft-revision" not in args
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    parsed = parser.parse_args(args)
    assert (parsed.target, parsed.draft, parsed.method) == ("org/target", None, "mtp")
    assert (parsed.revision, parsed.tensor_parallel_size) == ("v1.2", 2)
    assert (
        container(job(draft=None, speculation={"method": "mtp"}))["args"][:4]
        == validator_args(make_spec(draft=None, speculation={"method": "mtp"}))[:4]
    )


def test_mtp_with_its_own_draft_checkpoint_passes_the_draft() -> None:
    args = validator_args(make_spec(draft={"model": "org/mtp-head"}, speculation={"method": "mtp"}))
    assert args[:6] == ["--target", "org/target", "--draft", "org/mtp-head", "--method", "mtp"]


def test_job_name_fits_the_63_character_label_limit() -> None:
    assert len(job_name("a" * 43, "0123456789")) == 63
    with pytest.raises(ValueError, match="43"):
        job_name("a" * 44, "0123456789")


def test_job_image_defaults_to_the_operators_validator_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from specdeploy.api import DEFAULT_VALIDATOR_IMAGE, SpeculativeDeploymentSpec
    from specdeploy.render import render_validation_job

    spec = SpeculativeDeploymentSpec.model_validate({"target": {"model": "org/t"}, "draft": {"model": "org/d"}})
    monkeypatch.delenv("SPECDEPLOY_VALIDATOR_IMAGE", raising=False)
    job = render_validation_job("x", "ns", spec, "abc", owner=None)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_VALIDATOR_IMAGE
    monkeypatch.setenv("SPECDEPLOY_VALIDATOR_IMAGE", "registry.example/validator:1.2.3")
    job = render_validation_job("x", "ns", spec, "abc", owner=None)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/validator:1.2.3"
    pinned = SpeculativeDeploymentSpec.model_validate(
        {**spec.model_dump(by_alias=True), "validation": {"image": "mine:1"}}
    )
    job = render_validation_job("x", "ns", pinned, "abc", owner=None)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "mine:1"

"""The SpeculativeDeployment models: defaults a user gets, bounds and rules that refuse bad specs by field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from specdeploy.api import (
    DEFAULT_VLLM_IMAGE,
    Method,
    SpeculativeDeployment,
    SpeculativeDeploymentSpec,
    SpeculativeDeploymentStatus,
)
from specdeploy.api.errors import error_lines
from specdeploy.api.rules import RESERVED_FLAGS, reserved_flag

MINIMAL: dict[str, Any] = {"target": {"model": "org/target"}, "draft": {"model": "org/draft"}}


def spec_with(**changes: Any) -> dict[str, Any]:
    """MINIMAL with top-level sections replaced or merged (a dict value is merged into the section)."""
    spec = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        elif value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def errors_of(spec: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        SpeculativeDeploymentSpec.model_validate(spec)
    return error_lines(info.value, prefix=["spec"])


def test_minimal_spec_gets_every_documented_default() -> None:
    dumped = SpeculativeDeploymentSpec.model_validate(MINIMAL).model_dump(mode="json", exclude_none=True)
    assert dumped["target"] == {"model": "org/target", "tensorParallelSize": 1, "dtype": "auto"}
    assert dumped["draft"] == {"model": "org/draft"}
    assert dumped["speculation"] == {"method": "draft_model", "numSpeculativeTokens": 4}
    mtp = SpeculativeDeploymentSpec.model_validate(
        {"target": {"model": "org/target"}, "speculation": {"method": "mtp"}}
    )
    assert mtp.speculation.num_speculative_tokens == 1, "vLLM advises k=1 for a single MTP layer"
    assert dumped["replicas"] == 1
    serving = dumped["serving"]
    assert serving["image"] == DEFAULT_VLLM_IMAGE
    assert serving["port"] == 8000
    assert serving["gpuResource"] == "nvidia.com/gpu"
    assert serving["shmSize"] == "8Gi"
    assert dumped["validation"] == {"policy": "Enforce", "activeDeadlineSeconds": 600}
    assert dumped["rollback"] == {
        "minAcceptanceRate": 0.5,
        "windowSeconds": 60,
        "consecutiveWindows": 3,
        "minDraftTokens": 1000,
        "warmupSeconds": 120,
        "action": "RollbackToLastGood",
        "stableAfterSeconds": 300,
    }
    assert dumped["metrics"] == {"source": "Pods", "scrapeIntervalSeconds": 15, "timeoutSeconds": 5}


def test_nested_defaults_fill_partial_sections() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        spec_with(serving={"hfTokenSecretRef": {"name": "hf"}, "modelCache": {"persistentVolumeClaim": "models"}})
    )
    assert spec.serving.hf_token_secret_ref is not None
    assert spec.serving.hf_token_secret_ref.key == "token"
    assert spec.serving.model_cache is not None
    assert spec.serving.model_cache.mount_path == "/root/.cache/huggingface"


def test_dump_is_camel_case_and_round_trips() -> None:
    source = spec_with(
        target={"tensorParallelSize": 2, "maxModelLen": 4096},
        validation={"gpuMemoryGiB": 80},
        serving={"gpuMemoryUtilization": 0.85, "extraArgs": ["--max-num-seqs", "8"]},
    )
    spec = SpeculativeDeploymentSpec.model_validate(source)
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["target"]["tensorParallelSize"] == 2
    assert dumped["validation"]["gpuMemoryGiB"] == 80
    assert dumped["serving"]["gpuMemoryUtilization"] == 0.85
    assert SpeculativeDeploymentSpec.model_validate(dumped) == spec


def test_snake_case_names_are_accepted_for_python_callers() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {"target": {"model": "a/b", "tensor_parallel_size": 2}, "speculation": {"method": "ngram"}}
    )
    assert spec.target.tensor_parallel_size == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"target": {"tensorParallelSize": 0}}, "spec.target.tensorParallelSize"),
        ({"target": {"tensorParallelSize": 65}}, "spec.target.tensorParallelSize"),
        ({"target": {"maxModelLen": 0}}, "spec.target.maxModelLen"),
        ({"target": {"dtype": "fp8"}}, "spec.target.dtype"),
        ({"draft": {"tensorParallelSize": 0}}, "spec.draft.tensorParallelSize"),
        ({"speculation": {"numSpeculativeTokens": 0}}, "spec.speculation.numSpeculativeTokens"),
        ({"speculation": {"numSpeculativeTokens": 17}}, "spec.speculation.numSpeculativeTokens"),
        ({"speculation": {"method": "medusa2"}}, "spec.speculation.method"),
        ({"replicas": -1}, "spec.replicas"),
        ({"serving": {"port": 0}}, "spec.serving.port"),
        ({"serving": {"port": 65536}}, "spec.serving.port"),
        ({"serving": {"gpuMemoryUtilization": 0}}, "spec.serving.gpuMemoryUtilization"),
        ({"serving": {"gpuMemoryUtilization": 1.01}}, "spec.serving.gpuMemoryUtilization"),
        ({"serving": {"shmSize": "8 Gi"}}, "spec.serving.shmSize"),
        ({"serving": {"shmSize": 1.5}}, "spec.serving.shmSize"),
        ({"serving": {"extraArgs": ["--x"] * 65}}, "spec.serving.extraArgs"),
        ({"serving": {"image": "vllm/vllm-openai:latest --privileged"}}, "spec.serving.image"),
        ({"serving": {"hfTokenSecretRef": {"key": "token"}}}, "spec.serving.hfTokenSecretRef.name"),
        ({"serving": {"hfTokenSecretRef": {"name": "Not_A_Name"}}}, "spec.serving.hfTokenSecretRef.name"),
        ({"serving": {"resources": {"limits": {"memory": "lots"}}}}, "spec.serving.resources.limits.memory"),
        ({"serving": {"podLabels": {"team": "x" * 64}}}, "spec.serving.podLabels.team"),
        ({"validation": {"policy": "enforce"}}, "spec.validation.policy"),
        ({"validation": {"activeDeadlineSeconds": 10}}, "spec.validation.activeDeadlineSeconds"),
        ({"rollback": {"minAcceptanceRate": 1.5}}, "spec.rollback.minAcceptanceRate"),
        ({"rollback": {"minAcceptanceRate": -0.1}}, "spec.rollback.minAcceptanceRate"),
        ({"rollback": {"windowSeconds": 5}}, "spec.rollback.windowSeconds"),
        ({"rollback": {"consecutiveWindows": 0}}, "spec.rollback.consecutiveWindows"),
        ({"rollback": {"minDraftTokens": -1}}, "spec.rollback.minDraftTokens"),
        ({"rollback": {"action": "Rollback"}}, "spec.rollback.action"),
        ({"metrics": {"scrapeIntervalSeconds": 0}}, "spec.metrics.scrapeIntervalSeconds"),
        ({"metrics": {"source": "Datadog"}}, "spec.metrics.source"),
        ({"metrics": {"source": "Prometheus", "prometheus": {"url": "ftp://x"}}}, "spec.metrics.prometheus.url"),
    ],
)
def test_out_of_bounds_values_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    lines = errors_of(spec_with(**changes))
    assert any(line.startswith(f"{field}:") for line in lines), lines


def test_unknown_fields_are_refused_not_ignored() -> None:
    lines = errors_of(spec_with(speculation={"numSpeculativeToken": 4}))
    assert lines == ["spec.speculation.numSpeculativeToken: Extra inputs are not permitted"]


def test_target_is_required() -> None:
    assert "spec.target: Field required" in errors_of({"draft": {"model": "a/b"}})


@pytest.mark.parametrize(
    "model",
    [
        "org/x; rm -rf /",
        "$(reboot)",
        "`id`",
        "org/name && curl evil",
        "org/name|sh",
        "org/name>out",
        "org name",
        "org/name\n",
        "org/name\t",
        "-rf",
        "--model=x",
        "org/-name",
        "../etc/passwd",
        "org/../x",
        "/models/..",
        "./model",
        "org//name",
        "org/name/",
        "org/'name'",
        'org/"name"',
        "org/name*",
        "~/models",
        "",
        "a" * 257,
    ],
)
def test_model_ids_that_could_be_shell_or_flags_or_traversal_are_refused(model: str) -> None:
    for section in ("target", "draft"):
        lines = errors_of(spec_with(**{section: {"model": model}}))
        assert any(line.startswith(f"spec.{section}.model:") for line in lines), lines


@pytest.mark.parametrize(
    "model",
    [
        "codellama/CodeLlama-70b-Python-hf",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "gpt2",
        "/models/llama",
        "/mnt/models/.cache/llama-3.1",
        "org/name..v2",
        "org/...",
        "a" * 256,
    ],
)
def test_real_model_ids_and_absolute_paths_are_accepted(model: str) -> None:
    spec = SpeculativeDeploymentSpec.model_validate(spec_with(target={"model": model}))
    assert spec.target.model == model


def test_draft_is_required_for_draft_model_methods() -> None:
    for method in ("draft_model", "eagle", "eagle3", "medusa", "mlp_speculator"):
        lines = errors_of(spec_with(draft=None, speculation={"method": method}))
        assert lines == ["spec.draft is required unless spec.speculation.method is ngram, ngram_gpu, suffix or mtp"]


def test_draft_is_forbidden_for_ngram_and_optional_for_mtp() -> None:
    lines = errors_of(spec_with(speculation={"method": "ngram"}))
    assert lines[0].startswith("spec.draft must not be set when spec.speculation.method is ngram")
    ngram = SpeculativeDeploymentSpec.model_validate(spec_with(draft=None, speculation={"method": "ngram"}))
    assert ngram.draft is None
    mtp = SpeculativeDeploymentSpec.model_validate(spec_with(draft=None, speculation={"method": "mtp"}))
    assert mtp.draft is None


def test_prompt_lookup_is_ngram_only_and_ordered() -> None:
    lines = errors_of(spec_with(speculation={"promptLookupMax": 4}))
    assert "promptLookupMax and promptLookupMin are only for method ngram" in lines[0]
    ngram = {"method": "ngram", "promptLookupMax": 2, "promptLookupMin": 3}
    lines = errors_of(spec_with(draft=None, speculation=ngram))
    assert "promptLookupMin must not exceed spec.speculation.promptLookupMax" in lines[0]
    ok = SpeculativeDeploymentSpec.model_validate(
        spec_with(draft=None, speculation={"method": "ngram", "promptLookupMax": 4, "promptLookupMin": 2})
    )
    assert ok.speculation.prompt_lookup_min == 2


@pytest.mark.parametrize("method", ["eagle", "eagle3", "medusa", "mlp_speculator", "ngram", "mtp"])
def test_heterogeneous_vocab_is_draft_model_only(method: str) -> None:
    draft = None if method in ("ngram", "mtp") else {"model": "org/draft"}
    lines = errors_of(spec_with(draft=draft, speculation={"method": method, "heterogeneousVocab": True}))
    assert lines == [
        "spec.speculation.heterogeneousVocab is only for method draft_model (vLLM maps vocabularies only between "
        "a draft model and the target)"
    ]
    off = SpeculativeDeploymentSpec.model_validate(
        spec_with(draft=draft, speculation={"method": method, "heterogeneousVocab": False})
    )
    assert not off.speculation.heterogeneous_vocab  # an explicit false is kept as unset (same revision id)
    on = SpeculativeDeploymentSpec.model_validate(spec_with(speculation={"heterogeneousVocab": True}))
    assert on.speculation.method == "draft_model" and on.speculation.heterogeneous_vocab is True


@pytest.mark.parametrize(("target_tp", "draft_tp", "ok"), [(4, 1, True), (4, 4, True), (4, 2, False), (1, 2, False)])
def test_draft_tensor_parallel_must_be_one_or_the_targets(target_tp: int, draft_tp: int, ok: bool) -> None:
    spec = spec_with(
        target={"tensorParallelSize": target_tp},
        draft={"tensorParallelSize": draft_tp},
        speculation={"method": "eagle"},
    )
    if ok:
        assert SpeculativeDeploymentSpec.model_validate(spec).draft is not None
    else:
        assert errors_of(spec) == ["spec.draft.tensorParallelSize must be 1 or equal to spec.target.tensorParallelSize"]


@pytest.mark.parametrize("method", [None, "draft_model"])
def test_a_draft_model_runs_with_the_targets_tensor_parallel_size_only(method: str | None) -> None:
    # vLLM's V1 draft-model proposer refuses to start when draft TP != target TP (1 included), so this is refused
    # at apply time instead of after the pods have loaded the target.
    speculation = {"method": method} if method else {}
    spec = spec_with(target={"tensorParallelSize": 4}, draft={"tensorParallelSize": 1}, speculation=speculation)
    assert errors_of(spec) == [
        "spec.draft.tensorParallelSize must equal spec.target.tensorParallelSize for method draft_model (vLLM's "
        "draft-model proposer refuses to start with any other value): leave it out or set the target's value"
    ]
    same = spec_with(target={"tensorParallelSize": 4}, draft={"tensorParallelSize": 4}, speculation=speculation)
    assert SpeculativeDeploymentSpec.model_validate(same).draft is not None
    unset = spec_with(target={"tensorParallelSize": 4}, speculation=speculation)
    assert SpeculativeDeploymentSpec.model_validate(unset).draft is not None


@pytest.mark.parametrize("method", ["eagle", "eagle3", "mtp", "medusa", "mlp_speculator"])
def test_heads_accept_draft_tensor_parallel_one_as_vllm_does(method: str) -> None:
    spec = spec_with(target={"tensorParallelSize": 4}, draft={"tensorParallelSize": 1}, speculation={"method": method})
    assert SpeculativeDeploymentSpec.model_validate(spec).draft is not None


def test_prometheus_source_needs_a_url() -> None:
    lines = errors_of(spec_with(metrics={"source": "Prometheus"}))
    assert lines == ["spec.metrics.prometheus.url is required when spec.metrics.source is Prometheus"]
    ok = spec_with(metrics={"source": "Prometheus", "prometheus": {"url": "http://prometheus.monitoring:9090"}})
    assert SpeculativeDeploymentSpec.model_validate(ok).metrics.prometheus is not None


def test_rollback_window_must_cover_a_scrape() -> None:
    lines = errors_of(spec_with(rollback={"windowSeconds": 10}, metrics={"scrapeIntervalSeconds": 30}))
    assert lines[0].startswith("spec.rollback.windowSeconds must be at least spec.metrics.scrapeIntervalSeconds")


@pytest.mark.parametrize(
    "arg",
    [
        "--model",
        "--model=other/model",
        "--port",
        "--port=9000",
        "--host=127.0.0.1",
        "--speculative-config",
        "--speculative_config",
        "--speculative-config.method",
        "--speculative-config.num_speculative_tokens=8",
        "--speculative-conf",
        "--spec-model",
        "-sc",
        "-tp",
        "-tp=2",
        "-t",
        "--tensor_parallel_size=2",
        "--data-parallel-size",
        "-pp",
        "--max-model-len=4096",
        "--max-model",
        "--dtype",
        "-q",
        "--served-model-name",
        "--gpu-memory-utilization=0.5",
        "--hf-token",
        "--hf-token=hf_abc",
        "--config",
        "--revision=main",
        "--",
    ],
)
def test_extra_args_cannot_override_flags_the_operator_owns(arg: str) -> None:
    lines = errors_of(spec_with(serving={"extraArgs": ["--max-num-seqs", "8", arg]}))
    assert any(line.startswith("spec.serving.extraArgs must not set -") for line in lines), lines


@pytest.mark.parametrize(
    "args",
    [
        ["--max-num-seqs", "64"],
        ["--enable-prefix-caching"],
        ["--max-num-batched-tokens=8192"],
        ["--model-loader-extra-config", '{"x": 1}'],
        ["--quantization-param-path", "/x"],
        ["--seed", "-1"],
        ["-O3"],
        ["--tokenizer-mode", "auto"],
    ],
)
def test_extra_args_that_the_operator_does_not_own_pass(args: list[str]) -> None:
    spec = SpeculativeDeploymentSpec.model_validate(spec_with(serving={"extraArgs": args}))
    assert list(spec.serving.extra_args) == args


def test_reserved_flag_names_the_flag_it_protects() -> None:
    assert reserved_flag("--speculative_conf=x") == "--speculative-config"
    assert reserved_flag("--max-num-seqs") is None
    assert reserved_flag("64") is None
    assert set(RESERVED_FLAGS) >= {"--model", "--port", "--host", "--speculative-config", "--tensor-parallel-size"}


@pytest.mark.parametrize("name", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME", "POD_IP"])
def test_env_cannot_set_the_token_or_operator_variables(name: str) -> None:
    lines = errors_of(spec_with(serving={"env": [{"name": name, "value": "x"}]}))
    assert any(line.startswith("spec.serving.env[0]:") for line in lines), lines


def test_env_value_and_value_from_are_exclusive_and_sources_single() -> None:
    both = {"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    assert any("not both" in line for line in errors_of(spec_with(serving={"env": [both]})))
    two_sources = {
        "name": "A",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}},
    }
    lines = errors_of(spec_with(serving={"env": [two_sources]}))
    assert any(line.startswith("spec.serving.env[0].valueFrom:") for line in lines), lines
    ok = spec_with(serving={"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    assert SpeculativeDeploymentSpec.model_validate(ok).serving.env[0].name == "A"


def test_env_values_are_not_echoed_in_errors() -> None:
    lines = errors_of(spec_with(serving={"env": [{"name": "A", "value": "s3cr3t" * 2000}]}))
    assert lines and all("s3cr3t" not in line for line in lines)


def test_label_and_annotation_keys_must_be_qualified_names() -> None:
    lines = errors_of(spec_with(serving={"podLabels": {"bad key": "x"}}))
    assert any(line.startswith("spec.serving.podLabels:") for line in lines), lines


_PREFIX_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        (f"{_PREFIX_253}/{'n' * 63}", True),  # 253 + "/" + 63: the longest qualified name Kubernetes accepts
        ("n" * 63, True),
        ("n" * 64, False),
        (f"{_PREFIX_253}e/n", False),
        (f"{_PREFIX_253}/{'n' * 64}", False),
    ],
    ids=["317-characters", "63-name", "64-name", "254-prefix", "318-characters"],
)
def test_keys_follow_the_kubernetes_limits_of_prefix_and_name(key: str, valid: bool) -> None:
    for field in ("podLabels", "podAnnotations", "nodeSelector"):
        raw = spec_with(serving={field: {key: "v"}})
        if valid:
            assert key in getattr(SpeculativeDeploymentSpec.model_validate(raw).serving, _snake(field))
        else:
            assert any(line.startswith(f"spec.serving.{field}:") for line in errors_of(raw))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _object(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": name},
        "spec": MINIMAL,
    }


@pytest.mark.parametrize("name", ["a" * 44, "Upper", "1starts-with-digit", "ends-with-", "has.dot", ""])
def test_object_names_that_would_break_children_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        SpeculativeDeployment.model_validate(_object(name))
    assert error_lines(info.value)[0].startswith("metadata")


@pytest.mark.parametrize(
    ("target", "serving", "longest"),
    [
        ({"tensorParallelSize": 8, "pipelineParallelSize": 2}, {}, 30),  # 16 GPUs on 8-GPU nodes: a group
        ({"tensorParallelSize": 4, "pipelineParallelSize": 2}, {"gpusPerNode": 4}, 30),
        ({"tensorParallelSize": 8}, {}, 43),  # one node: a Deployment, the general limit
    ],
)
def test_a_multi_node_object_name_leaves_room_for_its_statefulsets(
    target: dict[str, Any], serving: dict[str, Any], longest: int
) -> None:
    def obj(name: str) -> dict[str, Any]:
        return _object(name) | {"spec": {**MINIMAL, "target": {**MINIMAL["target"], **target}, "serving": serving}}

    SpeculativeDeployment.model_validate(obj("a" * longest))
    with pytest.raises(ValidationError) as info:
        SpeculativeDeployment.model_validate(obj("a" * (longest + 1)))
    assert f"metadata.name must be at most {longest} characters" in str(info.value)


def test_object_defaults_namespace_and_reads_uid() -> None:
    sd = SpeculativeDeployment.model_validate(_object("a" * 43))
    assert (sd.namespace, sd.uid) == ("default", None)
    obj = _object("x")
    obj["metadata"] |= {"namespace": "llm", "uid": "u-1"}
    sd = SpeculativeDeployment.model_validate(obj)
    assert (sd.name, sd.namespace, sd.uid) == ("x", "llm", "u-1")


def test_object_with_wrong_api_version_is_refused() -> None:
    obj = _object("x") | {"apiVersion": "specdeploy.io/v1"}
    with pytest.raises(ValidationError) as info:
        SpeculativeDeployment.model_validate(obj)
    assert error_lines(info.value)[0].startswith("apiVersion:")


def test_status_parses_what_the_operator_writes_and_ignores_unknown_fields() -> None:
    status = SpeculativeDeploymentStatus.model_validate(
        {
            "observedGeneration": 3,
            "phase": "Ready",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "message": "ok",
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                }
            ],
            "revision": {"current": "0123456789", "serving": "0123456789-nospec", "failed": []},
            "acceptance": {"rate": 0.55, "perPosition": [0.78, 0.6], "draftTokens": 4000},
            "kopf": {"progress": {}},
        }
    )
    assert status.conditions[0].reason == "Serving"
    assert status.revision is not None and status.revision.serving == "0123456789-nospec"
    with pytest.raises(ValidationError):
        SpeculativeDeploymentStatus.model_validate(
            {"conditions": [{"type": "Ready", "status": "Yes", "reason": "x", "lastTransitionTime": "t"}]}
        )
    with pytest.raises(ValidationError):
        SpeculativeDeploymentStatus.model_validate({"acceptance": {"rate": 1.2}})


VLLM_SPECULATIVE = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures/vllm/vllm-0.32-speculative-config.json").read_text()
)


def test_every_method_is_one_vllm_knows_and_the_model_free_ones_need_no_draft() -> None:
    assert [m.value for m in Method if m.value not in VLLM_SPECULATIVE["methods"]] == []
    for method in ("ngram", "ngram_gpu", "suffix"):
        spec = SpeculativeDeploymentSpec.model_validate(spec_with(draft=None, speculation={"method": method}))
        assert spec.draft is None


@pytest.mark.parametrize(
    ("field", "camel"),
    [
        ("suffix_decoding_max_tree_depth", "suffixDecodingMaxTreeDepth"),
        ("suffix_decoding_max_cached_requests", "suffixDecodingMaxCachedRequests"),
        ("suffix_decoding_max_spec_factor", "suffixDecodingMaxSpecFactor"),
        ("suffix_decoding_min_token_prob", "suffixDecodingMinTokenProb"),
        ("prompt_lookup_max", "promptLookupMax"),
    ],
)
def test_model_free_knobs_refuse_what_vllms_config_class_refuses(field: str, camel: str) -> None:
    """vLLM's lower (and upper) bound is accepted, one step beyond it is refused naming the field."""
    bounds = VLLM_SPECULATIVE["fields"][field]
    method = "ngram" if field.startswith("prompt_lookup") else "suffix"
    step = 1 if isinstance(bounds["default"], int) or bounds["default"] is None else 0.01
    edges = [("minimum", -step)] + ([("maximum", step)] if "maximum" in bounds else [])
    for key, beyond in edges:
        ok = spec_with(draft=None, speculation={"method": method, camel: bounds[key]})
        SpeculativeDeploymentSpec.model_validate(ok)
        lines = errors_of(spec_with(draft=None, speculation={"method": method, camel: bounds[key] + beyond}))
        assert any(f"spec.speculation.{camel}" in line for line in lines), lines

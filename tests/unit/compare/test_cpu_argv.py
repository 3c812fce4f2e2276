"""The e2e harness turns the operator's rendered vLLM command line into one that runs on this machine's CPU."""

from __future__ import annotations

import json

import pytest
from tests.harness.vllm import cpu_argv

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.render.vllm_args import VLLM_COMMAND, vllm_args

MODELS = {"org/target": "/models/target", "org/draft": "/models/draft"}


def _pod_argv(**spec: object) -> list[str]:
    raw = {
        "target": {"model": "org/target", "tensorParallelSize": 4, "maxModelLen": 8192},
        "draft": {"model": "org/draft"},
        "speculation": {"method": "draft_model", "numSpeculativeTokens": 3},
        **spec,
    }
    return [*VLLM_COMMAND, *vllm_args(SpeculativeDeploymentSpec.model_validate(raw))]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_rendered_argv_maps_models_and_applies_the_cpu_options() -> None:
    rendered = _pod_argv()
    args = cpu_argv(rendered, MODELS)
    assert _option(args, "--model") == "/models/target"
    config = json.loads(_option(args, "--speculative-config"))
    assert config == {"method": "draft_model", "model": "/models/draft", "num_speculative_tokens": 3}
    assert _option(args, "--tensor-parallel-size") == "1"
    assert _option(args, "--dtype") == "float32"
    assert _option(args, "--gpu-memory-utilization") == "0.3"
    assert _option(args, "--max-model-len") == "1024"  # capped from the pod's 8192
    assert args.count("--enforce-eager") == 1
    # Everything else as rendered, e.g. the served model name the operator's metrics label carries.
    assert _option(args, "--served-model-name") == _option(rendered, "--served-model-name")
    assert args.count("--model") == 1


def test_speculation_disabled_argv_has_no_speculative_config() -> None:
    raw = {"target": {"model": "org/target"}, "draft": {"model": "org/draft"}}
    spec = SpeculativeDeploymentSpec.model_validate(raw)
    args = cpu_argv([*VLLM_COMMAND, *vllm_args(spec, speculation_enabled=False)], MODELS)
    assert "--speculative-config" not in args
    assert _option(args, "--max-model-len") == "1024"


def test_an_unmapped_model_is_an_error_not_a_download() -> None:
    with pytest.raises(KeyError, match="org/draft"):
        cpu_argv(_pod_argv(), {"org/target": "/models/target"})


def test_unknown_options_and_missing_values_are_refused() -> None:
    with pytest.raises(ValueError, match=r"--no-such-flag: not an option of vLLM 0\.32"):
        cpu_argv(["vllm", "serve", "org/target", "--no-such-flag"], MODELS)
    with pytest.raises(ValueError, match="--dtype needs a value"):
        cpu_argv(["vllm", "serve", "org/target", "--dtype"], MODELS)
    with pytest.raises(ValueError, match="not a vLLM server command line"):
        cpu_argv(["python3", "-m", "http.server"], MODELS)


def test_flags_without_values_and_inline_values_are_kept() -> None:
    args = cpu_argv(["vllm", "serve", "org/target", "--enforce-eager", "--seed=7", "--max-model-len", "256"], MODELS)
    assert args[:2] == ["--model", "/models/target"]
    assert args.count("--enforce-eager") == 1 and _option(args, "--seed") == "7"
    assert _option(args, "--max-model-len") == "256"

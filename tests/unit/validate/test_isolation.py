"""The validator runs without the operator: no kopf, no Kubernetes client, no torch/transformers, no other
specdeploy module, checked in a fresh interpreter after a full validation (lazy imports included)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.validate.conftest import Folders

FORBIDDEN_ROOTS = {"kopf", "kubernetes", "torch", "transformers", "pydantic", "aiohttp"}

SCRIPT = """
import json, sys
from specdeploy.validate.cli import main
code = main(sys.argv[1:] + ["--output", "json"])
print("MODULES=" + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def _modules_after(args: list[str]) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120, check=False
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES="))
    return proc.returncode, set(json.loads(line.removeprefix("MODULES=")))


def _assert_isolated(modules: set[str]) -> None:
    roots = {m.split(".")[0] for m in modules}
    assert not roots & FORBIDDEN_ROOTS, roots & FORBIDDEN_ROOTS
    ours = {m for m in modules if m.split(".")[0] == "specdeploy"}
    assert ours, "the validator itself must have been imported"
    strangers = {m for m in ours if m != "specdeploy" and not m.startswith("specdeploy.validate")}
    assert not strangers, strangers


def test_local_validation_imports_only_the_validator(folders: Folders) -> None:
    code, modules = _modules_after(
        ["--target", str(folders.llama31_70b_instruct_json), "--draft", str(folders.mistral_v03)]
    )
    assert code == 1  # the run really happened: cross-family is incompatible
    assert "specdeploy.validate.formats.hf_json" in modules and "sentencepiece" in modules  # both formats were read
    assert "tokenizers" not in modules  # a BPE tokenizer.json is read directly, without building the model
    _assert_isolated(modules)


def test_hub_path_imports_only_the_validator(tmp_path: Path) -> None:
    env_script = f"import os; os.environ['HF_HUB_OFFLINE'] = '1'; os.environ['HF_HUB_CACHE'] = {str(tmp_path)!r}\n"
    proc = subprocess.run(
        [sys.executable, "-c", env_script + SCRIPT, "--target", "meta-llama/Llama-3.1-8B", "--draft", "a/b"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2  # nothing cached: could not check
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES="))
    modules = set(json.loads(line.removeprefix("MODULES=")))
    assert "huggingface_hub" in modules
    _assert_isolated(modules)

"""The pair the README and examples/ show must be one the validator (and vLLM) accepts.

The README used to show CodeLlama-70b-Python-hf drafted by CodeLlama-7b-Python-hf: their published configs have
vocab_size 32016 and 32000, which vLLM refuses for a draft model. The example pair is read from the README and the
example manifest and validated with the published configs and the real tokenizer files of those models.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.harness import zoo
from tests.unit.validate.conftest import Run, check

from specdeploy.validate.engine import EXIT_COMPATIBLE, EXIT_INCOMPATIBLE

REPO = Path(__file__).resolve().parents[3]


def _llama3(config: dict[str, Any]) -> Any:
    return lambda folder: zoo.llama(folder, config, eos="<|eot_id|>")


PUBLISHED = {
    "meta-llama/Llama-3.1-70B-Instruct": _llama3(zoo.LLAMA_31_70B_INSTRUCT),
    "meta-llama/Llama-3.1-8B-Instruct": _llama3(zoo.LLAMA_31_8B_INSTRUCT),
    "meta-llama/Llama-3.2-1B-Instruct": _llama3(zoo.LLAMA_32_1B_INSTRUCT),
    # config only (no tokenizer file here): sizes are checked, token ids are not
    "Qwen/Qwen2.5-1.5B-Instruct": lambda folder: zoo.write_model(folder, zoo.QWEN25_15B_INSTRUCT),
    "Qwen/Qwen2.5-0.5B-Instruct": lambda folder: zoo.write_model(folder, zoo.QWEN25_05B_INSTRUCT),
    "codellama/CodeLlama-70b-Python-hf": lambda folder: zoo.write_model(folder, zoo.CODELLAMA_70B_PYTHON),
    "codellama/CodeLlama-7b-Python-hf": lambda folder: zoo.write_model(folder, zoo.CODELLAMA_7B_PYTHON),
}


def _readme_spec() -> dict[str, Any]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    specs = [doc for doc in map(yaml.safe_load, blocks) if isinstance(doc, dict)]
    return next(doc["spec"] for doc in specs if doc.get("kind") == "SpeculativeDeployment")


def _example_specs() -> list[tuple[str, dict[str, Any]]]:
    """(file, spec) of every example with a separate draft model (method draft_model, the default)."""
    out = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not (isinstance(doc, dict) and doc.get("kind") == "SpeculativeDeployment"):
                continue
            spec = doc["spec"]
            if spec.get("draft") and spec.get("speculation", {}).get("method", "draft_model") == "draft_model":
                out.append((path.name, spec))
    return out


def _validate(run: Run, root: Path, spec: dict[str, Any]) -> Any:
    target, draft = spec["target"]["model"], spec["draft"]["model"]
    assert target in PUBLISHED and draft in PUBLISHED, f"no published config in zoo for {target} / {draft}"
    return run(
        PUBLISHED[target](root / "target"),
        PUBLISHED[draft](root / "draft"),
        tensor_parallel=spec["target"].get("tensorParallelSize", 1),
        max_model_len=spec["target"].get("maxModelLen"),
    )


def test_readme_example_pair_is_compatible(run: Run, tmp_path: Path) -> None:
    spec = _readme_spec()
    out = _validate(run, tmp_path, spec)
    assert out.exit_code == EXIT_COMPATIBLE, out.report["summary"]
    assert check(out, "vocabulary")["status"] == "pass"
    assert check(out, "token_ids")["status"] == "pass"


@pytest.mark.parametrize(("name", "spec"), _example_specs(), ids=[name for name, _ in _example_specs()])
def test_example_manifests_name_a_compatible_pair(run: Run, tmp_path: Path, name: str, spec: dict[str, Any]) -> None:
    out = _validate(run, tmp_path, spec)
    assert out.exit_code == EXIT_COMPATIBLE, (name, out.report["summary"])


def test_the_example_manifest_and_the_readme_show_the_same_pair() -> None:
    readme = _readme_spec()
    pairs = {(s["target"]["model"], s["draft"]["model"]) for _, s in _example_specs()}
    assert (readme["target"]["model"], readme["draft"]["model"]) in pairs


def test_the_former_codellama_pair_is_refused_on_vocab_size(run: Run, tmp_path: Path) -> None:
    spec = {
        "target": {"model": "codellama/CodeLlama-70b-Python-hf", "tensorParallelSize": 4, "maxModelLen": 8192},
        "draft": {"model": "codellama/CodeLlama-7b-Python-hf"},
    }
    out = _validate(run, tmp_path, spec)
    assert out.exit_code == EXIT_INCOMPATIBLE
    vocab = check(out, "vocabulary")
    assert "32016" in vocab["message"] and "32000" in vocab["message"]

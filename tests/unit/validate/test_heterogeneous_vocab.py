"""Draft models with another vocabulary: vLLM 0.32's ``use_heterogeneous_vocab`` (draft_model only).

Without the flag vLLM refuses a draft_model pair whose vocab sizes differ, so the validator fails and says the
flag exists and how many tokens the two vocabularies share; with ``--heterogeneous-vocab`` the pair runs (drafts
limited to the shared tokens), so it passes with a warning reporting that overlap. Pairs use real tokenizer files:
Mistral's SentencePiece v3 (32768 ids) and v1 (32000 ids; v3 inserted 768 control tokens after ``</s>``), Meta's
Llama 3 tiktoken (128256 ids).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.unit.validate.conftest import Folders, Run, check

from specdeploy.validate.cli import main
from specdeploy.validate.engine import EXIT_COMPATIBLE, EXIT_INCOMPATIBLE


def test_without_the_flag_the_failure_names_the_flag_and_the_overlap(folders: Folders, run: Run) -> None:
    out = run(folders.mistral_v03, folders.mistral_v01)
    assert out.exit_code == EXIT_INCOMPATIBLE
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "fail"
    assert "use_heterogeneous_vocab: true" in vocab["message"] and "--heterogeneous-vocab" in vocab["message"]
    shared = vocab["details"]["shared_tokens"]
    # v3 only added control tokens: every v1 piece is also a v3 piece, though most ids moved
    assert shared == 32_000
    assert (
        "the tokenizers share 32000 tokens (97.7% of the target's 32768, 100.0% of the draft's 32000)"
        in (vocab["message"])
    )
    token_ids = check(out, "token_ids")
    assert token_ids["status"] == "fail"
    assert "use_heterogeneous_vocab" in token_ids["message"]


def test_with_the_flag_the_pair_passes_with_a_warning_reporting_the_overlap(folders: Folders, run: Run) -> None:
    out = run(folders.mistral_v03, folders.mistral_v01, heterogeneous_vocab=True)
    assert out.exit_code == EXIT_COMPATIBLE, out.report
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "warn"
    assert vocab["details"]["heterogeneous_vocab"] is True
    shared = vocab["details"]["shared_tokens"]
    assert f"maps them through the {shared} tokens (" in vocab["message"]
    assert "% of the target's 32768" in vocab["message"] and "% of the draft's 32000" in vocab["message"]
    token_ids = check(out, "token_ids")
    assert token_ids["status"] == "warn"
    assert token_ids["details"]["shared_tokens"] == shared


def test_padding_only_difference_is_a_full_overlap(folders: Folders, run: Run, tmp_path: Path) -> None:
    padded = tmp_path / "padded-draft"
    shutil.copytree(folders.llama32_1b_instruct, padded)
    config = json.loads((padded / "config.json").read_text())
    config["vocab_size"] = 128384
    (padded / "config.json").write_text(json.dumps(config))
    assert run(folders.llama31_70b_instruct, padded, tensor_parallel=4).exit_code == EXIT_INCOMPATIBLE
    out = run(folders.llama31_70b_instruct, padded, tensor_parallel=4, heterogeneous_vocab=True)
    assert out.exit_code == EXIT_COMPATIBLE
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "warn"
    assert vocab["details"]["shared_tokens"] == 128256
    assert vocab["details"]["shared_of_target"] == 1.0
    assert check(out, "token_ids")["status"] == "pass"


def test_cross_family_pair_reports_a_partial_overlap(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_8b_instruct, folders.mistral_v03, heterogeneous_vocab=True)
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "warn"
    assert 1_000 < vocab["details"]["shared_tokens"] < 32_768
    assert vocab["details"]["shared_of_draft"] < 1.0


def test_the_flag_does_not_apply_to_other_methods(folders: Folders, run: Run, tmp_path: Path) -> None:
    from tests.harness import zoo

    head = zoo.write_model(tmp_path / "eagle-32k", {**zoo.EAGLE_LLAMA3_INSTRUCT_8B, "vocab_size": 32000})
    out = run(folders.llama31_8b_instruct, head, method="eagle", heterogeneous_vocab=True)
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "fail"
    assert "use_heterogeneous_vocab only with method draft_model" in vocab["message"]


def test_cli_flag(folders: Folders, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--target", str(folders.mistral_v03), "--draft", str(folders.mistral_v01), "--output", "json"]
    assert main(argv) == EXIT_INCOMPATIBLE
    capsys.readouterr()
    assert main([*argv, "--heterogeneous-vocab"]) == EXIT_COMPATIBLE
    report = json.loads(capsys.readouterr().out)
    assert "vocabulary" in report["summary"] and "warnings" in report["summary"]


def test_the_mapping_needs_the_drafts_own_tokenizer(folders: Folders, run: Run, tmp_path: Path) -> None:
    """vLLM builds the draft config with the draft's own tokenizer under the flag; a config-only draft cannot run."""
    config_only = tmp_path / "mistral-v01-config-only"
    config_only.mkdir()
    shutil.copy(folders.mistral_v01 / "config.json", config_only / "config.json")
    out = run(folders.mistral_v03, config_only, heterogeneous_vocab=True)
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "fail"
    assert "the draft ships no tokenizer file" in vocab["message"]

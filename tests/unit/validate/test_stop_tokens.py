"""Stop and end-of-sequence ids compared in both directions, with configs shaped like the published ones.

Meta-Llama-3-8B-Instruct first shipped with ``eos_token: <|end_of_text|>`` in tokenizer_config.json and
``eos_token_id: [128001, 128009]`` in generation_config.json; Llama 3.1 70B (base) stops on 128001 only. The eos
roles agree (128001), but the instruct draft also ends turns with ``<|eot_id|>`` (128009), which the base target
does not stop on.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness import zoo
from tests.unit.validate.conftest import Folders, Run, check

from specdeploy.validate.engine import EXIT_COMPATIBLE

LLAMA_31_70B_BASE = {**zoo.LLAMA_31_70B_INSTRUCT, "eos_token_id": 128001}


def _base_70b(root: Path) -> Path:
    return zoo.write_model(
        root / "llama31-70b-base",
        LLAMA_31_70B_BASE,
        tokenizer="llama3-tiktoken",
        tokenizer_config=zoo.llama3_tokenizer_config("<|end_of_text|>"),
        generation_config=zoo.generation(128001),
    )


def _early_llama3_instruct(root: Path) -> Path:
    return zoo.write_model(
        root / "llama3-8b-instruct-early",
        {**zoo.LLAMA_3_8B_INSTRUCT, "eos_token_id": 128001},
        tokenizer="llama3-tiktoken",
        tokenizer_config=zoo.llama3_tokenizer_config("<|end_of_text|>"),
        generation_config=zoo.generation([128001, 128009]),
    )


def test_draft_with_extra_stop_ids_warns_naming_both_sets(run: Run, tmp_path: Path) -> None:
    out = run(_base_70b(tmp_path), _early_llama3_instruct(tmp_path), tensor_parallel=8, max_model_len=8192)
    special = check(out, "special_tokens")
    assert special["details"]["target"]["stop_ids"] == [128001]
    assert special["details"]["draft"]["stop_ids"] == [128001, 128009]
    assert special["status"] == "warn", special
    message = special["message"]
    assert "agree" not in message
    # both sets are named, and the id only the draft stops on is called out by name
    assert "'<|end_of_text|>' (128001)" in message
    assert "'<|eot_id|>' (128009)" in message
    assert "the target does not stop on" in message
    assert out.exit_code == EXIT_COMPATIBLE  # a warning, not a refusal


def test_the_other_direction_still_warns(run: Run, tmp_path: Path) -> None:
    out = run(_early_llama3_instruct(tmp_path), _base_70b(tmp_path), max_model_len=8192)
    special = check(out, "special_tokens")
    assert special["status"] == "warn", special
    assert "the draft never proposes '<|eot_id|>' (128009)" in special["message"]


def test_agreement_is_claimed_only_for_what_matches(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama32_1b_instruct, tensor_parallel=4)
    special = check(out, "special_tokens")
    assert special["status"] == "pass"
    assert special["details"]["target"]["stop_ids"] == special["details"]["draft"]["stop_ids"]
    assert (
        "both stop on '<|end_of_text|>' (128001), '<|eom_id|>' (128008), '<|eot_id|>' (128009)" in (special["message"])
    )


def test_a_draft_without_stop_ids_is_not_reported_as_agreeing(folders: Folders, run: Run, tmp_path: Path) -> None:
    # a config-only copy (no tokenizer, no generation config) whose config.json names no eos id
    bare = zoo.write_model(
        tmp_path / "llama32-1b-no-eos", {k: v for k, v in zoo.LLAMA_32_1B_INSTRUCT.items() if k != "eos_token_id"}
    )
    out = run(folders.llama31_70b_instruct, bare, tensor_parallel=4)
    special = check(out, "special_tokens")
    assert "stop_ids" not in special["details"]["draft"]
    assert "stop tokens agree" not in special["message"]
    assert "the draft configures no stop ids" in special["message"]

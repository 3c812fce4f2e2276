"""Validator verdicts on realistic pairs: real tokenizer files (Mistral, Llama 3) and published config shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.harness import zoo
from tests.unit.validate.conftest import Folders, Run, check, statuses

from specdeploy.validate.engine import EXIT_COMPATIBLE, EXIT_INCOMPATIBLE


def test_llama32_1b_draft_for_llama31_70b_is_compatible(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama32_1b_instruct, tensor_parallel=4, max_model_len=8192)
    assert out.exit_code == EXIT_COMPATIBLE
    assert out.report["compatible"] is True
    got = statuses(out)
    for name in ("vocabulary", "token_ids", "special_tokens", "context_length", "tensor_parallel", "architecture"):
        assert got[name] == "pass", check(out, name)
    assert check(out, "token_ids")["details"]["compared"] == 128256
    # 1.24B vs 70.55B is smaller than 1:20: allowed, but the user is told to expect a low acceptance rate
    ratio = check(out, "parameter_ratio")
    assert ratio["status"] == "warn"
    assert "1:57" in ratio["message"]
    assert "hidden size" in check(out, "architecture")["message"]


def test_llama31_8b_draft_is_within_the_typical_ratio(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama31_8b_instruct, tensor_parallel=8)
    assert out.exit_code == EXIT_COMPATIBLE
    ratio = check(out, "parameter_ratio")
    assert ratio["status"] == "pass"
    assert ratio["details"]["target_params"] == 70_553_706_496
    assert ratio["details"]["draft_params"] == 8_030_261_248
    assert ratio["details"]["ratio_text"] == "1:8.8"


def test_same_tokenizer_as_tokenizer_json_and_tiktoken_compares_equal(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct_json, folders.llama31_8b_instruct, tensor_parallel=8)
    token_ids = check(out, "token_ids")
    assert token_ids["status"] == "pass", token_ids
    assert "tokenizer.json" in token_ids["details"]["target_tokenizer"]
    assert "tiktoken" in token_ids["details"]["draft_tokenizer"]
    assert out.exit_code == EXIT_COMPATIBLE


def test_cross_family_mistral_target_llama_draft_fails(folders: Folders, run: Run) -> None:
    out = run(folders.mistral_v03, folders.llama32_1b_instruct)
    assert out.exit_code == EXIT_INCOMPATIBLE
    assert out.report["compatible"] is False
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "fail"
    assert "32768" in vocab["message"] and "128256" in vocab["message"]
    token_ids = check(out, "token_ids")
    assert token_ids["status"] == "fail"
    assert token_ids["details"]["only_draft"] == 128256 - 32768
    assert "vocabulary" in out.report["summary"] and "token_ids" in out.report["summary"]


def test_mistral_v1_draft_for_v3_target_fails_on_ids(folders: Folders, run: Run) -> None:
    out = run(folders.mistral_v03, folders.mistral_v01)
    assert out.exit_code == EXIT_INCOMPATIBLE
    assert check(out, "vocabulary")["status"] == "fail"
    token_ids = check(out, "token_ids")
    assert token_ids["status"] == "fail"
    # v3 inserted control tokens after </s>: id 3 is [INST] in v3 but the first byte token in v1
    first = token_ids["details"]["examples"][0]
    assert first == {"id": 3, "target": "[INST]", "draft": "<0x00>"}
    assert token_ids["details"]["only_target"] == 768


def test_padded_vocab_fails_even_though_tokenizers_agree(folders: Folders, run: Run, tmp_path: Path) -> None:
    padded = tmp_path / "padded-draft"
    shutil.copytree(folders.llama32_1b_instruct, padded)
    config = json.loads((padded / "config.json").read_text())
    config["vocab_size"] = 128384  # embeddings padded to a multiple of 128
    (padded / "config.json").write_text(json.dumps(config))
    out = run(folders.llama31_70b_instruct, padded, tensor_parallel=4)
    assert out.exit_code == EXIT_INCOMPATIBLE
    assert check(out, "token_ids")["status"] == "pass"
    vocab = check(out, "vocabulary")
    assert vocab["status"] == "fail"
    assert "128256" in vocab["message"] and "128384" in vocab["message"] and "padding" in vocab["message"]


def test_tensor_parallel_that_does_not_divide_heads_fails(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama31_8b_instruct, tensor_parallel=3)
    assert out.exit_code == EXIT_INCOMPATIBLE
    tp = check(out, "tensor_parallel")
    assert tp["status"] == "fail"
    assert "64 attention heads do not divide by TP 3" in tp["message"]


def test_draft_tp_must_equal_target_tp_for_draft_model(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama31_8b_instruct, tensor_parallel=4, draft_tensor_parallel=2)
    tp = check(out, "tensor_parallel")
    assert tp["status"] == "fail"
    assert "must be 1 or the target's TP 4" in tp["message"]
    out = run(folders.llama31_70b_instruct, folders.llama31_8b_instruct, tensor_parallel=4, draft_tensor_parallel=1)
    assert "requires draft TP == target TP" in check(out, "tensor_parallel")["message"]
    # EAGLE heads may run at TP 1 under a TP 4 target
    out = run(
        folders.llama31_8b_instruct, folders.eagle_llama3_8b, method="eagle", tensor_parallel=4, draft_tensor_parallel=1
    )
    assert check(out, "tensor_parallel")["status"] == "pass"


def test_eagle_head_with_the_wrong_hidden_size_fails(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.eagle_llama3_8b, method="eagle", tensor_parallel=4)
    assert out.exit_code == EXIT_INCOMPATIBLE
    arch = check(out, "architecture")
    assert arch["status"] == "fail"
    assert "4096" in arch["message"] and "8192" in arch["message"]
    # the same head on the 8B target it was trained for is fine; it ships no tokenizer and needs none
    out = run(folders.llama31_8b_instruct, folders.eagle_llama3_8b, method="eagle")
    assert check(out, "architecture")["status"] == "pass"
    assert check(out, "token_ids")["status"] == "skip"
    assert check(out, "special_tokens")["status"] == "skip"
    assert check(out, "parameter_ratio")["status"] == "skip"
    assert check(out, "dtype")["status"] == "warn"  # the head is float16, the target bfloat16
    assert out.exit_code == EXIT_COMPATIBLE


def test_mlp_speculator_needs_the_target_hidden_size(folders: Folders, run: Run, tmp_path: Path) -> None:
    # ibm-ai-platform/llama3-8b-accelerator: an MLP speculator whose input width (emb_dim) is the 8B hidden size
    head = zoo.write_model(
        tmp_path / "llama3-8b-accelerator",
        {
            "architectures": ["MLPSpeculatorPreTrainedModel"],
            "emb_dim": 4096,
            "inner_dim": 3072,
            "model_type": "mlp_speculator",
            "n_predict": 4,
            "top_k_tokens_per_head": [4, 3, 2, 2],
            "vocab_size": 128256,
            "torch_dtype": "float16",
        },
    )
    out = run(folders.llama31_8b_instruct, head, method="mlp_speculator", tensor_parallel=2)
    assert check(out, "architecture")["status"] == "pass"
    assert check(out, "tensor_parallel")["details"]["draft_tp"] == 1  # vLLM always runs it at TP 1
    assert out.exit_code == EXIT_COMPATIBLE
    out = run(folders.llama31_70b_instruct, head, method="mlp_speculator", tensor_parallel=4)
    assert check(out, "architecture")["status"] == "fail"
    assert out.exit_code == EXIT_INCOMPATIBLE


def test_eagle3_only_for_supported_target_types(folders: Folders, run: Run, tmp_path: Path) -> None:
    head = zoo.write_model(tmp_path / "eagle3-mistral", {**zoo.EAGLE_LLAMA3_INSTRUCT_8B, "vocab_size": 32768})
    out = run(folders.mistral_v03, head, method="eagle3")
    arch = check(out, "architecture")
    assert arch["status"] == "fail"
    assert "'mistral'" in arch["message"] and "EAGLE-3" in arch["message"]


def test_short_context_llama30_draft_warns_and_renamed_specials_warn(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama30_8b_instruct, tensor_parallel=8, max_model_len=32768)
    assert out.exit_code == EXIT_COMPATIBLE
    context = check(out, "context_length")
    assert context["status"] == "warn"
    assert "8192" in context["message"] and "32768" in context["message"]
    # Llama 3.0 and 3.1 share all ordinary tokens; only reserved special tokens were renamed
    token_ids = check(out, "token_ids")
    assert token_ids["status"] == "warn", token_ids
    assert "special" in token_ids["message"]
    assert token_ids["details"]["differing"] > 0
    assert token_ids["details"]["examples"][0]["id"] >= 128000


def test_serving_length_beyond_the_target_fails(folders: Folders, run: Run) -> None:
    out = run(folders.mistral_v03, folders.mistral_v03, max_model_len=65536)
    context = check(out, "context_length")
    assert context["status"] == "fail"
    assert "32768" in context["message"]


def test_base_draft_for_instruct_target_warns_about_eos(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.llama31_8b_base, tensor_parallel=8)
    assert out.exit_code == EXIT_COMPATIBLE
    special = check(out, "special_tokens")
    assert special["status"] == "warn"
    assert "<|eot_id|>" in special["message"]
    assert special["details"]["target"]["stop_ids"] == [128001, 128008, 128009]
    assert special["details"]["draft"]["stop_ids"] == [128001]


def test_special_token_that_means_something_else_fails(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_70b_instruct, folders.mistral_v03)
    special = check(out, "special_tokens")
    assert special["status"] == "fail"
    assert "128000" in special["message"]


def test_mtp_uses_the_target_itself(folders: Folders, run: Run) -> None:
    out = run(folders.deepseek_v3, None, method="mtp", tensor_parallel=8)
    assert out.exit_code == EXIT_COMPATIBLE, out.report
    assert check(out, "architecture")["status"] == "pass"
    assert "1 MTP layer" in check(out, "architecture")["message"]
    out = run(folders.deepseek_v3, folders.deepseek_v3, method="mtp", tensor_parallel=8)
    assert out.exit_code == EXIT_COMPATIBLE
    out = run(folders.deepseek_v3, folders.llama31_8b_instruct, method="mtp", tensor_parallel=8)
    assert out.exit_code == EXIT_INCOMPATIBLE
    assert "must be the target itself" in check(out, "architecture")["message"]
    out = run(folders.llama31_8b_instruct, None, method="mtp")
    assert check(out, "architecture")["status"] == "fail"  # Llama ships no MTP layers (tests/unit/validate/test_mtp.py)
    assert out.exit_code == EXIT_INCOMPATIBLE


def test_ngram_has_nothing_to_compare(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_8b_instruct, None, method="ngram")
    assert out.exit_code == EXIT_COMPATIBLE
    got = statuses(out)
    assert got["architecture"] == "pass"
    for name in ("vocabulary", "token_ids", "special_tokens", "parameter_ratio", "dtype"):
        assert got[name] == "skip"
    assert out.report["draft"] is None


def test_memory_counts_the_draft_and_both_kv_caches(folders: Folders, run: Run) -> None:
    out = run(
        folders.llama31_70b_instruct,
        folders.llama31_8b_instruct,
        tensor_parallel=4,
        max_model_len=131072,
        gpu_memory_gib=80,
    )
    memory = check(out, "memory")
    assert memory["status"] == "pass", memory
    d = memory["details"]
    assert d["target_weights_gib"] == 32.9  # 70.55e9 params * 2 bytes / 4 GPUs
    assert d["target_kv_gib"] == 10.0  # 2 * 80 layers * 2 KV heads * 128 * 2 bytes * 131072 tokens
    assert d["draft_weights_gib"] == 3.7
    assert d["draft_kv_gib"] == 4.0
    out = run(
        folders.llama31_70b_instruct,
        folders.llama31_8b_instruct,
        tensor_parallel=2,
        max_model_len=131072,
        gpu_memory_gib=80,
    )
    memory = check(out, "memory")
    assert memory["status"] == "warn"
    assert "will not fit" in memory["message"]
    assert out.exit_code == EXIT_COMPATIBLE  # a warning, per the report contract


def test_report_lists_the_contract_checks_in_order(folders: Folders, run: Run) -> None:
    out = run(folders.llama31_8b_instruct, folders.llama32_1b_instruct)
    assert [c["name"] for c in out.report["checks"]] == [
        "vocabulary", "token_ids", "special_tokens", "context_length", "tensor_parallel",
        "architecture", "parameter_ratio", "memory", "dtype",
    ]  # fmt: skip
    assert all(c["status"] in ("pass", "warn", "fail", "skip") and c["message"] for c in out.report["checks"])

"""``method: mtp`` is validated from the target's config alone: an MTP target without MTP layers is refused
before any pod starts, with the config key vLLM reads for that architecture named in the message.

Configs are tiny (a few layers, a 1000-token vocabulary) but carry the model type, architecture and MTP key of the
published families: DeepSeek-V3 and Qwen3-Next (``num_nextn_predict_layers``), Qwen3.5 (``mtp_num_hidden_layers``,
under ``text_config``), MiMo and GLM-4.5 (selected by architecture), LongCat-Flash (vLLM assumes 1 layer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.harness import zoo
from tests.unit.validate.conftest import Run, check

from specdeploy.validate.cli import main
from specdeploy.validate.engine import EXIT_COMPATIBLE, EXIT_INCOMPATIBLE

REPO = Path(__file__).resolve().parents[3]


def tiny(model_type: str, architecture: str, **extra: Any) -> dict[str, Any]:
    return {
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "vocab_size": 1000,
        "torch_dtype": "bfloat16",
        "eos_token_id": 1,
        **extra,
    }


DEEPSEEK_V3 = tiny("deepseek_v3", "DeepseekV3ForCausalLM", num_nextn_predict_layers=1)
QWEN3_NEXT = tiny("qwen3_next", "Qwen3NextForCausalLM", num_nextn_predict_layers=1)
GLM45 = tiny("glm4_moe", "Glm4MoeForCausalLM", num_nextn_predict_layers=1)
MIMO = tiny("mimo", "MiMoForCausalLM", num_nextn_predict_layers=1)
LONGCAT = tiny("longcat_flash", "LongcatFlashForCausalLM")
QWEN35: dict[str, Any] = {
    "architectures": ["Qwen3_5ForConditionalGeneration"],
    "model_type": "qwen3_5",
    "text_config": tiny("qwen3_5_text", "Qwen3_5ForCausalLM", mtp_num_hidden_layers=1),
    "vision_config": {"hidden_size": 32},
}


def without(config: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != key}


def folder(root: Path, name: str, config: dict[str, Any]) -> Path:
    return zoo.write_model(root / name, config)


@pytest.mark.parametrize(
    ("name", "config", "layers"),
    [("deepseek-v3", DEEPSEEK_V3, 1), ("qwen3-next", QWEN3_NEXT, 1), ("glm-4.5", GLM45, 1), ("mimo", MIMO, 1),
     ("qwen3.5", QWEN35, 1), ("longcat-flash", LONGCAT, 1)],
)  # fmt: skip
def test_targets_that_ship_mtp_layers_pass_without_a_draft(
    run: Run, tmp_path: Path, name: str, config: dict[str, Any], layers: int
) -> None:
    out = run(folder(tmp_path, name, config), None, method="mtp")
    arch = check(out, "architecture")
    assert arch["status"] == "pass", arch
    assert f"ships {layers} MTP layer(s)" in arch["message"]
    assert out.exit_code == EXIT_COMPATIBLE
    assert out.report["draft"] is None


@pytest.mark.parametrize(
    ("name", "config", "key"),
    [
        ("deepseek-v3-no-key", without(DEEPSEEK_V3, "num_nextn_predict_layers"), "num_nextn_predict_layers"),
        ("deepseek-v3-zero", {**DEEPSEEK_V3, "num_nextn_predict_layers": 0}, "num_nextn_predict_layers"),
        ("qwen3-next-no-key", without(QWEN3_NEXT, "num_nextn_predict_layers"), "num_nextn_predict_layers"),
        ("glm-4.5-no-key", without(GLM45, "num_nextn_predict_layers"), "num_nextn_predict_layers"),
        # Qwen3.5 declares its MTP layers as mtp_num_hidden_layers; another family's key does not count
        (
            "qwen3.5-wrong-key",
            {**QWEN35, "text_config": {**without(QWEN35["text_config"], "mtp_num_hidden_layers"),
                                       "num_nextn_predict_layers": 1}},
            "mtp_num_hidden_layers",
        ),
    ],
)  # fmt: skip
def test_mtp_target_without_mtp_layers_is_incompatible_naming_the_key(
    run: Run, tmp_path: Path, name: str, config: dict[str, Any], key: str
) -> None:
    out = run(folder(tmp_path, name, config), None, method="mtp")
    arch = check(out, "architecture")
    assert arch["status"] == "fail", arch
    assert key in arch["message"]
    assert "no MTP layers" in arch["message"]
    assert arch["details"]["mtp_key"] == key
    assert out.exit_code == EXIT_INCOMPATIBLE


def test_a_family_vllm_has_no_mtp_drafter_for_fails_listing_the_keys(run: Run, tmp_path: Path) -> None:
    out = run(folder(tmp_path, "llama", tiny("llama", "LlamaForCausalLM")), None, method="mtp")
    arch = check(out, "architecture")
    assert arch["status"] == "fail"
    assert "the target (llama) has no MTP layers" in arch["message"]
    assert "num_nextn_predict_layers" in arch["message"] and "mtp_num_hidden_layers" in arch["message"]
    assert out.exit_code == EXIT_INCOMPATIBLE


def test_cli_accepts_method_mtp_with_only_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = folder(tmp_path, "deepseek-v3", DEEPSEEK_V3)
    bad = folder(tmp_path, "deepseek-v3-no-mtp", without(DEEPSEEK_V3, "num_nextn_predict_layers"))
    assert main(["--method", "mtp", "--target", str(good), "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["compatible"] is True and report["draft"] is None
    assert main(["--method", "mtp", "--target", str(bad)]) == 1
    text = capsys.readouterr().out
    assert text.startswith("INCOMPATIBLE (mtp)")
    assert "num_nextn_predict_layers is not set" in text


def test_specdeploy_validate_command_with_method_mtp_and_no_draft(tmp_path: Path) -> None:
    """``specdeploy validate --target T --method mtp ...``: the form a validation Job for mtp runs."""
    bad = folder(tmp_path, "deepseek-v3-zero", {**DEEPSEEK_V3, "num_nextn_predict_layers": 0})
    report_file = tmp_path / "termination-log"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from specdeploy.cli import main; sys.exit(main())",
         "validate", "--target", str(bad), "--method", "mtp",
         "--tensor-parallel-size", "8", "--output", "json", "--report-file", str(report_file)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == EXIT_INCOMPATIBLE, proc.stderr
    report = json.loads(report_file.read_text())
    arch = next(c for c in report["checks"] if c["name"] == "architecture")
    assert "num_nextn_predict_layers is 0" in arch["message"]

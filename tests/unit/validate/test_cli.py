"""`specdeploy validate` as users and the Job run it: exit codes, text and JSON output, the report file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.validate.conftest import Folders

from specdeploy.validate.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_compatible_pair_exits_0_and_writes_the_report_file(
    folders: Folders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "termination-log"
    code = main([
        "--target", str(folders.llama31_70b_instruct), "--draft", str(folders.llama31_8b_instruct),
        "--method", "draft_model", "--tensor-parallel-size", "8", "--max-model-len", "8192",
        "--output", "json", "--report-file", str(report_file),
    ])  # fmt: skip
    assert code == 0
    stdout = capsys.readouterr().out.strip()
    assert json.loads(stdout)["compatible"] is True
    assert report_file.read_text() == stdout
    assert len(report_file.read_bytes()) <= 4096


def test_incompatible_pair_exits_1_with_readable_text(folders: Folders, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--target", str(folders.mistral_v03), "--draft", str(folders.mistral_v01)])
    assert code == 1
    text = capsys.readouterr().out
    assert text.startswith("INCOMPATIBLE (draft_model)")
    assert "FAIL vocabulary" in text and "FAIL token_ids" in text
    assert "32768" in text


def test_missing_folder_exits_2_and_still_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_file = tmp_path / "termination-log"
    code = main(["--target", str(tmp_path / "nope"), "--draft", str(tmp_path), "--report-file", str(report_file)])
    assert code == 2
    report = json.loads(report_file.read_text())
    assert report["compatible"] is False
    assert report["error"]["kind"] == "not_found"
    assert report["error"]["source"] == "target"
    assert "nope" in report["error"]["message"]
    assert "COULD NOT CHECK" in capsys.readouterr().out


def test_folder_without_config_is_missing_files(folders: Folders, tmp_path: Path) -> None:
    empty = tmp_path / "draft"
    empty.mkdir()
    (empty / "model.safetensors").write_bytes(b"\0" * 16)
    report_file = tmp_path / "r.json"
    code = main(
        ["--target", str(folders.llama31_8b_instruct), "--draft", str(empty), "--report-file", str(report_file)]
    )
    assert code == 2
    error = json.loads(report_file.read_text())["error"]
    assert error["kind"] == "missing_files" and error["source"] == "draft"
    assert "config.json" in error["message"]


def test_malformed_config_names_the_file_and_side(folders: Folders, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folders.llama32_1b_instruct, broken)
    (broken / "config.json").write_text('{"hidden_size": 2048,')
    report_file = tmp_path / "r.json"
    code = main(
        ["--target", str(folders.llama31_8b_instruct), "--draft", str(broken), "--report-file", str(report_file)]
    )
    assert code == 2
    error = json.loads(report_file.read_text())["error"]
    assert error["kind"] == "malformed"
    assert error["message"].startswith("draft: config.json is not valid JSON")


def test_oversized_local_config_is_refused(folders: Folders, tmp_path: Path) -> None:
    import shutil

    big = tmp_path / "big"
    shutil.copytree(folders.llama32_1b_instruct, big)
    (big / "generation_config.json").write_text(json.dumps({"pad": "x" * (2 * 1024 * 1024)}))
    report_file = tmp_path / "r.json"
    code = main(["--target", str(folders.llama31_8b_instruct), "--draft", str(big), "--report-file", str(report_file)])
    assert code == 2
    error = json.loads(report_file.read_text())["error"]
    assert error["kind"] == "oversized" and "generation_config.json" in error["message"]


def test_method_that_needs_a_draft_without_one_exits_2(folders: Folders, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--target", str(folders.llama31_8b_instruct), "--method", "eagle", "--output", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"]["kind"] == "usage" and "--draft" in report["error"]["message"]


def test_bad_arguments_are_rejected_by_argparse(folders: Folders) -> None:
    with pytest.raises(SystemExit) as err:
        main(["--target", str(folders.llama31_8b_instruct), "--method", "lookahead"])
    assert err.value.code == 2
    with pytest.raises(SystemExit):
        main(["--target", str(folders.llama31_8b_instruct), "--tensor-parallel-size", "0"])


def test_deprecated_mtp_alias_is_accepted(folders: Folders, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--target", str(folders.deepseek_v3), "--method", "deepseek_mtp", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "mtp"


def test_the_specdeploy_console_command_runs_the_renderer_arguments(folders: Folders, tmp_path: Path) -> None:
    """Exactly the argument list the operator renders into the Job, through the real `specdeploy` entry point."""
    report_file = tmp_path / "termination-log"
    argv = [
        "validate", "--target", str(folders.llama31_70b_instruct), "--draft", str(folders.llama32_1b_instruct),
        "--method", "draft_model", "--tensor-parallel-size", "4", "--draft-tensor-parallel-size", "4",
        "--max-model-len", "8192", "--gpu-memory-gib", "80", "--output", "json", "--report-file", str(report_file),
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from specdeploy.cli import main; sys.exit(main())", *argv],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_file.read_text())
    assert report["compatible"] is True
    assert {c["name"]: c["status"] for c in report["checks"]}["memory"] == "pass"

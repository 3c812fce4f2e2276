"""The JSON report always fits the 4096-byte termination message and never loses the verdict."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.validate.conftest import Folders, Run

from specdeploy.validate.report import CHECK_NAMES, REPORT_LIMIT, Check, build, to_json


def test_pathological_report_is_trimmed_but_keeps_verdict_and_checks() -> None:
    long_id = "org/" + "x" * 3000
    checks = [
        Check(
            name,
            "fail" if i % 2 else "warn",
            "message " * 500,
            {"examples": [{"id": j, "target": "t" * 40, "draft": "d" * 40} for j in range(50)], "n": i},
        )
        for i, name in enumerate(CHECK_NAMES)
    ]
    report = build(
        method="draft_model",
        target={"model": long_id, "files": ["f" * 200] * 40},
        draft={"model": long_id},
        checks=checks,
    )
    text = to_json(report)
    assert len(text.encode("utf-8")) <= REPORT_LIMIT
    parsed = json.loads(text)
    assert parsed["compatible"] is False
    assert parsed["trimmed"] is True
    assert [(c["name"], c["status"]) for c in parsed["checks"]] == [(c.name, c.status) for c in checks]


def test_multibyte_text_is_measured_in_bytes() -> None:
    checks = [Check(name, "pass", "東京" * 2000) for name in CHECK_NAMES]
    text = to_json(build(method="draft_model", target={"model": "a/b"}, draft=None, checks=checks))
    assert len(text.encode("utf-8")) <= REPORT_LIMIT
    assert json.loads(text)["compatible"] is True


def test_error_report_keeps_kind_and_fits() -> None:
    report = build(
        method="draft_model",
        target={"model": "a/b"},
        draft=None,
        checks=[],
        error={"kind": "auth", "message": "denied " * 2000, "source": "target"},
    )
    parsed = json.loads(to_json(report))
    assert parsed["compatible"] is False
    assert parsed["error"]["kind"] == "auth"
    assert len(to_json(report).encode()) <= REPORT_LIMIT


def test_small_report_is_not_trimmed() -> None:
    text = to_json(build(method="ngram", target={"model": "a/b"}, draft=None, checks=[Check("memory", "skip", "x")]))
    assert "trimmed" not in json.loads(text)


def test_real_cross_family_report_with_deep_paths_fits(folders: Folders, run: Run, tmp_path: Path) -> None:
    deep = tmp_path
    for i in range(12):  # a ~3 KB path: every string in the report gets long
        deep = deep / (f"{i}" + "d" * 240)
    import shutil

    shutil.copytree(folders.mistral_v03, deep / "target")
    out = run(deep / "target", folders.llama32_1b_instruct, tensor_parallel=3, max_model_len=10**6, gpu_memory_gib=1)
    text = to_json(out.report)
    assert len(text.encode()) <= REPORT_LIMIT
    parsed = json.loads(text)
    assert parsed["compatible"] is False
    failed = {c["name"] for c in parsed["checks"] if c["status"] == "fail"}
    assert {"vocabulary", "token_ids", "tensor_parallel", "context_length"} <= failed

"""The committed CRD file is exactly what the models generate, and `specdeploy crd` prints it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from specdeploy.api.crd import build_crd
from specdeploy.cli import main
from specdeploy.render.text import to_yaml

REPO = Path(__file__).resolve().parents[3]
CRD_FILE = REPO / "crds" / "specdeploy.io_speculativedeployments.yaml"
REGENERATE = "specdeploy crd > crds/specdeploy.io_speculativedeployments.yaml"


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.exists(), f"{CRD_FILE} is missing; create it with: {REGENERATE}"
    committed = CRD_FILE.read_text(encoding="utf-8")
    assert committed == to_yaml([build_crd()]), (
        f"{CRD_FILE.name} is out of date with the pydantic models in specdeploy.api; regenerate it with: {REGENERATE}"
    )


def test_crd_command_prints_yaml_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == build_crd()
    assert main(["crd", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == build_crd()

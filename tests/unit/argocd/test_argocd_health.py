"""The Argo CD health check, run by a real Lua 5.1 (lupa) set up the way Argo CD sets up gopher-lua.

Argo CD gives a custom health script only the base, table, package and a "safe" os library (no string
library, so no string methods either), sets the global `obj`, and maps any status outside its list to
Unknown. Every case of health_test.yaml, in Argo CD's own layout, must give exactly the status and message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO = Path(__file__).resolve().parents[3]
ARGOCD = REPO / "argocd"
CHECK = ARGOCD / "resource_customizations" / "specdeploy.io" / "SpeculativeDeployment"
SCRIPT = (CHECK / "health.lua").read_text()
CASES = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]
VALID_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# Argo CD (util/lua/lua.go) opens package, base, table and a safe os (time, date, clock) and nothing else.
SANDBOX = """
debug.setmetatable("", nil)
local safe_os = {time = os.time, date = os.date, clock = os.clock}
string, io, math, debug, coroutine = nil, nil, nil, nil, nil
os = safe_os
"""


def run_health(obj: dict[str, Any]) -> dict[str, Any]:
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    assert lua.lua_version == (5, 1)
    lua.execute(SANDBOX)
    # The object arrives as the API server's JSON, so timestamps are strings and numbers are numbers.
    plain = json.loads(json.dumps(obj, default=str))
    lua.globals()["obj"] = lua.table_from(plain, recursive=True)
    result = lua.execute(SCRIPT)
    return dict(result.items())


def load_input(path: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHECK / path).read_text())
    return data


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_test_yaml_case(case: dict[str, Any]) -> None:
    got = run_health(load_input(case["inputPath"]))
    assert got == {"status": case["healthStatus"]["status"], "message": case["healthStatus"]["message"]}
    assert got["status"] in VALID_STATUSES


def test_every_testdata_file_is_a_case_and_the_required_ones_exist() -> None:
    paths = {c["inputPath"] for c in CASES}
    assert paths == {f"testdata/{p.name}" for p in (CHECK / "testdata").glob("*.yaml")}
    required = {
        "healthy",
        "progressing",
        "degraded",
        "rolled-back",
        "validation-failed",
        "stale-generation",
        "no-status",
    }
    assert required <= {Path(p).stem for p in paths}


def test_the_sandbox_really_removes_the_string_library() -> None:
    # Without this, a script calling s:lower() or string.format would pass here and fail in Argo CD.
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(SANDBOX)
    with pytest.raises(lua51.LuaError):
        lua.execute('return ("x"):upper()')
    with pytest.raises(lua51.LuaError):
        lua.execute('return string.format("%d", 1)')
    assert lua.execute('return "a" .. tostring(2)') == "a2"


def test_rollback_outranks_a_ready_condition() -> None:
    obj = load_input("testdata/rolled-back.yaml")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"]["conditions"])
    assert run_health(obj)["status"] == "Degraded"


def test_stale_generation_outranks_everything() -> None:
    obj = load_input("testdata/rolled-back.yaml")
    obj["metadata"]["generation"] = 5
    assert run_health(obj) == {
        "status": "Progressing",
        "message": "Waiting for the operator to observe generation 5",
    }


def test_a_validation_warning_is_not_degraded() -> None:
    # policy Warn: Validated=False with another reason still serves; only ValidationFailed is Degraded.
    obj = load_input("testdata/validation-failed.yaml")
    obj["status"]["conditions"][0]["reason"] = "ValidationWarned"
    assert run_health(obj)["status"] == "Progressing"


def test_empty_condition_message_falls_back_to_reason() -> None:
    obj = load_input("testdata/degraded.yaml")
    degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
    degraded["message"] = ""
    assert run_health(obj) == {"status": "Degraded", "message": "AcceptanceRateLow"}


def test_status_without_conditions_waits() -> None:
    obj = load_input("testdata/no-status.yaml")
    obj["status"] = {"observedGeneration": 1}
    assert run_health(obj) == {"status": "Progressing", "message": "Waiting for status"}


# --- the argocd-cm snippet -------------------------------------------------------------------------------


def test_argocd_cm_snippet_holds_health_lua_verbatim() -> None:
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"]["resource.customizations.health.specdeploy.io_SpeculativeDeployment"] == SCRIPT
    assert set(cm["data"]) == {"resource.customizations.health.specdeploy.io_SpeculativeDeployment"}


def test_argocd_cm_snippet_is_up_to_date_with_its_generator() -> None:
    done = subprocess.run(
        [sys.executable, str(ARGOCD / "generate_cm.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# --- examples/argocd -------------------------------------------------------------------------------------


def test_example_applications_point_at_the_chart_and_the_examples() -> None:
    apps = [d for d in yaml.safe_load_all((REPO / "examples" / "argocd" / "application.yaml").read_text()) if d]
    assert {a["kind"] for a in apps} == {"Application"}
    paths = {a["spec"]["source"]["path"] for a in apps}
    assert paths == {"charts/specdeploy", "examples"}
    for app in apps:
        assert (REPO / app["spec"]["source"]["path"]).is_dir()
        assert app["apiVersion"] == "argoproj.io/v1alpha1"
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
    chart = next(a for a in apps if a["spec"]["source"]["path"] == "charts/specdeploy")
    assert "ServerSideApply=true" in chart["spec"]["syncPolicy"]["syncOptions"]

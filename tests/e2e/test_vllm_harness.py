"""The harness runs the operator's own rendered vLLM command line on a pod-like loopback IP, and the monitor's
parser reads the real server's counters: the path the operator-level e2e tests build on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.monitor.acceptance import delta, summarize
from specdeploy.monitor.parse import parse_spec_decode
from specdeploy.render.vllm_args import VLLM_COMMAND, vllm_args
from tests.harness.vllm import running, server_from_argv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

POD_IP = "127.0.0.23"


def test_rendered_pod_argv_serves_with_speculation_and_exposes_real_counters(
    models: Path, vllm_python: Path, e2e_out: Path
) -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "tiny/target", "maxModelLen": 512},
            "draft": {"model": "tiny/copy"},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 3},
        }
    )
    argv = [*VLLM_COMMAND, *vllm_args(spec)]
    model_map = {"tiny/target": str(models / "target"), "tiny/copy": str(models / "copy")}
    server = server_from_argv(vllm_python, argv, model_map, host=POD_IP, log_path=e2e_out / "harness-vllm.log")
    started = time.monotonic()
    with running(server, timeout_s=600) as ready:
        startup = time.monotonic() - started
        assert ready.base_url.startswith(f"http://{POD_IP}:")
        assert ready.model_id == "tiny/target"  # the rendered --served-model-name
        before = parse_spec_decode(ready.metrics())
        replies = ready.complete_many(["count 3 4 5 6", "echo red fox =>", "name alice age 31"], 24)
        assert all(len(r["choices"][0]["text"]) > 0 for r in replies)
        after = parse_spec_decode(ready.metrics())
    assert after is not None, "no spec-decode counters on the real /metrics page"
    acceptance = summarize(delta(before, after))
    (e2e_out / "harness-result.txt").write_text(f"startup {startup:.0f} s\n{acceptance.to_json()}\n")
    # The draft is the target itself: every drafted token is accepted, at every position.
    assert acceptance.draft_tokens is not None and acceptance.draft_tokens > 0
    assert acceptance.rate == pytest.approx(1.0)
    assert acceptance.per_position == pytest.approx((1.0, 1.0, 1.0))
    assert not server.running()

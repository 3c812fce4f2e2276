"""The harness runs the operator's own rendered vLLM command line on a pod-like loopback IP, and the monitor's
parser reads the real server's counters: the path the operator-level e2e tests build on. The command line carries
a ``numSpeculativeTokensPerBatchSize`` schedule (issue 14), so the same server shows vLLM following it.
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
            # Issue 14: depth shaped by load, vLLM 0.32's num_speculative_tokens_per_batch_size: 3 tokens per step
            # at batch 1, none from batch 2 up (checked below from vLLM's own draft-token counter).
            "speculation": {
                "method": "draft_model",
                "numSpeculativeTokens": 3,
                "numSpeculativeTokensPerBatchSize": [
                    {"start": 1, "end": 1, "tokens": 3},
                    {"start": 2, "end": 256, "tokens": 0},
                ],
            },
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
        prompts = ["count 3 4 5 6", "echo red fox =>", "name alice age 31"]
        replies = ready.complete_many(prompts, 24, concurrency=1)  # batch 1: the schedule drafts 3 per step
        assert all(len(r["choices"][0]["text"]) > 0 for r in replies)
        after = parse_spec_decode(ready.metrics())
        eight = [f"count {n} {n + 1} {n + 2}" for n in range(8)]
        ready.complete_many(eight, 24, concurrency=8)  # batch 8: the schedule drafts nothing
        loaded = parse_spec_decode(ready.metrics())
    assert after is not None and loaded is not None, "no spec-decode counters on the real /metrics page"
    acceptance = summarize(delta(before, after))
    one_per_request = acceptance.draft_tokens / len(prompts) if acceptance.draft_tokens else 0.0
    eight_per_request = (loaded.draft_tokens - after.draft_tokens) / len(eight)
    (e2e_out / "harness-result.txt").write_text(
        f"startup {startup:.0f} s\n{acceptance.to_json()}\nschedule [[1,1,3],[2,256,0]]: draft tokens per request "
        f"(vllm:spec_decode_num_draft_tokens_total) {one_per_request:.1f} one at a time, "
        f"{eight_per_request:.1f} eight at a time\n"
    )
    # The schedule as vLLM applies it: one at a time drafts (about 24 / 4 steps of 3), eight at a time does not;
    # only the ramp and the tail of the burst (batch 1 again as the last request finishes) may draft a little.
    assert one_per_request >= 12, one_per_request
    assert eight_per_request <= 0.25 * one_per_request, (one_per_request, eight_per_request)
    # The draft is the target itself: every drafted token is accepted, at every position.
    assert acceptance.draft_tokens is not None and acceptance.draft_tokens > 0
    assert acceptance.rate == pytest.approx(1.0)
    assert acceptance.per_position == pytest.approx((1.0, 1.0, 1.0))
    assert not server.running()

"""Depth shaped by load on real vLLM 0.32 (CPU build): the schedule the API accepts is the one vLLM accepts, and
vLLM's own draft-token counter follows it (issue 14, "Real vLLM, and the proof").

One server, the operator's rendered command line with ``numSpeculativeTokensPerBatchSize`` [[1, 1, 4], [2, 256, 0]]
and a copy draft (every drafted token is accepted, so each engine step at batch 1 drafts exactly 4 tokens): requests
one at a time must draft, 8 at a time must (nearly) not. The ramp-up and the tail of the concurrent phase run at
batch sizes below 8 (down to 1 as the last requests finish), so "nearly" is a bound, not zero.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.payoff import BatchSizeRange, check_schedule
from specdeploy.monitor.parse import SpecDecodeCounters, parse_spec_decode
from specdeploy.render.vllm_args import VLLM_COMMAND, speculative_config, vllm_args
from tests.harness.vllm import running, server_from_argv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

POD_IP = "127.0.0.24"
SCHEDULE = [{"start": 1, "end": 1, "tokens": 4}, {"start": 2, "end": 256, "tokens": 0}]
MAX_TOKENS = 32
PROMPTS = [f"count {n} {n + 1} {n + 2} {n + 3}" for n in range(8)]


def drafts(before: SpecDecodeCounters | None, after: SpecDecodeCounters | None) -> float:
    assert before is not None and after is not None, "no spec-decode counters on the real /metrics page"
    return after.draft_tokens - before.draft_tokens


def test_vllm_drafts_at_one_request_and_not_at_eight_as_the_schedule_says(
    models: Path, vllm_python: Path, e2e_out: Path
) -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "tiny/target", "maxModelLen": 512},
            "draft": {"model": "tiny/copy"},
            "speculation": {"numSpeculativeTokens": 4, "numSpeculativeTokensPerBatchSize": SCHEDULE},
        }
    )
    assert speculative_config(spec)["num_speculative_tokens_per_batch_size"] == [[1, 1, 4], [2, 256, 0]]
    argv = [*VLLM_COMMAND, *vllm_args(spec)]
    model_map = {"tiny/target": str(models / "target"), "tiny/copy": str(models / "copy")}
    server = server_from_argv(vllm_python, argv, model_map, host=POD_IP, log_path=e2e_out / "schedule-vllm.log")
    with running(server, timeout_s=600) as ready:
        ready.complete_many(PROMPTS[:1], 8, concurrency=1)  # warm-up
        start = parse_spec_decode(ready.metrics())
        ready.complete_many(PROMPTS, MAX_TOKENS, concurrency=1)
        one = parse_spec_decode(ready.metrics())
        started = time.monotonic()
        ready.complete_many(PROMPTS, MAX_TOKENS, concurrency=8)
        eight_seconds = time.monotonic() - started
        eight = parse_spec_decode(ready.metrics())
    per_request_one = drafts(start, one) / len(PROMPTS)
    per_request_eight = drafts(one, eight) / len(PROMPTS)
    (e2e_out / "schedule-result.txt").write_text(
        f"schedule {json.dumps(speculative_config(spec)['num_speculative_tokens_per_batch_size'])}\n"
        f"draft tokens per request (vllm:spec_decode_num_draft_tokens_total): 1 concurrent {per_request_one:.1f}, "
        f"8 concurrent {per_request_eight:.1f} ({eight_seconds:.1f} s)\n"
    )
    # Batch 1, depth 4, every draft accepted: about MAX_TOKENS / 5 steps of 4 drafts each.
    assert per_request_one >= 0.5 * MAX_TOKENS, per_request_one
    # Batch 8, depth 0: only the ramp and the tail (batch 1 again) draft.
    assert per_request_eight <= 0.25 * per_request_one, (per_request_one, per_request_eight)


VLLM_CHECK = """
import json, sys
from vllm.v1.spec_decode.dynamic.utils import validate_and_normalize_dynamic_sd_schedule
verdicts = []
for schedule in json.load(sys.stdin):
    try:
        verdicts.append(validate_and_normalize_dynamic_sd_schedule(schedule) == [tuple(e) for e in schedule])
    except ValueError:
        verdicts.append(False)
print(json.dumps(verdicts))
"""


def test_the_api_accepts_exactly_the_schedules_vllm_accepts_as_written(vllm_python: Path) -> None:
    """vLLM's own validator (it also sorts: the API asks for sorted input, so "as written" is the comparison)."""
    schedules = [
        [[1, 1, 4], [2, 256, 0]],
        [[1, 4, 3], [5, 16, 2], [17, 256, 0]],
        [[1, 16, 3], [32, 128, 2]],
        [[1, 65536, 0]],
        [[2, 8, 1]],
        [[1, 4, 2], [4, 8, 1]],
        [[1, 4, 2], [9, 16, 1], [5, 8, 0]],
        [[1, 8, 2], [12, 9, 1]],
    ]
    done = subprocess.run(
        [str(vllm_python), "-c", VLLM_CHECK],
        input=json.dumps(schedules),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    vllm_verdicts = json.loads(done.stdout.strip().splitlines()[-1])
    ours = []
    for schedule in schedules:
        try:
            check_schedule([BatchSizeRange(start=s, end=e, tokens=t) for s, e, t in schedule], k=4)
            ours.append(True)
        except ValueError:
            ours.append(False)
    assert ours == vllm_verdicts == [True, True, True, True, False, False, False, False]

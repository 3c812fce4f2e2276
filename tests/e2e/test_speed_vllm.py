"""Speculation must pay, on real vLLM (issue 14): a draft that makes serving slower than no speculation is rolled back
with reason ``SlowerThanControl``, and the client sees the same slowdown the operator measured.

One SpeculativeDeployment names the other-family draft at depth 4 (it accepts about 2% of its proposals, so each step
pays for four draft passes and a verification and gains almost nothing: about 0.1x here) with a control group of one
pod: the same target and serving settings, speculation off. ``minAcceptanceRate: 0`` leaves the acceptance rule out,
so only speed can act. Real vLLM runs each pod's own command line (``VllmFleet``: the control pod's has no
``--speculative-config``), each on its own core, with the same greedy traffic (2 requests in flight per pod,
streamed).

The operator's number is the speedup it publishes in status.performance before the rollback: the windows the
minSpeedup rule judged, pooled, over the span ``speedupFrom``..``speedupTo`` (the scrapes the data lies between, to
the millisecond). The client's number is over the same span: the requests that finished in it, each timed by the
client (``tests.harness.timedclient``, a process per sender) from its first to its last streamed token, summed over
the tokens after each request's first (vLLM's own definition of time per output token), control over speculative.
The two must agree within the issue's 15%.

Earlier this test compared per-window figures aligned on the moment the rollback was seen, and over ten runs the
ratio operator/client ranged from 0.77 to 3.44: the speculative pod's speed swings several-fold from one 20 s window
to the next, so a misaligned edge or a window mean weighted differently from the client's moved a figure near 0.05x
by half or more. Measuring the same requests on both sides, weighted the same way (the histogram's own mean over all
the pooled windows, not a mean of window means), removes both; timing them outside the harness's process removes a
client that read its first chunk late (see ``timedclient``). Timings and numbers go to
``$SPECDEPLOY_E2E_OUT/speed-vllm.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness.kubectl import Kubectl
from tests.harness.kubelet import ANNOTATION as KUBELET_ANNOTATION
from tests.harness.kubelet import VALUE as KUBELET_HARNESS
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status
from tests.harness.vllmfleet import PodServer, VllmFleet, model_id, wait

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

NAME = "paid"
TARGET, SLOW = model_id("target"), model_id("other-family")
MIN_SPEEDUP = 0.8
#: How far apart the operator's published speedup and the client's may be (the issue's 15%).
AGREEMENT = 0.15
#: The first seconds of a fresh CPU server are slow (kernels built on first use): left out by both sides.
WARMUP_SECONDS = 20
WINDOWS = 2
WINDOW_SECONDS = 20
#: Tokens per request: long enough that a few milliseconds of scheduling delay on either side of a request are a small
#: share of its decode time (the control pod decodes 128 tokens in well under a second).
MAX_TOKENS = 128
STARTUP_TIMEOUT = 420
VERDICT_TIMEOUT = 300


def paid_object() -> dict[str, Any]:
    return manifest(
        NAME,
        {
            "target": {"model": TARGET, "maxModelLen": 1024},
            "draft": {"model": SLOW},
            "speculation": {
                "method": "draft_model",
                "numSpeculativeTokens": 4,
                "control": {"replicas": 1, "minOutputTokens": 200},
            },
            "validation": {"policy": "Skip"},
            "rollback": {
                "minAcceptanceRate": 0,
                "minSpeedup": MIN_SPEEDUP,
                "windowSeconds": WINDOW_SECONDS,
                "consecutiveWindows": WINDOWS,
                "minDraftTokens": 100,
                "warmupSeconds": WARMUP_SECONDS,
                "stableAfterSeconds": 600,
                "action": "DisableSpeculation",
            },
            "rollout": {"strategy": "Replace"},
            "metrics": {"scrapeIntervalSeconds": 2, "timeoutSeconds": 5},
            "serving": {"podAnnotations": {KUBELET_ANNOTATION: KUBELET_HARNESS}},
        },
    )


def timestamp(rfc3339: str) -> float:
    """Epoch seconds of a status timestamp (``...Z``, milliseconds or not)."""
    return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def test_a_draft_slower_than_the_control_group_is_rolled_back_on_real_vllm(
    e2e_out: Path, kubectl: Kubectl, namespace: str, operator: OperatorProcess, vllm_fleet: VllmFleet
) -> None:
    report: dict[str, Any] = {"minSpeedup": MIN_SPEEDUP}
    t0 = time.monotonic()
    assert vllm_fleet.traffic is not None
    vllm_fleet.traffic.timed = True
    vllm_fleet.traffic.max_tokens = MAX_TOKENS
    try:
        kubectl.apply(paid_object(), "-n", namespace)

        def both_serving() -> tuple[PodServer, PodServer] | None:
            ready = vllm_fleet.ready(namespace)
            spec = [ps for ps in ready if ps.draft == SLOW]
            control = [ps for ps in ready if ps.draft is None]
            return (spec[0], control[0]) if len(spec) == len(control) == 1 and len(ready) == 2 else None

        spec_ps, control_ps = wait(
            "real vLLM for the speculative and the control pod", vllm_fleet, both_serving, STARTUP_TIMEOUT
        )
        report["both_ready_s"] = round(time.monotonic() - t0, 1)
        assert spec_ps.server is not None and control_ps.server is not None
        assert "--speculative-config" not in control_ps.server.args, control_ps.server.args
        assert spec_ps.server.args[spec_ps.server.args.index("--served-model-name") + 1] == TARGET
        assert control_ps.server.args[control_ps.server.args.index("--served-model-name") + 1] == TARGET
        wait(
            "READY 2/2 (the control pod counts)",
            vllm_fleet,
            lambda: sd_status(kubectl, NAME, namespace).get("ready") == "2/2",
            60,
        )

        published: list[dict[str, Any]] = []  # status.performance as written while the draft served

        def rolled_back() -> dict[str, Any] | None:
            st = sd_status(kubectl, NAME, namespace)
            perf = st.get("performance") or {}
            speculating = perf.get("speedup") is not None and not str(perf.get("revision", "")).endswith("-nospec")
            if speculating and (not published or published[-1] != perf):
                published.append(perf)
            return st if condition(st, "RolledBack").get("status") == "True" else None

        st = wait("the slower-than-control revision rolled back", vllm_fleet, rolled_back, VERDICT_TIMEOUT)
        report["rolled_back_s"] = round(time.monotonic() - t0, 1)
        report["published"] = published
        assert published, f"no status.performance.speedup was published before the rollback: {st}"
        # The client's number over the span the operator's last published speedup covers: the requests that
        # finished in it, timed by the client, first to last token (what vLLM's request histogram counted).
        last = published[-1]
        span = (timestamp(last["speedupFrom"]), timestamp(last["speedupTo"]))
        spec_s, spec_n, spec_requests = spec_ps.decode_between(*span)
        control_s, control_n, control_requests = control_ps.decode_between(*span)
        assert spec_n and control_n, (span, spec_requests, control_requests)
        client = (control_s / control_n) / (spec_s / spec_n)
        operator_speedup = float(last["speedup"])
        report.update(
            client_tpot_ms={
                "speculative": round(1000 * spec_s / spec_n, 2),
                "control": round(1000 * control_s / control_n, 2),
            },
            client_speedup=round(client, 4),
            operator_speedup=operator_speedup,
            client_requests={"speculative": spec_requests, "control": control_requests},
            span_seconds=round(span[1] - span[0], 2),
        )
        [event] = [e for e in kubectl.items("events", namespace) if e.get("reason") == "RolledBack"]
        report["rollback_event"] = event["message"]
        print(
            f"\nother-family draft at k=4 against its control group: operator {operator_speedup:.3f}x (status."
            f"performance over {span[1] - span[0]:.1f} s), client {client:.3f}x over the same span "
            f"({spec_requests} speculative and {control_requests} control requests), "
            f"ratio {operator_speedup / client:.3f}"
        )
        # The client saw speculation slower than no speculation by its own clock. (Not "below minSpeedup": the
        # published span may be one window that was just under 0.80 by vLLM's clock, a hair over by the client's.)
        assert client < 1.0, report
        assert abs(operator_speedup / client - 1) <= AGREEMENT, report
        listed = re.search(r"\(speedups ([0-9.x, ]+)\)", event["message"])
        assert listed, event["message"]
        windows = [float(v.strip().removesuffix("x")) for v in listed.group(1).split(",")]
        assert len(windows) == WINDOWS and max(windows) < MIN_SPEEDUP, event["message"]

        rolled = condition(st, "RolledBack")
        assert rolled["reason"] == "SlowerThanControl", rolled
        assert f"below minSpeedup {MIN_SPEEDUP:.2f}" in rolled["message"], rolled
        [failed] = st["revision"]["failed"]
        assert failed["reason"] == "SlowerThanControl", failed
        assert st["revision"]["serving"].endswith("-nospec"), st["revision"]
        assert event["type"] == "Warning", event
        assert re.search(rf"in {WINDOWS} consecutive qualifying window", event["message"]), event["message"]
        # Acceptance was no part of it: the rule was off, and the draft's rate stays as measured.
        acc = st.get("acceptance") or {}
        report["acceptance"] = acc
        assert acc.get("rate") is not None and acc["rate"] < 0.1, acc
    finally:
        report["servers"] = vllm_fleet.summary()
        report["total_s"] = round(time.monotonic() - t0, 1)
        (e2e_out / "speed-vllm.json").write_text(json.dumps(report, indent=2) + "\n")

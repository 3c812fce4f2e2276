"""The reliability suite's hostile pages (tests/harness/hostile_pages.py), through the real parser, window
accumulator, decision and tracker.

Fast and without a cluster: each page is parsed as the tracker parses it, fed to a ``WindowAccumulator`` once a
second for several windows, and judged by ``decide``. Every page says "acceptance 0.20" where it says anything,
so a page that was believed would end in a rollback. Also pins the two fixes this suite led to: counters that go
down without a restart hold instead of counting a lifetime as one window, and the hold message names the reason
and stays the same while the situation does (so following it costs no status writes).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from tests.harness import hostile_pages as pages

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.monitor.acceptance import inconsistency
from specdeploy.monitor.decision import Policy, Reason, Verdict, decide
from specdeploy.monitor.parse import MetricsParseError, parse_spec_decode
from specdeploy.monitor.window import PodSample, Window, WindowAccumulator
from specdeploy.rollout.history import RevisionRecord, ServingChoice
from specdeploy.tracker import AcceptanceTracker

POLICY = Policy(min_acceptance_rate=0.5, consecutive_windows=2, min_draft_tokens=100, warmup_seconds=0)
T0 = 1_767_268_800.0
WINDOW = 10.0
POD = "sd-7d9f-abcde"


def sample(at: float, page: bytes | str) -> PodSample:
    """What the tracker records for one scrape of ``page``."""
    try:
        return PodSample(timestamp=at, pod=POD, counters=parse_spec_decode(page))
    except MetricsParseError as e:
        return PodSample(timestamp=at, pod=POD, error=f"parse: {e}")


def run(page: Callable[[], bytes | str], windows: int = 4) -> list[Window]:
    acc = WindowAccumulator(WINDOW, start=T0)
    closed: list[Window] = []
    for second in range(int(windows * WINDOW) + 1):
        closed += acc.add(sample(T0 + second + 0.5, page()))
    return closed


class Honest:
    """A vLLM process (prometheus_client registry) accepting 20% of 400 draft tokens a second."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        self.drafts = Counter("vllm:spec_decode_num_drafts", "d", labels, registry=self.registry)
        self.tokens = Counter("vllm:spec_decode_num_draft_tokens", "t", labels, registry=self.registry)
        self.accepted = Counter("vllm:spec_decode_num_accepted_tokens", "a", labels, registry=self.registry)

    def __call__(self) -> bytes:
        self.drafts.labels("m", "0").inc(100)
        self.tokens.labels("m", "0").inc(400)
        self.accepted.labels("m", "0").inc(80)
        return generate_latest(self.registry)


HOSTILE: dict[str, Callable[[], bytes | str]] = {
    "garbage": pages.garbage,
    "garbled": pages.garbled,
    "truncated": pages.truncated,
    "nan": pages.nan,
    "inf": pages.inf,
    "negative": pages.negative,
    "duplicate": pages.duplicate,
    "decreasing": pages.decreasing(),
    "10 MB": pages.huge(),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_page_holds_and_says_why(name: str) -> None:
    closed = run(HOSTILE[name])
    decision = decide(POLICY, T0, closed[-1].end, closed)
    assert decision.verdict is Verdict.HOLD and decision.reason is Reason.NO_DATA, decision.message
    assert "holding" in decision.message
    if name != "garbage":  # a page with no spec-decode lines at all is "without spec-decode data"
        assert POD in decision.message and "could not be read" in decision.message


def test_the_control_page_does_roll_back() -> None:
    closed = run(Honest())
    assert decide(POLICY, T0, closed[-1].end, closed).verdict is Verdict.ROLLBACK


def test_counters_going_down_with_the_same_start_time_are_not_a_restart() -> None:
    serve = pages.decreasing()
    first, second = parse_spec_decode(serve()), parse_spec_decode(serve())
    assert first is not None and second is not None
    assert "went down while its start time stayed the same" in str(inconsistency(first, second))
    [window, *_] = run(serve)
    assert window.incomplete_pods == (POD,) and window.errors[0].reason.startswith("counters: counter vllm:")


def test_a_real_restart_is_still_counted_from_zero() -> None:
    before = Honest()
    for _ in range(10):
        old = parse_spec_decode(before())
    after = Honest()  # a new process: new start times, counters from zero
    new = parse_spec_decode(after())
    assert old is not None and new is not None
    assert inconsistency(old, new) is None


def test_without_start_times_a_drop_is_read_as_a_restart() -> None:
    text = pages.bad(2.0)
    lower = pages.bad(1.0)
    strip = "\n".join(line for line in text.splitlines() if "_created" not in line) + "\n"
    strip_lower = "\n".join(line for line in lower.splitlines() if "_created" not in line) + "\n"
    a, b = parse_spec_decode(strip), parse_spec_decode(strip_lower)
    assert a is not None and b is not None
    assert inconsistency(a, b) is None


def test_zero_traffic_says_no_draft_tokens() -> None:
    flat = pages.page(1000, 4000, 800)
    closed = run(lambda: flat)
    decision = decide(POLICY, T0, closed[-1].end, closed)
    assert "no draft tokens (no traffic)" in decision.message


def test_the_hold_message_is_stable_while_the_situation_is() -> None:
    closed = run(pages.nan, windows=6)
    messages = {decide(POLICY, T0, closed[n].end, closed[: n + 1]).message for n in range(2, len(closed))}
    assert len(messages) == 1, messages


def test_the_tracker_publishes_a_changed_reason_for_holding_once() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {"target": {"model": "org/t"}, "draft": {"model": "org/d"}, "rollback": {"consecutiveWindows": 2}}
    )
    tracker = AcceptanceTracker()
    deployment = {
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"specdeploy.io/revision": "0123456789"}}}},
        "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    }
    tracker.set_serving(
        ServingChoice(RevisionRecord(id="0123456789", number=1, spec={}), speculation=True), deployment, now=T0
    )
    published = []
    for page in (pages.nan, pages.nan, pages.duplicate, pages.duplicate):
        tracker.windows = run(page)
        tracker.decision = decide(POLICY, T0, tracker.windows[-1].end, tracker.windows)
        verdict = tracker.finding(spec)
        assert verdict is not None and verdict.acceptance is not None
        published.append(verdict.acceptance["message"])
    assert published[0] == published[1] and "value nan" in published[0]
    assert published[2] == published[3] and "duplicate series" in published[2]

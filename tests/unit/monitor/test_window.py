"""Windows: per-pod increases summed over pods, tiling time, with restarts, new pods and scrape errors."""

from __future__ import annotations

import gc
import weakref

import pytest

from specdeploy.monitor.parse import (
    ACCEPTED_TOKENS,
    DRAFT_TOKENS,
    DRAFTS,
    SpecDecodeCounters,
    counters_from_series,
    parse_spec_decode,
)
from specdeploy.monitor.window import PodSample, Window, WindowAccumulator

from .pages import EngineCounts, V1Server, render_v0_page


class Pod:
    """A vLLM pod whose counters grow as it serves; ``restart`` starts a new process (counters back to zero)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.restart()

    def restart(self) -> None:
        self.server = V1Server()
        self.totals = EngineCounts(0, 0, 0, (0, 0))

    def serve(self, drafts: int, accepted_per_draft: float) -> SpecDecodeCounters:
        """Serve ``drafts`` drafts of 2 tokens each, accepting on average ``accepted_per_draft`` of them."""
        accepted = round(drafts * accepted_per_draft)
        first = min(drafts, accepted)
        old = self.totals
        self.totals = EngineCounts(
            old.drafts + drafts,
            old.draft_tokens + 2 * drafts,
            old.accepted + accepted,
            (old.per_position[0] + first, old.per_position[1] + accepted - first),
        )
        counters = parse_spec_decode(self.server.advance_to({"0": self.totals}))
        assert counters is not None
        return counters

    def sample(self, when: float, drafts: int = 100, accepted_per_draft: float = 1.0) -> PodSample:
        return PodSample(when, self.name, self.serve(drafts, accepted_per_draft))


def test_windows_tile_time_and_count_every_token_once() -> None:
    acc = WindowAccumulator(60, start=0)
    pod = Pod("p")
    closed: list[Window] = []
    for t in range(0, 241, 15):  # a scrape every 15 s for 4 windows; each scrape adds 100 drafts, 200 tokens
        closed += acc.add(pod.sample(t))
    assert [(w.start, w.end) for w in closed] == [(0, 60), (60, 120), (120, 180), (180, 240)]
    # first window: from its first scrape (t=0) to its last (t=45): three scrape intervals
    assert [w.draft_tokens for w in closed] == [600, 800, 800, 800]
    total = sum(w.draft_tokens or 0 for w in closed)
    assert total == pod.totals.draft_tokens - 200 * 2  # all but the first (baseline) and the open window's (t=240)
    assert all(w.rate == 0.5 and w.pods_counted == ("p",) for w in closed)
    assert closed[0].acceptance is not None and closed[0].acceptance.per_position == (1.0, 0.0)


def test_sum_over_pods_and_rate_weighted_by_tokens() -> None:
    acc = WindowAccumulator(60, start=0)
    good, bad = Pod("good"), Pod("bad")
    for t in (0, 30):
        acc.add(good.sample(t, drafts=300, accepted_per_draft=2.0))
        acc.add(bad.sample(t, drafts=100, accepted_per_draft=0.0))
    [window] = acc.advance(60)
    assert window.pods_counted == ("bad", "good")
    assert window.draft_tokens == 800 and window.accepted_tokens == 600
    assert window.rate == 0.75


def test_restart_mid_window_counts_the_new_process_from_zero() -> None:
    acc = WindowAccumulator(60, start=0)
    pod = Pod("p")
    acc.add(pod.sample(0, drafts=1000))
    acc.add(pod.sample(20, drafts=1000))
    pod.restart()
    acc.add(pod.sample(40, drafts=10, accepted_per_draft=0.0))  # fewer drafts than before: counters went down
    [window] = acc.advance(60)
    assert window.draft_tokens == 20  # the restarted process' own counters, not a negative difference
    assert window.rate == 0.0


def test_new_pod_counts_from_its_second_scrape_and_gone_pod_is_forgotten() -> None:
    acc = WindowAccumulator(60, start=0)
    old, new = Pod("old"), Pod("new")
    acc.add(old.sample(0))
    acc.add(old.sample(30))
    acc.add(new.sample(45, drafts=5000))  # appears late in the window: only a baseline
    [first] = acc.advance(60)
    assert first.pods_counted == ("old",)
    acc.add(new.sample(75))  # "old" is gone (deleted)
    [second] = acc.advance(120)
    assert second.pods_counted == ("new",)
    assert second.draft_tokens == 200  # from new's baseline at 45, not its lifetime
    acc.add(old.sample(130))  # "old" returns: its old baseline was dropped, it starts over
    acc.add(old.sample(140, drafts=7))
    [third] = acc.advance(180)
    assert third.pods_counted == ("old",) and third.draft_tokens == 14


def test_scrape_errors_are_recorded_and_incomplete_pods_flagged() -> None:
    acc = WindowAccumulator(60, start=0)
    flaky, broken = Pod("flaky"), Pod("broken")
    acc.add(flaky.sample(0))
    acc.add(broken.sample(0))
    acc.advance(60)
    acc.add(flaky.sample(65))
    acc.add(PodSample(80, "flaky", error="timeout"))
    acc.add(flaky.sample(95))
    acc.add(PodSample(70, "broken", error="connection"))
    acc.add(PodSample(100, "broken", error="connection"))
    [window] = acc.advance(120)
    assert window.pods_counted == ("flaky",)  # an error between two good scrapes loses nothing
    assert {(e.pod, e.reason, e.count) for e in window.errors} == {("flaky", "timeout", 1), ("broken", "connection", 2)}
    assert window.incomplete_pods == ("broken",)
    # broken keeps its baseline: when it answers again, the increase since its last good scrape is counted
    acc.add(PodSample(130, "broken", broken.sample(0).counters))
    [after] = acc.advance(180)
    assert after.pods_counted == ("broken",) and after.draft_tokens == 200 and after.incomplete_pods == ()


def test_pods_without_spec_decode_data_are_listed() -> None:
    acc = WindowAccumulator(60, start=0)
    acc.add(PodSample(1, "plain"))
    acc.add(PodSample(31, "plain"))
    [window] = acc.advance(60)
    assert window.pods_without_data == ("plain",)
    assert window.acceptance is None and window.rate is None and window.draft_tokens is None


def test_late_events_are_dropped_and_gaps_are_skipped() -> None:
    acc = WindowAccumulator(60, start=0)
    pod = Pod("p")
    acc.add(pod.sample(10))
    assert acc.add(pod.sample(20)) == []
    closed = acc.add(pod.sample(1000))  # nothing for a long time
    assert [(w.start, w.end) for w in closed] == [(0, 60)]
    assert (acc.start, acc.end) == (960, 1020)
    acc.add(pod.sample(5))
    assert acc.late_events == 1


def test_v0_and_v1_pods_do_not_mix() -> None:
    acc = WindowAccumulator(60, start=0)
    v1 = Pod("v1")
    v0 = parse_spec_decode(render_v0_page(0.5, 0.6, 10, 20, 15))
    acc.add(v1.sample(0))
    acc.add(v1.sample(30))
    acc.add(PodSample(0, "v0", v0))
    acc.add(PodSample(30, "v0", v0))
    [window] = acc.advance(60)
    assert window.pods_counted == ("v1",)
    assert window.incomplete_pods == ("v0",)
    assert any(e.reason == "engine_mismatch" for e in window.errors)


def test_from_counters_and_bad_arguments() -> None:
    counters = Pod("p").serve(50, 1.5)
    window = Window.from_counters(0, 60, counters, ["a", "b"])
    assert window.rate == 0.75 and window.pods_counted == ("a", "b")
    assert Window.from_counters(0, 60, None).acceptance is None
    with pytest.raises(ValueError, match="window_seconds"):
        WindowAccumulator(0, start=0)


def test_an_open_window_keeps_two_readings_per_pod_not_every_scrape() -> None:
    """Issue 11: a window held every scrape's parsed counters until it closed (a 300 s window at a 1 s interval: 300
    readings per pod, each with every series); only the first and last good reading and the failures count."""
    acc = WindowAccumulator(300, start=0.0)
    alive: list[weakref.ref[SpecDecodeCounters]] = []
    for t in range(250):
        series = {(DRAFTS, ()): float(t), (DRAFT_TOKENS, ()): 4.0 * t, (ACCEPTED_TOKENS, ()): 2.0 * t}
        counters = counters_from_series("v1", series)
        alive.append(weakref.ref(counters))
        acc.add(PodSample(timestamp=t + 0.5, pod="p", counters=counters))
        acc.add(PodSample(timestamp=t + 0.6, pod="p", error=f"timeout: {t}"))
    del counters
    gc.collect()
    assert sum(1 for ref in alive if ref() is not None) == 2
    [window] = acc.advance(300.0)
    assert window.draft_tokens == 4 * 249 and window.accepted_tokens == 2 * 249
    [error] = window.errors
    assert (error.reason, error.count) == ("timeout: 249", 250)

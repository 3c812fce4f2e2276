"""The e2e harness keeps real vLLM servers on different cores: a canary loading on the core of a serving server
that a client keeps busy starved there for more than 10 minutes (twice in CI, once with a fixed rotation)."""

from __future__ import annotations

from tests.harness.vllm import least_used_core


def test_a_new_server_goes_to_the_core_the_fewest_live_servers_use() -> None:
    assert least_used_core([], cores=[0, 1]) == 0
    assert least_used_core([0], cores=[0, 1]) == 1
    # The sequence of the e2e test that starved: servers on 0, 1, 0 came and went; the one serving now is on 0.
    assert least_used_core([0], cores=[1, 0]) == 1
    assert least_used_core([0, 1, None], cores=[0, 1]) == 0
    assert least_used_core([1, 1, 0], cores=[0, 1]) == 0
    assert least_used_core([5], cores=[]) == 0, "no CPU list: core 0"

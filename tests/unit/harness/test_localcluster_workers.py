"""pytest-xdist workers each start their own local control plane: their pod IPs and probed ports must never meet.

Fake vLLM servers bind ``<pod IP>:8000`` and every component gets a port from ``free_port()``; if two workers'
clusters drew the same pod-CIDR octet, or were handed the same port between probe and bind, one worker's tests
would scrape the other's servers or fail to start. These check the per-worker slices (pure, no cluster).
"""

from __future__ import annotations

import pytest
from tests.harness import localcluster
from tests.harness.localcluster import (
    ClusterError,
    free_port,
    pod_octets_for_worker,
    worker_ports,
    xdist_slot,
)


def env(worker: str, count: int) -> dict[str, str]:
    return {"PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": str(count)}


def test_outside_xdist_every_octet_and_the_kernels_ports() -> None:
    assert xdist_slot({}) is None
    assert pod_octets_for_worker({}) == localcluster._POD_OCTETS
    assert worker_ports({}) is None


@pytest.mark.parametrize("count", [2, 3, 4])
def test_workers_get_disjoint_pod_octets_and_ports_covering_all(count: int) -> None:
    octets = [set(pod_octets_for_worker(env(f"gw{i}", count))) for i in range(count)]
    ports = [set(worker_ports(env(f"gw{i}", count)) or ()) for i in range(count)]
    for group in (octets, ports):
        assert all(group), "a worker got an empty slice"
        for i in range(count):
            for j in range(i + 1, count):
                assert not group[i] & group[j], f"workers gw{i} and gw{j} share {sorted(group[i] & group[j])[:5]}"
    assert set().union(*octets) == set(localcluster._POD_OCTETS)
    assert all(port < 32768 for slice_ in ports for port in slice_), "a worker port inside the ephemeral range"


def test_a_worker_index_beyond_the_count_is_refused() -> None:
    with pytest.raises(ClusterError, match="PYTEST_XDIST_WORKER=gw2"):
        xdist_slot(env("gw2", 2))


def test_free_port_under_xdist_stays_in_the_slice_and_never_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    monkeypatch.setattr(localcluster, "_HANDED_OUT", set())
    mine = set(worker_ports(env("gw1", 3)) or ())
    got = [free_port() for _ in range(50)]
    assert set(got) <= mine
    assert len(set(got)) == len(got)

"""Two operator replicas with kopf peering: exactly one acts, and a handover in the middle of a rollback completes
it exactly once.

The peering CRDs and the peering object come from the chart itself (``helm template`` with peering on, as a
user installs them). Replica A runs with priority 10, replica B with priority 5: B keeps its keep-alive in the
peering object and stays paused (no watch streams, no daemons) while A is alive. A bad draft trips the monitor;
right after A records the failed verdict on the ControllerRevision, A is SIGKILLed, so it never says goodbye and
B waits out A's peering lifetime (``--peering-lifetime 20``; kopf's default is 60 s) before it takes over and
finishes the rollback: the pod template switched once, exactly one RolledBack Event (whether A created it before
dying or B creates it on taking over: the Event's name comes from the recorded verdict), one failed revision, the
decision not taken again.

kopf's documented rule for equal priorities is checked too: a third replica with B's priority freezes both,
nothing is reconciled, and when it leaves (SIGTERM removes its keep-alive at once) B resumes.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.reliability.expectations import BAD, Expectations, k_of, sd, sd_deployment, verdict
from tests.reliability.recorder import GROUP, PLURAL, VERSION, Recorder, api_client, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "specdeploy"
PEERING = "specdeploy"
PEERING_CRDS = ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev")
RELEASE = "sdpeer"
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", re.M)
DAEMON_STARTED = "Daemon 'reconcile_daemon' is invoked"


def helm_render(cluster: LocalCluster, namespace: str, *templates: str) -> list[dict[str, Any]]:
    shows = [a for t in templates for a in ("--show-only", f"templates/{t}")]
    argv = [str(cluster.bin_dir / "helm"), "template", RELEASE, str(CHART), "--namespace", namespace]
    argv += ["--set", "operator.peering.enabled=true", "--set", f"operator.peering.name={PEERING}"]
    argv += ["--set", f"watchNamespaces={{{namespace}}}", *shows]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def peering_crds(cluster: LocalCluster, kubectl: Kubectl) -> Iterator[None]:
    """kopf's peering CRDs from the chart; left alone when already installed, removed after when installed here."""
    mine = [n for n in PEERING_CRDS if kubectl.get("crd", n) is None]
    if mine:
        kubectl.apply([d for d in helm_render(cluster, "default", "peering-crd.yaml") if d["metadata"]["name"] in mine])
        for name in mine:
            kubectl.wait_established(name)
    yield
    for name in mine:
        kubectl.run("delete", "crd", name, "--wait=false", check=False)


def behaviour(draft: str | None) -> Behaviour:
    if draft is None:
        return Behaviour(rate=None)
    return Behaviour(rate=0.2 if draft == BAD else 0.8)


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour).start()
    yield f
    f.stop()


def peers(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    obj = kubectl.get("kopfpeering", PEERING, namespace) or {}
    return dict(obj.get("status") or {})


def log_times(text: str, needle: str) -> list[float]:
    """Wall-clock times of the log lines containing ``needle`` (kopf logs local time, milliseconds)."""
    out = []
    for line in text.splitlines():
        if needle in line:
            m = LOG_TIME.match(line)
            if m:
                out.append(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


#: Seconds a silent replica still counts as alive (``specdeploy run --peering-lifetime``): the handover wait.
LIFETIME = 20


def replica(cluster: LocalCluster, namespace: str, tmp_path: Path, name: str, priority: int) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig=cluster.kubeconfig,
        namespaces=[namespace],
        log_dir=tmp_path / name,
        extra_args=["--peering", PEERING, "--priority", str(priority), "--peering-lifetime", str(LIFETIME)],
        env={"POD_ID": name},  # kopf's peering identity
    )


def test_one_replica_acts_and_a_handover_mid_rollback_completes_it_once(
    cluster: LocalCluster,
    kubectl: Kubectl,
    namespace: str,
    crd: str,
    peering_crds: None,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    kubectl.apply(helm_render(cluster, namespace, "peering.yaml"), "-n", namespace)
    api = api_client(cluster.kubeconfig)
    world = Expectations(namespace, client.CustomObjectsApi(api), client.AppsV1Api(api))
    recorder = Recorder(cluster.kubeconfig, namespace).start()
    a = replica(cluster, namespace, tmp_path, "replica-a", 10)
    b = replica(cluster, namespace, tmp_path, "replica-b", 5)
    c = replica(cluster, namespace, tmp_path, "replica-c", 5)
    try:
        a.start()
        wait_until("replica-a's keep-alive", lambda: "replica-a" in peers(kubectl, namespace), timeout=30)
        b.start()
        wait_until("replica-b's keep-alive", lambda: "replica-b" in peers(kubectl, namespace), timeout=30)

        world.apply(sd("good", k=4), "serve")
        world.apply(sd("bad", draft=BAD, fast=True), "rollback")
        tripped, _ = wait_until(
            "the trip recorded by replica-a", lambda: verdict(world.apps, namespace, "bad"), 90, 0.05
        )
        a.kill()
        t_kill = time.time()
        last_keepalive = dt.datetime.fromisoformat(peers(kubectl, namespace)["replica-a"]["lastseen"]).timestamp()
        lifetime = int(peers(kubectl, namespace)["replica-a"]["lifetime"])

        _, waited = wait_until("replica-b to take over and finish the rollback", lambda: not world.not_converged(), 120)
        t_done = time.time()
        a_log, b_log = a.logs(), b.logs()
        b_resumed = log_times(b_log, "Resuming operations")
        b_daemons = log_times(b_log, DAEMON_STARTED)
        assert log_times(a_log, DAEMON_STARTED), "replica-a never reconciled"
        assert b_resumed and b_daemons, f"replica-b never took over:\n{b_log[-3000:]}"
        assert min(b_daemons) >= t_kill, "replica-b reconciled while replica-a was alive"
        # Each revision has its own Deployment (issue 13): A created the serving ones; the fallback's may be A's or,
        # when A died between the verdict and that create, B's, but no Deployment is ever created twice.
        created = re.findall(r"created Deployment (\S+)", a_log) + re.findall(r"created Deployment (\S+)", b_log)
        assert re.search(r"created Deployment good-", a_log), "replica-a never created the good revision's Deployment"
        assert len(created) == len(set(created)), f"a Deployment created twice: {created}"
        # the flag reached kopf: A's record carries it, and B took over once it ran out (plus kopf's re-check)
        assert lifetime == LIFETIME
        assert min(b_resumed) - last_keepalive <= LIFETIME + 15, "replica-b waited far beyond the peering lifetime"

        # the rollback, finished by B, was applied once and decided once
        rev = world.revisions["bad"][-1]
        assert recorder.record("bad").templates == [rev, f"{rev}-nospec"]
        assert verdict(world.apps, namespace, "bad").get("specdeploy.io/at") == tripped.get("specdeploy.io/at")
        st = world.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "bad")
        assert [f["id"] for f in st["status"]["revision"]["failed"]] == [rev]
        # Events are created before the status write that records their transition: it is there already.
        rolled_back_events = recorder.sd_events().get("bad", {}).get("RolledBack", 0)
        assert rolled_back_events == 1, f"{rolled_back_events} RolledBack Events for one rollback"
        [said] = [
            e
            for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
            if e.reason == "RolledBack" and e.involved_object.name == "bad"
        ]
        said_by = said.reporting_instance  # POD_ID of the replica that created it
        assert said_by in ("replica-a", "replica-b") and said.source.component == "specdeploy"
        assert recorder.missing_events(list(world.expected)) == []
        excess = recorder.excess_events(list(world.expected))
        assert not excess, "\n".join(excess)

        # equal priorities: B and C both pause, nobody acts until C leaves
        c.start()
        wait_until(
            "replica-b and replica-c to freeze each other",
            lambda: "Pausing all operators" in b.logs() and "conflicting operators with the same priority" in c.logs(),
            timeout=60,
        )
        world.apply(sd("good", k=5), "serve")
        time.sleep(6)
        dep = sd_deployment(world.apps, namespace, "good")
        frozen_k = k_of(client.ApiClient().sanitize_for_serialization(dep))
        assert frozen_k == 4, "a replica acted while two had the same priority"
        assert log_times(c.logs(), DAEMON_STARTED) == []
        t_left = time.time()
        c.stop()  # SIGTERM: kopf removes its keep-alive on the way out
        wait_until("replica-b to resume after replica-c left", lambda: not world.not_converged(), 60)
        thawed = time.time() - t_left

        print(
            f"\npeering: replica-b (priority 5) paused while replica-a (priority 10) lived: 0 reconciles; "
            f"replica-a SIGKILLed {t_kill - last_keepalive:.1f} s after its last keep-alive (lifetime {lifetime} s); "
            f"replica-b resumed {min(b_resumed) - t_kill:.1f} s after the kill and finished the rollback "
            f"{t_done - t_kill:.1f} s after it (waited {waited:.1f} s); RolledBack Events {rolled_back_events} "
            f"(created by {said_by}); "
            f"equal priorities froze both for 6 s (K change not applied); the change was applied {thawed:.1f} s "
            f"after replica-c was sent SIGTERM"
        )
    finally:
        recorder.stop()
        for r in (a, b, c):
            if r.proc is not None:
                r.stop()

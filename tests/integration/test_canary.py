"""Canary rollouts (issue 13) on the real local control plane: a new revision's pods start beside the serving ones.

Each Ready vLLM pod gets a scripted vLLM metrics server on its loopback pod IP (``tests.harness.fakevllm``), its
acceptance rate and time per output token chosen by the draft model in the pod's command line, so the metrics
are keyed by revision. The monitor (``AcceptanceTracker.set_canary``) judges the canary beside the serving pods
over the same windows; these tests check what the rollout does with its verdict.

Three trials SIGKILL the operator process: during the canary's start, from a watch the moment the abort verdict
is written on the ControllerRevision (before the canary's Deployment is deleted), and the moment the promotion's
first scale step is written. The restarted operator must finish the move once: each revision's Deployment created
once and deleted at most once, one Event per transition, the verdict never taken again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from kubernetes import client, watch
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition, manifest, sd_status
from tests.reliability.recorder import api_client, follow

pytestmark = pytest.mark.integration

GOOD, OTHER, BAD, SLOW = "org/good-draft", "org/other-good-draft", "org/bad-draft", "org/slow-draft"
RATES = {GOOD: 0.8, OTHER: 0.78, BAD: 0.3, SLOW: 0.8}
TPOT = {SLOW: 0.045}  # 50% slower than the others' 0.03 s per output token, at the same acceptance
FAST = {
    "minAcceptanceRate": 0.5,
    "windowSeconds": 10,
    "consecutiveWindows": 2,
    "minDraftTokens": 100,
    "warmupSeconds": 0,
    "stableAfterSeconds": 5,
}


def behaviour(draft: str | None) -> Behaviour:
    if draft is None:
        return Behaviour(rate=None, tpot_seconds=0.03)
    return Behaviour(rate=RATES.get(draft, 0.7), tpot_seconds=TPOT.get(draft, 0.03))


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour).start()
    yield f
    f.stop()


def sd(name: str, draft: str, *, replicas: int = 1, tp: int = 1, windows: int = 2) -> dict[str, Any]:
    # gpusPerNode at least tp: one pod per replica (a Deployment), even when it asks for more than a node has
    serving = {"gpusPerNode": tp} if tp > 8 else {}
    return manifest(
        name,
        {
            "target": {"model": "org/target-8b", "tensorParallelSize": tp},
            "draft": {"model": draft},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Skip"},
            "replicas": replicas,
            "rollback": FAST,
            "metrics": {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2},
            "rollout": {"strategy": "Canary", "canary": {"replicas": 1, "analysisWindows": windows}},
            **({"serving": serving} if serving else {}),
        },
    )


def server_pods(kubectl: Kubectl, name: str, ns: str) -> list[dict[str, Any]]:
    return kubectl.items("pods", ns, f"specdeploy.io/name={name},app.kubernetes.io/component=server")


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions) and not (
        pod["metadata"].get("deletionTimestamp")
    )


def uids_of(kubectl: Kubectl, name: str, ns: str, revision: str) -> set[str]:
    return {
        p["metadata"]["uid"]
        for p in server_pods(kubectl, name, ns)
        if p["metadata"]["labels"].get("specdeploy.io/revision") == revision
    }


def wait_serving(kubectl: Kubectl, name: str, ns: str, replicas: int = 1) -> dict[str, Any]:
    def serving() -> dict[str, Any] | None:
        st = sd_status(kubectl, name, ns)
        ok = condition(st, "Ready").get("status") == "True" and st.get("readyReplicas") == replicas
        return st if ok else None

    return wait_for(f"{name} serving", serving, timeout=90)


class ReadyWatch:
    """Polls the object's server pods in the background and remembers the fewest Ready ones seen."""

    def __init__(self, kubectl: Kubectl, name: str, ns: str) -> None:
        self.kubectl, self.name, self.ns = kubectl, name, ns
        self.fewest: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            n = sum(1 for p in server_pods(self.kubectl, self.name, self.ns) if ready(p))
            self.fewest = n if self.fewest is None else min(self.fewest, n)
            time.sleep(0.2)


class DeploymentLog:
    """Watches the namespace's Deployments from a thread (``recorder.follow``): every object (UID) created under each
    name, and the names deleted, so a Deployment created twice or brought back after its deletion shows."""

    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        self.apps = client.AppsV1Api(api_client(cluster.kubeconfig))
        self.namespace = namespace
        self.uids: dict[str, list[str]] = {}
        self.deleted: dict[str, int] = {}
        self.broken: str | None = None
        self._stop = threading.Event()
        self._watches: set[watch.Watch] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=follow, args=(self._list, self._seen, self._stop, self._watches, self._gone), daemon=True
        )

    def __enter__(self) -> DeploymentLog:
        self._thread.start()
        wait_for("the Deployment watch listing", lambda: self.uids or not self._thread.is_alive(), timeout=30)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()  # ends the stream at its next event; the thread is a daemon, nothing waits on it

    def _list(self, **kw: Any) -> Any:
        return self.apps.list_namespaced_deployment(self.namespace, **kw)

    def _gone(self) -> bool:
        """A 410 Gone would hide changes: the log is marked ``broken`` and stops."""
        self.broken = "the watch fell too far behind (410 Gone)"
        return False

    def _seen(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        with self._lock:
            uids = self.uids.setdefault(meta["name"], [])
            if meta["uid"] not in uids:
                uids.append(meta["uid"])
            if kind == "DELETED":
                self.deleted[meta["name"]] = self.deleted.get(meta["name"], 0) + 1

    def created(self) -> dict[str, int]:
        with self._lock:
            return {name: len(uids) for name, uids in self.uids.items()}


def kill_when(lister: Any, namespace: str, what: str, hit: Any, operator: OperatorProcess, **kw: Any) -> Any:
    """SIGKILL the operator the moment a watch (``lister`` in ``namespace``) shows an object for which ``hit`` is
    true; return that object. A watch event reaches the test within milliseconds of the write, before the
    operator's next write of the same pass has usually landed."""
    w = watch.Watch()
    for ev in w.stream(lister, namespace, timeout_seconds=90, **kw):
        if hit(ev["object"]):
            operator.kill()
            w.stop()
            return ev["object"]
    raise AssertionError(f"never saw {what} in 90 s")


def verdict_at(apps: client.AppsV1Api, namespace: str, name: str, revision: str) -> str | None:
    """When the verdict on ``revision``'s ControllerRevision was taken (its ``specdeploy.io/at``), or None."""
    selector = f"specdeploy.io/name={name},specdeploy.io/revision={revision}"
    for cr in apps.list_namespaced_controller_revision(namespace, label_selector=selector).items:
        return (cr.metadata.annotations or {}).get("specdeploy.io/at")
    return None


def verdict_seen(apps: client.AppsV1Api, namespace: str, name: str, reason: str) -> str | None:
    """The revision whose ControllerRevision carries the canary verdict ``reason``, or None."""
    for cr in apps.list_namespaced_controller_revision(namespace, label_selector=f"specdeploy.io/name={name}").items:
        if (cr.metadata.annotations or {}).get("specdeploy.io/reason") == reason:
            return str(cr.metadata.labels["specdeploy.io/revision"])
    return None


def test_a_change_starts_a_canary_beside_the_serving_pods_which_keep_serving(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("cn", GOOD), "-n", namespace)
    old = wait_serving(kubectl, "cn", namespace)["revision"]["serving"]
    before = uids_of(kubectl, "cn", namespace, old)
    assert len(before) == 1
    with ReadyWatch(kubectl, "cn", namespace) as watch:
        kubectl.apply(sd("cn", OTHER), "-n", namespace)

        def analyzing() -> dict[str, Any] | None:
            st = sd_status(kubectl, "cn", namespace)
            canary = st.get("canary") or {}
            return st if canary.get("phase") == "Analyzing" and canary.get("readyReplicas") == 1 else None

        st = wait_for("the canary's pod Ready beside the serving one", analyzing, timeout=90)
    new = st["canary"]["revision"]
    assert new == st["revision"]["current"] != old
    assert st["revision"]["serving"] == old and condition(st, "Ready")["status"] == "True"
    assert condition(st, "Progressing")["reason"] == "Canary"
    assert st["readyReplicas"] == 2  # READY counts the server pods of every revision
    deps = {d["metadata"]["name"]: d["spec"]["replicas"] for d in kubectl.deployments("cn", namespace)}
    assert deps == {f"cn-{old}": 1, f"cn-{new}": 1}
    assert uids_of(kubectl, "cn", namespace, old) == before  # the serving pod never restarted
    assert watch.fewest is not None and watch.fewest >= 1
    # The Service selects the pods of both revisions: requests split by ready pod count.
    selector = kubectl.get("service", "cn", namespace)["spec"]["selector"]
    for pod in server_pods(kubectl, "cn", namespace):
        assert selector.items() <= pod["metadata"]["labels"].items()
    [started] = [e for e in kubectl.items("events", namespace) if e.get("reason") == "CanaryStarted"]
    assert new in started["message"]


def test_an_unschedulable_canary_is_reported_while_serving_goes_on(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("nogpu", GOOD), "-n", namespace)
    old = wait_serving(kubectl, "nogpu", namespace)["revision"]["serving"]
    before = uids_of(kubectl, "nogpu", namespace, old)
    # 16 GPUs per pod (sd sets gpusPerNode 16: one pod, not a multi-node group): the nodes have 8
    kubectl.apply(sd("nogpu", GOOD, tp=16), "-n", namespace)

    def reported() -> dict[str, Any] | None:
        st = sd_status(kubectl, "nogpu", namespace)
        canary = st.get("canary") or {}
        return st if "Unschedulable" in str(canary.get("message")) else None

    st = wait_for("the canary's scheduling failure on the object", reported, timeout=90)
    assert st["canary"]["phase"] == "Starting"
    assert "nvidia.com/gpu" in st["canary"]["message"]  # the scheduler's own words
    assert st["revision"]["serving"] == old and condition(st, "Ready")["status"] == "True"
    assert uids_of(kubectl, "nogpu", namespace, old) == before


def test_a_good_canary_is_promoted_never_below_replicas_ready(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("promo", GOOD, replicas=2), "-n", namespace)
    wait_serving(kubectl, "promo", namespace, replicas=2)
    with ReadyWatch(kubectl, "promo", namespace) as watch:
        kubectl.apply(sd("promo", OTHER, replicas=2), "-n", namespace)

        def promoted() -> dict[str, Any] | None:
            st = sd_status(kubectl, "promo", namespace)
            return st if (st.get("canary") or {}).get("phase") == "Promoted" else None

        st = wait_for("the canary promoted", promoted, timeout=180)
        wait_serving(kubectl, "promo", namespace, replicas=2)
    assert st["revision"]["serving"] == st["revision"]["current"]
    assert [d["metadata"]["name"] for d in kubectl.deployments("promo", namespace)] == [
        f"promo-{st['revision']['current']}"
    ]
    assert watch.fewest is not None and watch.fewest >= 2


def test_a_canary_with_lower_acceptance_is_aborted_and_the_serving_pods_are_untouched(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("abort", GOOD), "-n", namespace)
    old = wait_serving(kubectl, "abort", namespace)["revision"]["serving"]
    before = uids_of(kubectl, "abort", namespace, old)
    with ReadyWatch(kubectl, "abort", namespace) as watch:
        kubectl.apply(sd("abort", BAD), "-n", namespace)

        def aborted() -> dict[str, Any] | None:
            st = sd_status(kubectl, "abort", namespace)
            return st if (st.get("canary") or {}).get("phase") == "Aborted" else None

        st = wait_for("the canary aborted", aborted, timeout=180)
        wait_for("the canary's Deployment gone", lambda: len(kubectl.deployments("abort", namespace)) == 1, timeout=60)
    assert st["revision"]["serving"] == old
    assert condition(st, "RolledBack")["reason"] == "CanaryAborted"
    assert uids_of(kubectl, "abort", namespace, old) == before
    assert watch.fewest is not None and watch.fewest >= 1
    warnings = [e["reason"] for e in kubectl.items("events", namespace) if e.get("type") == "Warning"]
    assert warnings.count("CanaryAborted") == 1 and "RolledBack" not in warnings
    assert st["canary"]["acceptance"]["canary"] < st["canary"]["acceptance"]["serving"]


def test_a_canary_fifty_percent_slower_per_output_token_is_aborted(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    kubectl.apply(sd("slow", GOOD), "-n", namespace)
    old = wait_serving(kubectl, "slow", namespace)["revision"]["serving"]
    before = uids_of(kubectl, "slow", namespace, old)
    kubectl.apply(sd("slow", SLOW), "-n", namespace)

    def aborted() -> dict[str, Any] | None:
        st = sd_status(kubectl, "slow", namespace)
        return st if (st.get("canary") or {}).get("phase") == "Aborted" else None

    st = wait_for("the slow canary aborted", aborted, timeout=180)
    tpot = st["canary"]["timePerOutputTokenSeconds"]
    assert tpot["canary"] == pytest.approx(1.5 * tpot["serving"], rel=0.2)
    assert st["revision"]["serving"] == old and uids_of(kubectl, "slow", namespace, old) == before


def test_sigkill_during_the_canary_start_resumes_and_starts_it_once(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    """The operator killed at several points while a canary starts: one canary Deployment, one CanaryStarted
    Event, the serving pod untouched."""
    kubectl.apply(sd("crash", GOOD), "-n", namespace)
    old = wait_serving(kubectl, "crash", namespace)["revision"]["serving"]
    before = uids_of(kubectl, "crash", namespace, old)
    kubectl.apply(sd("crash", OTHER), "-n", namespace)
    for delay in (0.3, 0.8, 1.5):  # the revision record, the canary's Deployment, the Event and status
        time.sleep(delay)
        operator.kill()
        operator.start()

    def analyzing() -> dict[str, Any] | None:
        st = sd_status(kubectl, "crash", namespace)
        return st if (st.get("canary") or {}).get("phase") == "Analyzing" else None

    st = wait_for("the canary Analyzing after the kills", analyzing, timeout=120)
    new = st["canary"]["revision"]
    assert sorted(d["metadata"]["name"] for d in kubectl.deployments("crash", namespace)) == sorted(
        [f"crash-{old}", f"crash-{new}"]
    )
    assert uids_of(kubectl, "crash", namespace, old) == before
    started = [e for e in kubectl.items("events", namespace) if e.get("reason") == "CanaryStarted"]
    assert len(started) == 1


def test_a_live_rollback_after_promotion_brings_the_last_good_pods_first(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    """Promoted, then the rate falls (the traffic changed): the last good revision's pods start before the bad
    ones go, and a pod watch never sees fewer than replicas ready pods."""
    kubectl.apply(sd("live", GOOD, replicas=2), "-n", namespace)
    wait_for(
        "the first revision stable",
        lambda: (st := sd_status(kubectl, "live", namespace)).get("revision", {}).get("stable") and st,
        timeout=120,
    )
    good = sd_status(kubectl, "live", namespace)["revision"]["stable"]
    kubectl.apply(sd("live", OTHER, replicas=2), "-n", namespace)

    def promoted() -> dict[str, Any] | None:
        st = sd_status(kubectl, "live", namespace)
        ok = (st.get("canary") or {}).get("phase") == "Promoted" and len(kubectl.deployments("live", namespace)) == 1
        return st if ok else None

    new = wait_for("the canary promoted", promoted, timeout=180)["revision"]["serving"]
    assert new != good
    with ReadyWatch(kubectl, "live", namespace) as watch:
        for uid in uids_of(kubectl, "live", namespace, new):  # the promoted draft's rate falls
            wait_for(
                "the pod's scripted server", lambda uid=uid: fleet.servers.get(uid), timeout=30
            ).behaviour.rate = 0.2

        def rolled_back() -> dict[str, Any] | None:
            st = sd_status(kubectl, "live", namespace)
            deps = kubectl.deployments("live", namespace)
            done = condition(st, "RolledBack").get("status") == "True" and len(deps) == 1
            return st if done and st["revision"]["serving"] == good and st.get("readyReplicas") == 2 else None

        st = wait_for("the live rollback to the last good revision", rolled_back, timeout=180)
    assert [d["metadata"]["name"] for d in kubectl.deployments("live", namespace)] == [f"live-{good}"]
    assert st["revision"]["failed"][0]["id"] == new
    assert watch.fewest is not None and watch.fewest >= 2  # surge first: never below replicas ready


def test_sigkill_right_after_the_abort_verdict_deletes_the_canary_once(
    cluster: LocalCluster, kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    """The operator killed right after it records CanaryAborted on the canary's ControllerRevision (before or as
    it deletes the canary's Deployment): the restarted one deletes it once, says CanaryAborted once, and the
    serving pod never restarts."""
    kubectl.apply(sd("crab", GOOD, windows=1), "-n", namespace)
    old = wait_serving(kubectl, "crab", namespace)["revision"]["serving"]
    before = uids_of(kubectl, "crab", namespace, old)
    apps = client.AppsV1Api(api_client(cluster.kubeconfig))
    with DeploymentLog(cluster, namespace) as log, ReadyWatch(kubectl, "crab", namespace) as pods:
        kubectl.apply(sd("crab", BAD, windows=1), "-n", namespace)
        cr = kill_when(
            apps.list_namespaced_controller_revision,
            namespace,
            "the CanaryAborted verdict on a ControllerRevision",
            lambda o: (o.metadata.annotations or {}).get("specdeploy.io/reason") == "CanaryAborted",
            operator,
            label_selector="specdeploy.io/name=crab",
        )
        new = cr.metadata.labels["specdeploy.io/revision"]
        decided_at = cr.metadata.annotations.get("specdeploy.io/at")
        canary_at_kill = [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items]
        operator.start()

        def aborted() -> dict[str, Any] | None:
            st = sd_status(kubectl, "crab", namespace)
            gone = len(kubectl.deployments("crab", namespace)) == 1
            return st if (st.get("canary") or {}).get("phase") == "Aborted" and gone else None

        st = wait_for("the canary aborted after the kill", aborted, timeout=90)
    print(f"Deployments when the operator died: {canary_at_kill}")
    assert log.broken is None, log.broken
    assert st["canary"]["revision"] == new and st["revision"]["serving"] == old
    assert condition(st, "RolledBack")["reason"] == "CanaryAborted"
    assert verdict_at(apps, namespace, "crab", new) == decided_at  # the restart acted on it, never judged again
    assert log.created() == {f"crab-{old}": 1, f"crab-{new}": 1}  # none created twice, none brought back
    assert log.deleted == {f"crab-{new}": 1}
    assert uids_of(kubectl, "crab", namespace, old) == before
    assert pods.fewest is not None and pods.fewest >= 1
    warnings = [e["reason"] for e in kubectl.items("events", namespace) if e.get("type") == "Warning"]
    assert warnings.count("CanaryAborted") == 1 and "RolledBack" not in warnings


def test_sigkill_mid_promotion_finishes_it_once_never_below_replicas_ready(
    cluster: LocalCluster, kubectl: Kubectl, namespace: str, operator: OperatorProcess, fleet: Fleet
) -> None:
    """The operator killed the moment the promotion's first scale step is written (after CanaryPassed is recorded,
    the old Deployment down by one pod as the ready canary pod stands in for it; the canary's Deployment is raised
    only at the next step): the restarted one finishes the promotion once."""
    kubectl.apply(sd("crpr", GOOD, replicas=2, windows=1), "-n", namespace)
    old = wait_serving(kubectl, "crpr", namespace, replicas=2)["revision"]["serving"]
    apps = client.AppsV1Api(api_client(cluster.kubeconfig))

    with DeploymentLog(cluster, namespace) as log, ReadyWatch(kubectl, "crpr", namespace) as pods:
        kubectl.apply(sd("crpr", OTHER, replicas=2, windows=1), "-n", namespace)
        kill_when(
            apps.list_namespaced_deployment,
            namespace,
            "the promotion's first step: the old Deployment scaled down by one",
            lambda o: o.metadata.name == f"crpr-{old}" and o.spec.replicas == 1,
            operator,
        )
        passed = verdict_seen(apps, namespace, "crpr", "CanaryPassed")
        decided_at = verdict_at(apps, namespace, "crpr", passed or "")
        at_kill = {d.metadata.name: d.spec.replicas for d in apps.list_namespaced_deployment(namespace).items}
        operator.start()

        def promoted() -> dict[str, Any] | None:
            st = sd_status(kubectl, "crpr", namespace)
            done = (st.get("canary") or {}).get("phase") == "Promoted" and st.get("readyReplicas") == 2
            return st if done and len(kubectl.deployments("crpr", namespace)) == 1 else None

        st = wait_for("the promotion finished after the kill", promoted, timeout=90)
    print(f"Deployments (spec.replicas) when the operator died: {at_kill}")
    assert log.broken is None, log.broken
    new = st["revision"]["serving"]
    assert new == st["revision"]["current"] != old
    assert passed == new  # the verdict was recorded before the first scale step
    assert decided_at and verdict_at(apps, namespace, "crpr", new) == decided_at  # never judged again
    assert at_kill.get(f"crpr-{old}") == 1  # the kill landed right after the first step, the old one still there
    assert [d["metadata"]["name"] for d in kubectl.deployments("crpr", namespace)] == [f"crpr-{new}"]
    assert log.created() == {f"crpr-{old}": 1, f"crpr-{new}": 1}
    assert log.deleted == {f"crpr-{old}": 1}
    assert pods.fewest is not None and pods.fewest >= 2
    promotions = [e for e in kubectl.items("events", namespace) if e.get("reason") == "CanaryPromoted"]
    assert len(promotions) == 1 and new in promotions[0]["message"]

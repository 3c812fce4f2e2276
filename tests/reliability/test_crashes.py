"""The operator survives SIGKILL at seeded random points: every object converges, nothing is done twice.

One namespace, one operator process killed and restarted trial after trial, with several objects in flight at
each kill: a new object being created, a long-lived object whose speculation depth K changes (a new revision),
and every other trial an object whose draft is checked by a validation Job (policy Enforce; the harness's
kubelet stand-in runs the real validator on real tokenizer files, half of them incompatible). Three trials also
kill around an automatic rollback: a bad draft (scripted vLLM pages at 20% acceptance) trips the monitor, and
the operator dies either at a random point right after the trip is recorded on the ControllerRevision (while
the rollback is being applied) or before the trip (the windows seen so far are lost; it must trip again).
The operator is restarted without waiting for it to be live, so later kills also land in its start-up.

After each restart every object must reach its right state: served at the revision of its current spec, refused
by validation, or rolled back to speculation disabled. At the end, from a watch kept over the whole run: one
Deployment and one Service per object, one Job and one ControllerRevision per revision, no pod template that
goes back and forth, each rollback applied once and its decision never taken again, each validation Job run
once, no more Events than condition transitions, and no transition without its Event: exactly one RolledBack
Event per rollback, whichever side of the Event the kill landed on.

Seed: SPECDEPLOY_FAULT_SEED; trial count: SPECDEPLOY_CRASH_TRIALS (default 20).
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.harness import zoo
from tests.harness.fakevllm import Behaviour, Fleet
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.podrunner import PodRunner
from tests.reliability.expectations import BAD, Expectations, sd, verdict
from tests.reliability.recorder import Recorder, api_client, percentile, wait_until

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("SPECDEPLOY_FAULT_SEED", "20261129"))
TRIALS = int(os.environ.get("SPECDEPLOY_CRASH_TRIALS", "20"))
ROLLBACK_TRIALS = (5, 11, 17)  # these trials also kill around a rollback (the others: creating, updating, validating)
CONVERGE_TIMEOUT = 90.0


def behaviour(draft: str | None) -> Behaviour:
    if draft is None:
        return Behaviour(rate=None)
    return Behaviour(rate=0.2 if draft == BAD else 0.8)


def operator_409s(operator: OperatorProcess) -> int:
    """Event creates the operator found already done (logged by ``handlers``): kills between Event and status."""
    return len(re.findall(r"Event \w+ \S+ exists already \(409\)", operator.logs()))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return zoo.model_folders(tmp_path_factory.mktemp("models"))


@pytest.fixture
def fleet(cluster: LocalCluster) -> Iterator[Fleet]:
    f = Fleet(cluster.kubeconfig, behaviour).start()
    yield f
    f.stop()


@pytest.fixture
def runner(cluster: LocalCluster) -> Iterator[PodRunner]:
    r = PodRunner(cluster.kubeconfig).start()
    yield r
    r.stop()


def test_sigkill_at_random_points_converges_without_duplicates(
    cluster: LocalCluster,
    namespace: str,
    operator: OperatorProcess,
    fleet: Fleet,
    runner: PodRunner,
    models: dict[str, str],
) -> None:
    rng = random.Random(SEED)
    api = api_client(cluster.kubeconfig)
    world = Expectations(namespace, client.CustomObjectsApi(api), client.AppsV1Api(api))
    recorder = Recorder(cluster.kubeconfig, namespace).start()
    try:
        for j in range(2):
            world.apply(sd(f"upd-{j}", k=4), "serve")
        wait_until("the long-lived objects to serve", lambda: not world.not_converged(), timeout=CONVERGE_TIMEOUT)

        rollback_modes = ["after-trip", "after-trip", "before-trip"]
        rng.shuffle(rollback_modes)
        k_next = {0: 4, 1: 4}
        converge_s: list[float] = []
        in_flight: list[int] = []
        log: list[str] = []
        trip_verdicts: dict[str, dict[str, str]] = {}

        def churn(i: int) -> None:
            world.apply(sd(f"c{i}", k=2 + i % 5, replicas=0), "serve")
            j = i % 2
            k_next[j] = 2 + (k_next[j] - 1) % 8  # 4 -> 5 -> ... -> 9 -> 2 -> 3 -> ...
            world.apply(sd(f"upd-{j}", k=k_next[j]), "serve")
            if i % 2 == 0:
                bad = i % 4 == 2
                obj = sd(
                    f"v{i}",
                    target=models["target"],
                    draft=models["bad" if bad else "good"],
                    policy="Enforce",
                    replicas=0,
                )
                world.apply(obj, "refuse" if bad else "serve")

        for i in range(TRIALS):
            if i in ROLLBACK_TRIALS:
                mode = rollback_modes[ROLLBACK_TRIALS.index(i)]
                name = f"r{i}"
                created = time.monotonic()
                world.apply(sd(name, draft=BAD, fast=True), "rollback")
                churn_at = created + (rng.uniform(0, 2) if mode == "before-trip" else rng.uniform(7, 10))
                kill_at = created + rng.uniform(3, 9) if mode == "before-trip" else None
                churned = False
                while True:
                    now = time.monotonic()
                    if not churned and now >= churn_at:
                        churn(i)
                        churned = True
                    if kill_at is not None and now >= kill_at and churned:
                        break
                    if kill_at is None:
                        seen = verdict(world.apps, namespace, name)
                        if seen:
                            trip_verdicts[name] = seen
                            # a random point while the rollback is applied (Deployment, status, Event: ~50 ms)
                            time.sleep(rng.uniform(0, 0.08))
                            break
                        assert now - created < 60, f"{name} never tripped:\n{operator.logs()[-3000:]}"
                    time.sleep(0.01)
                what = f"rollback/{mode}"
            else:
                churn(i)
                time.sleep(rng.uniform(0, 2.0))  # most writes of a change land in its first two seconds
                what = "churn"
            operator.kill()
            pending = world.not_converged()
            in_flight.append(len(pending))
            downtime = rng.uniform(0, 0.5)
            t_restart = time.monotonic()
            # No waiting for the new process to be live: the next trial may well act on, and kill, one starting up.
            operator.restart(downtime=downtime, wait=False)
            wait_until(
                f"trial {i}: every object converged after the restart",
                lambda: not world.not_converged(),
                timeout=CONVERGE_TIMEOUT,
            )
            took = time.monotonic() - t_restart
            converge_s.append(took)
            log.append(f"trial {i:2d} {what:<22} in flight at kill {len(pending):2d}  converged in {took:5.1f} s")

        # --- nothing twice, nothing lost
        assert recorder.duplicate_children() == []
        for name, revs in world.revisions.items():
            templates = recorder.record(name).templates
            outcome = world.expected[name]
            if outcome == "refuse":
                assert templates == [], f"{name}: an incompatible draft was deployed: {templates}"
            elif outcome == "rollback":
                assert templates == [revs[-1], f"{revs[-1]}-nospec"], f"{name}: rollback applied as {templates}"
                assert recorder.rollbacks_applied(name) == 1
            else:
                distinct = [r for n, r in enumerate(revs) if n == 0 or r != revs[n - 1]]
                assert templates == distinct, f"{name}: pod template went {templates}, spec went {distinct}"
        for name, before in trip_verdicts.items():
            after = verdict(world.apps, namespace, name)
            assert after.get("specdeploy.io/at") == before.get("specdeploy.io/at"), f"{name}: decision re-taken"
        names = list(world.expected)
        excess = recorder.excess_events(names)
        assert not excess, "\n".join(excess)
        events = recorder.sd_events()
        rolled_back = {n: events.get(n, Counter())["RolledBack"] for n, o in world.expected.items() if o == "rollback"}
        assert rolled_back and set(rolled_back.values()) == {1}, f"RolledBack Events per rollback: {rolled_back}"
        missing = recorder.missing_events(names)
        assert not missing, f"transitions recorded in status whose Event was never posted: {missing}"
        runs = Counter(r["pod"].rsplit("-", 1)[0] for r in runner.runs)
        assert runs and max(runs.values()) == 1, f"a validation Job ran twice: {runs}"
        assert all(r["exit"] in (0, 1) for r in runner.runs), [r["message"][:200] for r in runner.runs]

        print(f"\ncrash trials (seed {SEED}):")
        print("\n".join(log))
        print(
            f"trials {len(converge_s)}, objects {len(names)}, kills with objects in flight "
            f"{sum(1 for n in in_flight if n)} (objects in flight per kill: median {statistics.median(in_flight)}, "
            f"max {max(in_flight)})\n"
            f"convergence after restart (s): median {statistics.median(converge_s):.1f}, "
            f"p99 {percentile(converge_s, 99):.1f}, max {max(converge_s):.1f}\n"
            f"validation runs {len(runner.runs)} (one per Job), rollbacks {len(trip_verdicts)} killed after the trip\n"
            f"RolledBack Events per rollback (exactly one each): {rolled_back}; transitions without their Event: "
            f"{len(missing)}; Event creates refused as already said (409): {operator_409s(operator)}"
        )
    finally:
        recorder.stop()

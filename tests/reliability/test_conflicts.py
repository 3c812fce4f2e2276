"""A second writer on the same objects: no update is lost, and the operator does not fight a user's own marks.

While the operator rolls out spec changes, another client (its own connection and field manager, as another
controller or a person with kubectl would be) keeps writing, as fast as the API server lets it:

- the SpeculativeDeployment's status, read-modify-write with the resourceVersion (optimistic concurrency, the way
  a well-behaved controller writes): a condition type of its own, ``example.com/Audited``, whose message counts
  up, and ``status.phase``, a field the operator owns;
- labels and annotations of its own on the Deployment and the Service (merge patches; a revision's Deployment
  goes with its revision, so the writer also marks the last revision's Deployment before it stops);
- the Deployment's ``spec.replicas`` (a scale), another field the operator owns.

Afterwards the operator's fields must be right again (phase, replicas, revision, Ready) and the other writer's
last values must all still be there: its condition, labels and annotations. Then nothing may change for 30 s:
no PATCH by the operator on the Deployment or the Service, no status write.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.specs import condition
from tests.reliability.expectations import Expectations, deployments_settled, sd, sd_deployment
from tests.reliability.recorder import GROUP, PLURAL, VERSION, api_client, wait_until

pytestmark = pytest.mark.integration

OBJECTS = ("x0", "x1", "x2")
WRITER_SECONDS = 12.0
STEADY_SECONDS = 30.0
FOREIGN = "example.com/Audited"
LABEL = "team.example.com/owner"
ANNOTATION = "audit.example.com/round"


class SecondWriter:
    """Another client writing the same objects from a thread; remembers the last value it wrote to each."""

    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        api = api_client(cluster.kubeconfig, user_agent="second-writer")
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.rounds = 0
        self.status_conflicts = 0  # 409s: the operator wrote in between; read again and retry
        self.last_message: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="second-writer", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> SecondWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.write_round()
        except BaseException as e:  # surfaced by stop()
            self.error = e

    def write_round(self) -> None:
        self.rounds += 1
        n = self.rounds
        for name in OBJECTS:
            self._status(name, f"round {n}", phase="Degraded" if n % 2 else "Pending")
            marks = {"metadata": {"labels": {LABEL: "ml-platform"}, "annotations": {ANNOTATION: str(n)}}}
            self.core.patch_namespaced_service(name, self.namespace, marks)
            try:
                dep_name = sd_deployment(self.apps, self.namespace, name).metadata.name
            except AssertionError:
                continue  # Replace deletes the old revision's Deployment before it creates the new one: none now
            try:
                self.apps.patch_namespaced_deployment(dep_name, self.namespace, marks)
                if n % 3 == 0:
                    self.apps.patch_namespaced_deployment_scale(dep_name, self.namespace, {"spec": {"replicas": 3}})
            except ApiException as e:
                if e.status != 404:
                    raise  # 404: that revision's Deployment went away with it (one Deployment per revision)

    def _status(self, name: str, message: str, phase: str | None) -> None:
        """Read-modify-write of the status with the resourceVersion; retried on 409 Conflict."""
        while True:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
            status = dict(obj.get("status") or {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != FOREIGN]
            conditions.append(
                {
                    "type": FOREIGN,
                    "status": "True",
                    "reason": "Audited",
                    "message": message,
                    "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            status["conditions"] = conditions
            if phase:
                status["phase"] = phase
            body = {**obj, "status": status}
            try:
                self.custom.replace_namespaced_custom_object_status(GROUP, VERSION, self.namespace, PLURAL, name, body)
            except ApiException as e:
                if e.status == 409:
                    self.status_conflicts += 1
                    continue
                raise
            self.last_message[name] = message
            return


def foreign_marks_kept(world: Expectations, writer: SecondWriter) -> dict[str, str]:
    """What of the second writer's last writes is missing, per object."""
    lost = {}
    for name in OBJECTS:
        obj = world.custom.get_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, name)
        mine = condition(obj.get("status") or {}, FOREIGN)
        if mine.get("message") != writer.last_message[name]:
            lost[name] = f"condition {FOREIGN} is {mine or 'gone'}, last written {writer.last_message[name]!r}"
            continue
        for kind, meta in (
            ("Deployment", sd_deployment(world.apps, world.namespace, name).metadata),
            (
                "Service",
                client.CoreV1Api(world.apps.api_client).read_namespaced_service(name, world.namespace).metadata,
            ),
        ):
            if (meta.labels or {}).get(LABEL) != "ml-platform" or (meta.annotations or {}).get(ANNOTATION) != str(
                writer.rounds
            ):
                lost[name] = f"{kind} lost the writer's label or annotation: {meta.labels} {meta.annotations}"
    return lost


def operator_fields_wrong(world: Expectations) -> dict[str, str]:
    """What of the operator's own fields is not (yet) what the operator writes, per object: the revision serving and
    Ready, every Deployment settled, replicas back at the spec's 1, and the phase Ready (the writer writes
    Degraded and Pending)."""
    wrong = world.not_converged()
    if not deployments_settled(world):
        wrong["deployments"] = "not settled"
    for name in OBJECTS:
        st = world.custom.get_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, name)["status"]
        replicas = sd_deployment(world.apps, world.namespace, name).spec.replicas
        if st.get("phase") != "Ready" or condition(st, "Ready").get("status") != "True" or replicas != 1:
            wrong.setdefault(
                name,
                f"phase {st.get('phase')}, Ready {condition(st, 'Ready').get('status')}, "
                f"Deployment replicas {replicas}",
            )
    return wrong


def warm_up_published(world: Expectations) -> bool:
    for name in OBJECTS:
        st = world.custom.get_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, name)["status"]
        acceptance = st.get("acceptance") or {}
        if acceptance.get("revision") != st["revision"]["current"] or acceptance.get("reason") != "WarmingUp":
            return False
    return True


def snapshot(world: Expectations) -> dict[str, Any]:
    """resourceVersion and what matters of each object and child (to say what changed, if anything does)."""
    core = client.CoreV1Api(world.apps.api_client)
    out: dict[str, Any] = {}
    for name in OBJECTS:
        obj = world.custom.get_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, name)
        out[f"sd/{name}"] = (obj["metadata"]["resourceVersion"], obj.get("status"))
        dep = sd_deployment(world.apps, world.namespace, name)
        out[f"deployment/{name}"] = (dep.metadata.resource_version, dep.status.to_dict())
        svc = core.read_namespaced_service(name, world.namespace)
        out[f"service/{name}"] = (svc.metadata.resource_version, None)
    return out


def test_a_second_writer_loses_nothing_and_is_not_fought(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    api = api_client(cluster.kubeconfig)
    world = Expectations(namespace, client.CustomObjectsApi(api), client.AppsV1Api(api))
    for name in OBJECTS:
        world.apply(sd(name, k=4, replicas=1, scrape_seconds=1), "serve")
    wait_until("the objects to serve", lambda: not world.not_converged(), timeout=90)

    mark = operator.log_mark()
    writer = SecondWriter(cluster, namespace).start()
    deadline = time.monotonic() + WRITER_SECONDS
    k = 4
    while time.monotonic() < deadline:  # the operator has real work meanwhile: new revisions to roll out
        k = 2 + (k - 1) % 8
        for name in OBJECTS:
            world.apply(sd(name, k=k, replicas=1, scrape_seconds=1), "serve")
        time.sleep(3)
    # Each revision has its own Deployment: let the writer mark the last revision's too before it stops.
    wait_until("the last revision's Deployments", lambda: not world.not_converged(ready=False), timeout=60)
    time.sleep(3)
    writer.stop()
    during = operator.logs_since(mark)

    # The writer's last scale may reach the operator after it stopped (its watch lags on a busy machine): until the
    # operator has put replicas back and said so, the phase is honestly Progressing. So all of the operator's fields
    # are waited for together; one that stays wrong (the writer's phase stuck) fails here, named.
    try:
        _, converged_in = wait_until(
            "the operator's fields to be right again", lambda: not operator_fields_wrong(world), timeout=60
        )
    except AssertionError:
        still = operator_fields_wrong(world)
        raise AssertionError(f"60 s after the second writer stopped, still wrong (its value stuck?): {still}") from None
    # The monitor's first word on a new revision ("warming up", within a scrape interval of 1 s) is one status write
    # of its own; wait for it, so that the quiet half-minute below measures fighting, not news.
    wait_until("the warm-up verdict of every object", lambda: warm_up_published(world), timeout=60)
    assert not operator_fields_wrong(world)
    lost = foreign_marks_kept(world, writer)
    assert not lost, f"the operator removed the second writer's own writes: {lost}"

    mark = operator.log_mark()
    before = snapshot(world)
    time.sleep(STEADY_SECONDS)
    after = snapshot(world)
    steady = operator.logs_since(mark)
    patches = sum(steady.count(f"updated {kind} ") for kind in ("Deployment", "Service"))
    changed = {k: (before[k][1], after[k][1]) for k in before if before[k][0] != after[k][0]}
    assert patches == 0 and not changed, f"{patches} PATCHes, changed (before, after): {changed}"
    assert not foreign_marks_kept(world, writer)

    reverts = sum(during.count(f"updated Deployment {name}") for name in OBJECTS)
    refused = during.count("conflict, reconciling again")  # the operator's stale status writes, refused (409)
    print(
        f"\nsecond writer: {writer.rounds} rounds over {WRITER_SECONDS:.0f} s on {len(OBJECTS)} objects "
        f"({writer.status_conflicts} of its status writes met 409 Conflict and were retried); operator Deployment "
        f"PATCHes meanwhile {reverts}, its status writes refused as stale (409) {refused}; converged "
        f"{converged_in:.1f} s after it stopped; over the next {STEADY_SECONDS:.0f} s: {patches} PATCHes on "
        f"Deployments/Services, {len(changed)} objects changed"
    )

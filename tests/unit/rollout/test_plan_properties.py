"""Properties of ``plan()`` over random observed worlds: level-based, idempotent, and safe under Enforce.

A world here is any mix a restarted operator could find: a revision history with arbitrary verdicts, a live
Deployment running any recorded revision (with or without speculation, rolled out or not), a validation Job in
any state, stale conditions, and a monitor verdict on any revision.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.rollout.world import T0, World, iso, merge_patch, template_revision

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id, serving_snapshot
from specdeploy.render import owner_for, render_deployment, render_service
from specdeploy.render.labels import SD_NAME as LABEL_NAME
from specdeploy.render.labels import SD_REVISION as LABEL_REVISION
from specdeploy.rollout.drift import is_subset
from specdeploy.rollout.history import (
    ANNOTATION_AT,
    ANNOTATION_MESSAGE,
    ANNOTATION_REASON,
    ANNOTATION_STATE,
    ANNOTATION_VALIDATION,
    NO_SPECULATION_SUFFIX,
)
from specdeploy.rollout.plan import JobOutcome, MonitorFinding, plan, spec_for

TARGET = {"model": "org/target-70b", "tensorParallelSize": 4}


def _spec(k: int, draft: str | None) -> dict[str, Any]:
    if draft is None:
        return {"target": TARGET, "speculation": {"method": "ngram", "numSpeculativeTokens": k}}
    return {"target": TARGET, "draft": {"model": draft}, "speculation": {"numSpeculativeTokens": k}}


POOL = [_spec(k, d) for k in (2, 4, 6) for d in ("org/draft-a", "org/draft-b", None)]
STATES = [
    {},
    {ANNOTATION_STATE: "stable", ANNOTATION_REASON: "Healthy"},
    {ANNOTATION_STATE: "failed", ANNOTATION_REASON: "AcceptanceRateLow", ANNOTATION_MESSAGE: "rate 0.21 < 0.5"},
    {ANNOTATION_STATE: "failed", ANNOTATION_REASON: "ValidationFailed", ANNOTATION_MESSAGE: "vocabulary: differs"},
]
VALIDATIONS = [
    None,
    {"compatible": True, "exitCode": 0, "summary": "compatible", "checks": [], "jobName": "j"},
    {
        "compatible": False,
        "exitCode": 1,
        "summary": "incompatible: vocabulary",
        "checks": [{"name": "vocabulary", "status": "fail", "message": "32000 vs 32768"}],
        "jobName": "j",
    },
]
REPORTS = {
    0: {"compatible": True, "checks": [{"name": "vocabulary", "status": "pass", "message": "same"}]},
    1: {"compatible": False, "checks": [{"name": "token_ids", "status": "fail", "message": "31997 ids differ"}]},
    2: {"compatible": False, "checks": [], "error": {"kind": "network", "message": "huggingface.co unreachable"}},
}
CONDITION_CHOICES = {
    "Validated": [("True", "ValidationSucceeded"), ("False", "ValidationFailed"), ("Unknown", "ValidationRunning")],
    "Ready": [("True", "Serving"), ("False", "RollingOut"), ("False", "NotServing")],
    "Progressing": [("True", "RollingOut"), ("False", "Complete")],
    "Degraded": [("True", "AcceptanceRateLow"), ("False", "AsExpected"), ("True", "ValidationError")],
    "RolledBack": [("True", "AcceptanceRateLow"), ("False", "NotRolledBack")],
}


@st.composite
def worlds(draw: st.DrawFn) -> World:
    base = copy.deepcopy(draw(st.sampled_from(POOL)))
    if "draft" in base:
        base["validation"] = {"policy": draw(st.sampled_from(["Enforce", "Warn", "Skip"]))}
    base["rollback"] = {"action": draw(st.sampled_from(["RollbackToLastGood", "DisableSpeculation", "None"]))}
    base["replicas"] = draw(st.integers(0, 2))
    world = World(spec=base, generation=draw(st.integers(1, 5)), now=T0)
    owner = owner_for(world.name, world.uid)

    # history: some revisions of the pool (maybe the current one), each with a verdict and maybe a validation
    chosen = draw(st.lists(st.sampled_from(range(len(POOL))), unique=True, max_size=5))
    numbers = draw(st.permutations(range(1, len(chosen) + 1)))
    for index, number in zip(chosen, numbers, strict=True):
        parsed = SpeculativeDeploymentSpec.model_validate(POOL[index])
        rid = revision_id(parsed)
        annotations: dict[str, str] = dict(draw(st.sampled_from(STATES)))
        with_time: bool = draw(st.booleans())
        if annotations and with_time:
            annotations[ANNOTATION_AT] = iso(T0 - 3600 * number)
        validation = draw(st.sampled_from(VALIDATIONS))
        if validation is not None:
            annotations[ANNOTATION_VALIDATION] = json.dumps(validation)
        world.revisions[f"{world.name}-{rid}"] = {
            "metadata": {
                "name": f"{world.name}-{rid}",
                "labels": {LABEL_NAME: world.name, LABEL_REVISION: rid},
                "annotations": annotations,
            },
            "revision": number,
            "data": {"spec": serving_snapshot(parsed)},
        }

    # the live Deployment: one recorded revision, with or without speculation, in any rollout state
    history_specs = [POOL[i] for i in chosen]
    has_deployment: bool = draw(st.booleans())
    if history_specs and has_deployment:
        live_spec = SpeculativeDeploymentSpec.model_validate(
            {**draw(st.sampled_from(history_specs)), "replicas": draw(st.integers(0, 2))}
        )
        speculation = draw(st.booleans())
        live_id = revision_id(live_spec) + ("" if speculation else NO_SPECULATION_SUFFIX)
        dep = render_deployment(
            world.name, world.namespace, live_spec, live_id, owner=owner, speculation_enabled=speculation
        )
        generation = draw(st.integers(1, 3))
        dep["metadata"]["generation"] = generation
        replicas = int(live_spec.replicas)
        ready = draw(st.integers(0, replicas))
        dep["status"] = {
            "observedGeneration": draw(st.integers(generation - 1, generation)),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
        }
        world.deployment = dep
        if draw(st.booleans()):
            world.service = render_service(world.name, world.namespace, live_spec, live_id, owner=owner)

    # the current revision's validation Job: none, running, or finished recently (no retry due)
    job_state = draw(st.sampled_from(["none", "running", 0, 1, 2]))
    if job_state == "running":
        world.job = JobOutcome(name=world.job_name, finished=False)
    elif isinstance(job_state, int):
        world.job = JobOutcome(
            name=world.job_name, finished=True, exit_code=job_state, report=REPORTS[job_state], finished_at=T0 - 10
        )

    # stale conditions from some earlier pass
    if draw(st.booleans()):
        conditions = []
        for type_, choices in CONDITION_CHOICES.items():
            status, reason = draw(st.sampled_from(choices))
            conditions.append(
                {
                    "type": type_,
                    "status": status,
                    "reason": reason,
                    "message": "earlier",
                    "lastTransitionTime": iso(T0 - 86_400),
                }
            )
        world.status = {"observedGeneration": world.generation - 1, "conditions": conditions}

    # the monitor's verdict on some revision (maybe the one serving)
    ids = [revision_id(SpeculativeDeploymentSpec.model_validate(s)) for s in history_specs] + [
        revision_id(SpeculativeDeploymentSpec.model_validate(base))
    ]
    if draw(st.booleans()):
        world.monitor = MonitorFinding(
            revision=draw(st.sampled_from(ids)),
            trip=draw(st.booleans()),
            healthy=draw(st.booleans()),
            healthy_seconds=draw(st.sampled_from([0.0, 600.0])),
            message="acceptance rate 0.310 is below the threshold 0.500 in 3 consecutive qualifying window(s)",
        )
    return world


RANDOM_WORLDS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RANDOM_WORLDS
@given(worlds())
def test_once_carried_out_the_plan_asks_for_nothing_more(world: World) -> None:
    """Level-based: after one pass is applied, planning again on that world changes nothing and says nothing."""
    world.step()  # asserts the status fits the CRD schema
    again = plan(world.observe())
    assert again.events == []
    assert again.verdicts == []
    assert again.record_revision is None and again.create_job is None and again.delete_job is None
    assert again.prune == []
    assert merge_patch(world.status, again.status) == world.status
    for desired in again.deployments:  # every Deployment it wants is live as wanted (one per revision)
        live = world.deployments.get(desired["metadata"]["name"])
        assert live is not None and is_subset(desired, live)
    assert not (set(again.delete_deployments) & set(world.deployments))
    first = world.plans[-1].serving
    assert (again.serving.id if again.serving else None) == (first.id if first else None)


@RANDOM_WORLDS
@given(worlds())
def test_the_same_observation_gives_the_same_plan(world: World) -> None:
    observed = world.observe()
    assert plan(observed) == plan(observed)


@RANDOM_WORLDS
@given(worlds())
def test_under_enforce_the_deployment_never_switches_to_a_revision_that_validation_has_not_cleared(
    world: World,
) -> None:
    before = template_revision(world.deployment)
    spec = SpeculativeDeploymentSpec.model_validate(world.spec)
    current = revision_id(spec)
    p = world.step()
    after = template_revision(p.deployment) if p.deployment is not None else before
    if str(spec.validation.policy) != "Enforce" or spec.draft is None or after == before or after != current:
        return
    recorded = world.annotations(current).get(ANNOTATION_VALIDATION)
    assert recorded is not None and json.loads(recorded)["exitCode"] == 0
    if str(spec.rollback.action) != "None":  # None keeps a revision that failed on acceptance serving
        assert world.annotations(current).get(ANNOTATION_STATE) != "failed"


@RANDOM_WORLDS
@given(worlds())
def test_whatever_serves_renders_a_valid_spec_of_a_recorded_revision(world: World) -> None:
    p = world.step()
    if p.serving is None:
        assert p.deployment is None
        return
    spec = spec_for(p.serving, SpeculativeDeploymentSpec.model_validate(world.spec))
    assert revision_id(spec) == p.serving.revision.id
    assert f"{world.name}-{p.serving.revision.id}" in world.revisions
    # the Deployment rendered runs what serves, or the canary judged beside it (issue 13)
    beside = {p.serving.id, *([p.canary.id] if p.canary is not None else [])}
    assert p.deployment is not None and template_revision(p.deployment) in beside

"""What each SpeculativeDeployment of a fault-injection test should become, and whether it has.

The tests apply specs through the API (faster than kubectl under 2 cores) and tell the ``Expectations`` the outcome
they expect: served at the revision of the current spec, refused by validation, or rolled back to speculation
disabled. ``not_converged()`` reads every object and Deployment once and says, per object, what is still off.
The revision id comes from the operator's own pure function, so "at the current revision" means the status and
the pod template were computed from the latest spec, not an older one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import revision_id
from specdeploy.render import labels as lbl
from specdeploy.rollout import history as hist
from tests.harness.specs import condition, manifest
from tests.reliability.recorder import GROUP, PLURAL, VERSION

TARGET, GOOD, BAD = "org/target-8b", "org/good-draft", "org/bad-draft"
# Trips after one bad 10 s window of scripted traffic.
FAST_ROLLBACK = {
    "minAcceptanceRate": 0.5,
    "windowSeconds": 10,
    "consecutiveWindows": 1,
    "minDraftTokens": 100,
    "warmupSeconds": 0,
}


def sd(
    name: str,
    *,
    target: str = TARGET,
    draft: str = GOOD,
    k: int = 4,
    policy: str = "Skip",
    replicas: int = 1,
    fast: bool = False,
    scrape_seconds: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": {"model": target, "tensorParallelSize": 1, "maxModelLen": 8192},
        "draft": {"model": draft},
        "speculation": {"method": "draft_model", "numSpeculativeTokens": k},
        "replicas": replicas,
        "validation": {"policy": policy},
        "rollout": {"strategy": "Replace"},  # these trials are about Replace; Canary: tests/integration/test_canary
    }
    if fast:
        spec["rollback"] = FAST_ROLLBACK
        spec["metrics"] = {"scrapeIntervalSeconds": 1, "timeoutSeconds": 2}
    elif scrape_seconds is not None:
        spec["metrics"] = {"scrapeIntervalSeconds": scrape_seconds, "timeoutSeconds": 1}
    return manifest(name, spec)


def template_revision(dep: dict[str, Any] | None) -> str | None:
    if dep is None:
        return None
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    return labels.get(lbl.SD_REVISION)


def k_of(dep: dict[str, Any]) -> int | None:
    args = dep["spec"]["template"]["spec"]["containers"][0].get("args") or []
    if "--speculative-config" not in args:
        return None
    return int(json.loads(args[args.index("--speculative-config") + 1])["num_speculative_tokens"])


@dataclass
class Expectations:
    """The test's own account of what each object should become, and the API to read what it is."""

    namespace: str
    custom: client.CustomObjectsApi
    apps: client.AppsV1Api
    expected: dict[str, str] = field(default_factory=dict)  # name -> serve | refuse | rollback
    revisions: dict[str, list[str]] = field(default_factory=dict)  # name -> revision ids in the order applied

    def apply(self, obj: dict[str, Any], outcome: str) -> None:
        name = obj["metadata"]["name"]
        rev = revision_id(SpeculativeDeploymentSpec.model_validate(obj["spec"]))
        if name in self.expected:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, {"spec": obj["spec"]}
            )
        else:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, obj)
        self.expected[name] = outcome
        self.revisions.setdefault(name, []).append(rev)

    def not_converged(self, ready: bool = True) -> dict[str, str]:
        """Objects not (yet) in their expected state, each with what is wrong.

        ``ready=False`` asks only for what the operator itself writes (status at the current revision, the pod
        template), not for the pods to be Ready, which also needs the controller-manager, scheduler and kwok.
        """
        sds = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)["items"]
        deps: dict[str, dict[str, Any]] = {}  # by owner: its Deployment (one per revision; the newest is judged)
        for d in json.loads(self.apps.list_namespaced_deployment(self.namespace, _preload_content=False).data)["items"]:
            owner = (d["metadata"].get("labels") or {}).get(lbl.SD_NAME)
            if owner and (
                owner not in deps or d["metadata"]["creationTimestamp"] >= deps[owner]["metadata"]["creationTimestamp"]
            ):
                deps[owner] = d
        by_name = {o["metadata"]["name"]: o for o in sds}
        wrong = {}
        for name, outcome in self.expected.items():
            obj = by_name.get(name)
            why = "missing" if obj is None else self._why(obj, outcome, deps.get(name), ready)
            if why:
                wrong[name] = why
        return wrong

    @staticmethod
    def _why(obj: dict[str, Any], outcome: str, dep: dict[str, Any] | None, ready: bool) -> str:
        st = obj.get("status") or {}
        rev = revision_id(SpeculativeDeploymentSpec.model_validate(obj["spec"]))
        revs = st.get("revision") or {}
        if st.get("observedGeneration") != obj["metadata"]["generation"] or revs.get("current") != rev:
            return f"status not at generation {obj['metadata']['generation']} / revision {rev}"
        serving = revs.get("serving")
        if outcome == "serve":
            k = obj["spec"]["speculation"]["numSpeculativeTokens"]
            ok = (
                serving == rev
                and (condition(st, "Ready").get("status") == "True" or not ready)
                and template_revision(dep) == rev
                and dep is not None
                and k_of(dep) == k
            )
            return "" if ok else f"not serving {rev} (serving {serving}, template {template_revision(dep)})"
        if outcome == "refuse":
            ok = (
                st.get("phase") == "Failed"
                and condition(st, "Validated").get("reason") == "ValidationFailed"
                and dep is None
                and [f["id"] for f in revs.get("failed") or []] == [rev]
            )
            return "" if ok else f"not refused (phase {st.get('phase')}, deployment {dep is not None})"
        nospec = f"{rev}-nospec"
        ok = (
            condition(st, "RolledBack").get("status") == "True"
            and serving == nospec
            and template_revision(dep) == nospec
            and (condition(st, "Ready").get("status") == "True" or not ready)
            and [f["id"] for f in revs.get("failed") or []] == [rev]
        )
        return "" if ok else f"not rolled back (serving {serving}, template {template_revision(dep)})"


def sd_deployment(apps: client.AppsV1Api, namespace: str, name: str) -> Any:
    """The vLLM Deployment of SpeculativeDeployment ``name`` (one per revision, issue 13): the one with the most
    ready pods."""
    found = apps.list_namespaced_deployment(
        namespace, label_selector=f"specdeploy.io/name={name},app.kubernetes.io/component=server"
    ).items
    if not found:
        raise AssertionError(f"no Deployment of {namespace}/{name}")
    return max(found, key=lambda d: ((d.status.ready_replicas or 0), d.metadata.name))


def deployments_settled(world: Expectations) -> bool:
    """Every Deployment observed at its generation with all replicas updated and ready (the controller-manager's
    part of a rollout, which the operator's Ready condition follows)."""
    for d in world.apps.list_namespaced_deployment(world.namespace).items:
        st, want = d.status, d.spec.replicas or 0
        if (st.observed_generation or 0) < d.metadata.generation:
            return False
        if (st.updated_replicas or 0) < want or (st.ready_replicas or 0) < want or (st.replicas or 0) != want:
            return False
    return True


def verdict(apps: client.AppsV1Api, namespace: str, name: str) -> dict[str, str]:
    """The failed verdict annotations on the ControllerRevisions of ``name`` (empty when none)."""
    for cr in apps.list_namespaced_controller_revision(namespace, label_selector=f"{lbl.SD_NAME}={name}").items:
        ann = cr.metadata.annotations or {}
        if ann.get(hist.ANNOTATION_STATE) == hist.RevisionState.FAILED:
            return dict(ann)
    return {}

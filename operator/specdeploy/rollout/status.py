"""Step 6 of the plan: the conditions and the status that say what the plan decided.

Built through the ``api.status`` models, so what the operator writes is what the CRD's schema describes and what
readers parse (one definition, three users). The dump keeps exactly the fields set here: ``revision.serving`` and
``revision.stable`` are written as null when empty, which a merge patch turns into removing the old value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from specdeploy import conditions as cond
from specdeploy.api import RollbackAction, SpeculativeDeploymentSpec
from specdeploy.api.spec import Speculation
from specdeploy.api.status import (
    MAX_FAILED_REVISIONS,
    AcceptanceStatus,
    FailedRevision,
    PerformanceStatus,
    RevisionStatus,
    SpeculativeDeploymentStatus,
    ValidationStatus,
)
from specdeploy.monitor.finding import MonitorFinding
from specdeploy.render import endpoint
from specdeploy.render.labels import selector_string  # issue 15
from specdeploy.rollout.history import History, RevisionRecord, RevisionState, ServingChoice
from specdeploy.rollout.serve import ACCEPTANCE_LOW, CANARY_ABORTED, LIVE_FAILURES, SLOWER_THAN_CONTROL
from specdeploy.rollout.validation import VALIDATION_ERROR, VALIDATION_FAILED, ValidationState


@dataclass(frozen=True)
class Rollout:
    """What steps 2-5 decided, as the conditions need it."""

    validation: ValidationState
    serving: ServingChoice | None
    replaced: RevisionRecord | None  # the failed current revision that ``serving`` stands in for (RolledBack)
    action: RollbackAction
    rolled_out: bool
    ready: int
    replicas: int
    canary: str | None = None  # issue 13: a canary in progress, in words (Progressing says it)
    moving: bool = False  # issue 13: pods move to ``serving`` step by step with ``replicas`` ready pods throughout


def rollout_conditions(r: Rollout) -> list[cond.Condition]:
    """Ready, Progressing, RolledBack and Degraded (Validated comes from step 2)."""
    return [_ready(r), _progressing(r), _rolled_back(r), _degraded(r)]


def _ready(r: Rollout) -> cond.Condition:
    if r.serving is None:
        return cond.Condition(cond.READY, cond.FALSE, "NotServing", "no revision can serve yet")
    if r.rolled_out:
        what = f"revision {r.serving.id}" + ("" if r.serving.speculation else " (speculation disabled)")
        return cond.Condition(cond.READY, cond.TRUE, "Serving", f"{r.ready}/{r.replicas} replicas ready, {what}")
    if r.moving:
        return cond.Condition(
            cond.READY,
            cond.TRUE,
            "Serving",
            f"{r.ready}/{r.replicas} replicas ready while revision {r.serving.id} replaces the others step by step",
        )
    return cond.Condition(
        cond.READY, cond.FALSE, "RollingOut", f"{r.ready}/{r.replicas} replicas ready for revision {r.serving.id}"
    )


def _progressing(r: Rollout) -> cond.Condition:
    if r.validation is ValidationState.RUNNING:
        return cond.Condition(cond.PROGRESSING, cond.TRUE, "Validating", "validation Job running")
    if r.serving is not None and not r.rolled_out:
        return cond.Condition(cond.PROGRESSING, cond.TRUE, "RollingOut", f"rolling out revision {r.serving.id}")
    if r.canary:
        return cond.Condition(cond.PROGRESSING, cond.TRUE, cond.CANARY, r.canary)
    return cond.Condition(cond.PROGRESSING, cond.FALSE, "Complete", "nothing in progress")


def _rolled_back(r: Rollout) -> cond.Condition:
    if r.replaced is None:
        return cond.Condition(cond.ROLLED_BACK, cond.FALSE, "NotRolledBack", "no rollback is in effect")
    target = r.serving.id if r.serving else "nothing"
    why = r.replaced.message or "acceptance rate below threshold"
    if r.replaced.reason == CANARY_ABORTED:  # issue 13: the canary was stopped, what served before serves on
        return cond.Condition(
            cond.ROLLED_BACK, cond.TRUE, CANARY_ABORTED, f"canary {r.replaced.id} aborted, {target} serves: {why}"
        )
    return cond.Condition(
        cond.ROLLED_BACK,
        cond.TRUE,
        _live_reason(r.replaced.reason),
        f"revision {r.replaced.id} rolled back to {target}: {why}",
    )


def _live_reason(reason: str | None) -> str:
    """The condition reason of a live failure: the verdict's own (issue 14: SlowerThanControl), else acceptance."""
    return reason if reason in LIVE_FAILURES else ACCEPTANCE_LOW


def _live_words(reason: str | None) -> str:
    if reason == SLOWER_THAN_CONTROL:
        return "speculation stayed slower than the control group"
    return "draft acceptance rate stayed below the threshold"


def _degraded(r: Rollout) -> cond.Condition:
    serving = r.serving
    if r.validation is ValidationState.FAILED:
        keep = f"; revision {serving.id} serves instead" if serving else "; nothing is deployed"
        return cond.Condition(cond.DEGRADED, cond.TRUE, VALIDATION_FAILED, f"draft rejected by validation{keep}")
    if r.validation is ValidationState.ERROR:
        return cond.Condition(cond.DEGRADED, cond.TRUE, VALIDATION_ERROR, "validation could not run; see Validated")
    if r.replaced is not None and r.replaced.reason == CANARY_ABORTED:
        return cond.Condition(
            cond.DEGRADED, cond.TRUE, CANARY_ABORTED, f"canary revision {r.replaced.id} was aborted; see RolledBack"
        )
    if r.replaced is not None:
        reason = r.replaced.reason
        return cond.Condition(cond.DEGRADED, cond.TRUE, _live_reason(reason), _live_words(reason))
    if (
        r.action is RollbackAction.NONE
        and serving is not None
        and serving.revision.state is RevisionState.FAILED
        and serving.revision.reason in LIVE_FAILURES
    ):
        return cond.Condition(
            cond.DEGRADED,
            cond.TRUE,
            _live_reason(serving.revision.reason),
            f"revision {serving.revision.id} keeps serving (rollback action None) although its "
            f"{_live_words(serving.revision.reason).removeprefix('speculation ')}: "
            f"{serving.revision.message or 'see status.acceptance'}",
        )
    return cond.Condition(cond.DEGRADED, cond.FALSE, "AsExpected", "no problem detected")


@dataclass(frozen=True)
class StatusInput:
    """What status says besides the conditions."""

    name: str
    namespace: str
    generation: int
    spec: SpeculativeDeploymentSpec
    current_id: str
    serving: ServingChoice | None
    history: History
    ready: int
    control: tuple[int, int] = (0, 0)  # issue 14: the control group's ready and wanted pods (READY counts them)


def build_status(
    s: StatusInput,
    conditions: Sequence[Mapping[str, Any]],
    *,
    validation: Mapping[str, Any] | None,
    finding: MonitorFinding | None,
    old: Mapping[str, Any],
    now_iso: str,
) -> dict[str, Any]:
    """The whole status, as written: built through the models, dumped by alias with the fields set here.

    ``validation`` is this revision's summary (step 2), if any; ``finding`` may carry a new status.acceptance;
    ``old`` is the observed status, whose validation and acceptance stay until replaced.
    """
    replicas = int(s.spec.replicas)
    status = SpeculativeDeploymentStatus.model_validate(
        {
            "observedGeneration": s.generation,
            "conditions": conditions,
            "phase": cond.phase(conditions),
            "replicas": replicas,
            "readyReplicas": s.ready,
            "ready": f"{s.ready + s.control[0]}/{replicas + s.control[1]}",
            "numSpeculativeTokens": serving_depth(s.spec, s.serving),
            "selector": selector_string(s.name),  # issue 15: the scale subresource's labelSelectorPath
            "revision": RevisionStatus(
                current=s.current_id,
                serving=s.serving.id if s.serving else None,
                stable=s.history.stable.id if s.history.stable else None,
                failed=[_failed(r, now_iso) for r in s.history.failed[:MAX_FAILED_REVISIONS]],
            ),
            "endpoint": endpoint(s.name, s.namespace, int(s.spec.serving.port)),
        }
    )
    if validation is not None:
        policy = str(s.spec.validation.policy)
        status.validation = ValidationStatus.model_validate({"revision": s.current_id, "policy": policy, **validation})
    elif "validation" in old:
        status.validation = ValidationStatus.model_validate(old["validation"])
    acceptance = (finding.acceptance if finding and finding.acceptance else None) or old.get("acceptance")
    if acceptance:
        status.acceptance = AcceptanceStatus.model_validate(acceptance)
    # issue 14: the serving revision's measured speed (monitor.performance decides when it is worth a write)
    performance = (finding.performance if finding and finding.performance else None) or old.get("performance")
    if performance:
        status.performance = PerformanceStatus.model_validate(performance)
    out: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return out


def serving_depth(spec: SpeculativeDeploymentSpec, serving: ServingChoice | None) -> int:
    """k of what serves: 0 with speculation off, the serving revision's own k (its snapshot, the method's default
    when the snapshot gives none), the current spec's while nothing serves yet."""
    if serving is None:
        return spec.speculation.k
    if not serving.speculation:
        return 0
    snapshot = serving.revision.spec.get("speculation")
    if not isinstance(snapshot, Mapping):
        return spec.speculation.k
    try:
        return Speculation.model_validate(snapshot).k
    except ValidationError:
        return spec.speculation.k


def _failed(rev: RevisionRecord, now_iso: str) -> FailedRevision:
    entry = FailedRevision(id=rev.id, reason=rev.reason or ACCEPTANCE_LOW, at=rev.at or now_iso)
    if rev.message:
        entry.message = rev.message
    return entry

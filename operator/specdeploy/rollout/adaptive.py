"""The revision the adaptive loop rolls out (issue 14 item 3): the user's spec with the operator's depth schedule.

The spec is never edited. The schedule that ``monitor.payoff.choose_schedule`` picked becomes
``speculation.numSpeculativeTokensPerBatchSize`` of a derived spec, validated by the API's own rules (vLLM 0.32's:
from 1, sorted, non-overlapping, depths within k), whose revision id differs from the spec's: it is recorded and
rolled out like any other revision (through spec.rollout, so a schedule whose canary is slower is aborted like any
canary). A schedule that speculates k everywhere is the spec itself (no new revision, no restart).
"""

from __future__ import annotations

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.monitor.payoff import Schedule


def adapted_spec(spec: SpeculativeDeploymentSpec, schedule: Schedule | None) -> SpeculativeDeploymentSpec:
    """``spec`` with ``schedule`` as its batch-size schedule; raises ValueError (naming the field) for a schedule
    the API refuses. ``None`` or k at every batch size gives ``spec`` unchanged."""
    k = spec.speculation.k
    if schedule is None or all(tokens == k for _, _, tokens in schedule):
        return spec
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["speculation"]["numSpeculativeTokensPerBatchSize"] = [
        {"start": start, "end": end, "tokens": tokens} for start, end, tokens in schedule
    ]
    return SpeculativeDeploymentSpec.model_validate(data)

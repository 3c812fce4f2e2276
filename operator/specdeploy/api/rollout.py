"""How a new revision replaces the serving one: judged beside it first (Canary), or all at once (Replace).

Not part of the revision (``api.revision.SERVING_FIELDS``): changing the strategy or its thresholds never restarts a
pod nor reruns the validation Job. It applies to the next change of revision.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from specdeploy.api.base import SpecModel


class Strategy(StrEnum):
    CANARY = "Canary"
    REPLACE = "Replace"


class Canary(SpecModel):
    """The canary: pods of the new revision started beside the serving ones and compared with them."""

    replicas: int = Field(
        1,
        ge=1,
        le=100,
        description="Pods of the new revision started beside the serving ones (extra GPUs while it runs), and the "
        "most extra pods at once while it is promoted. Default: 1.",
    )
    analysis_windows: int = Field(
        3,
        ge=1,
        le=100,
        description="Qualifying windows (rollback.windowSeconds each, at least rollback.minDraftTokens proposed "
        "tokens) the canary must pass beside the serving revision to be promoted. Default: 3.",
    )
    max_acceptance_drop: float = Field(
        0.1,
        ge=0,
        le=1,
        description="A window fails when the canary's acceptance rate is more than this far below the serving "
        "revision's (absolute difference of rates). Default: 0.1.",
    )
    max_latency_increase: float = Field(
        0.1,
        ge=0,
        le=10,
        description="A window fails when the canary's mean time per output token is more than this fraction above "
        "the serving revision's (0.1: 10% slower). Default: 0.1.",
    )


class Rollout(SpecModel):
    """How a change of revision (draft, depth, serving settings) reaches the pods."""

    strategy: Strategy = Field(
        Strategy.CANARY,
        description="Canary: start canary.replicas pods of the new revision beside the serving ones, compare them "
        "over canary.analysisWindows windows, then promote them pod by pod (never fewer than replicas ready pods) "
        "or abort (the serving pods are untouched). Replace: replace every pod at once; with one replica each "
        "change is an outage while vLLM loads. The first revision and a change of replicas alone start no canary. "
        "Default: Canary.",
    )
    canary: Canary = Field(
        default_factory=Canary,
        description="Canary size and the thresholds it is judged by.",
        json_schema_extra={"default": {}},
    )

"""``status`` of a SpeculativeDeployment: what the operator observed and decided, for people and tools.

``kubectl get sd`` reads its printer columns from here, ``kubectl wait --for=condition=Ready`` and Argo CD
read the conditions, and the operator reads back ``revision`` after a restart. Everything is optional: the
operator fills fields in as it learns them. Lists are capped so one object can never outgrow etcd's limits.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from specdeploy.api.base import StatusModel
from specdeploy.api.types import QUALIFIED_NAME_PATTERN, REASON_PATTERN, RevisionId, Timestamp

MAX_FAILED_REVISIONS = 10
MAX_CHECKS = 64
MAX_CONDITIONS = 16


class Phase(StrEnum):
    """One word for the STATUS column, derived from the conditions."""

    PENDING = "Pending"
    VALIDATING = "Validating"
    PROGRESSING = "Progressing"
    READY = "Ready"
    CANARY = "Canary"  # serving, with a canary of the next revision being judged or promoted beside it
    DEGRADED = "Degraded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class Condition(StatusModel):
    """One aspect of the object's state (the metav1.Condition shape)."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=QUALIFIED_NAME_PATTERN,
        description="Validated, Ready, Progressing, Degraded or RolledBack.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1, max_length=1024, pattern=REASON_PATTERN, description="Why, in one CamelCase word."
    )
    message: str = Field("", max_length=32_768, description="Why, in a sentence a person can act on.")
    last_transition_time: Timestamp = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation of the spec this condition was computed from."
    )


class FailedRevision(StatusModel):
    """A revision the operator stopped serving; it is not retried until the spec changes."""

    id: RevisionId = Field(description="The revision id.")
    reason: str = Field(
        min_length=1, max_length=1024, pattern=REASON_PATTERN, description="Why, in one CamelCase word."
    )
    message: str | None = Field(None, max_length=4096, description="What was measured or found.")
    at: Timestamp = Field(description="When it failed.")


class RevisionStatus(StatusModel):
    """Which revisions exist and which one serves."""

    current: RevisionId | None = Field(None, description="Revision id of the current spec.")
    serving: RevisionId | None = Field(
        None, description="Revision the pods run; differs from current after a rollback."
    )
    stable: RevisionId | None = Field(None, description="Last revision that stayed healthy; the rollback target.")
    failed: list[FailedRevision] = Field(
        default_factory=list,
        max_length=MAX_FAILED_REVISIONS,
        description=f"Revisions that failed, newest first (at most {MAX_FAILED_REVISIONS}).",
    )


class ValidationCheck(StatusModel):
    """The result of one compatibility check."""

    name: str = Field(min_length=1, max_length=128, description="Check name, e.g. vocabulary.")
    status: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z]+$", description="Pass, Warn, Fail or Skip.")
    message: str | None = Field(None, max_length=2048, description="What was compared and found.")


class ValidationStatus(StatusModel):
    """Outcome of the draft/target compatibility Job."""

    revision: RevisionId | None = Field(None, description="Revision this result belongs to.")
    compatible: bool | None = Field(None, description="True when no check failed.")
    policy: str | None = Field(None, max_length=16, description="Policy the result was judged under.")
    summary: str | None = Field(None, max_length=4096, description="One-paragraph summary of the findings.")
    checks: list[ValidationCheck] = Field(
        default_factory=list, max_length=MAX_CHECKS, description="Each check and its result."
    )
    completed_at: Timestamp | None = Field(None, description="When the Job finished.")
    job_name: str | None = Field(None, max_length=63, description="Name of the validation Job.")
    exit_code: int | None = Field(
        None, ge=0, le=255, description="Exit code of the validator: 0 compatible, 1 incompatible, 2 could not check."
    )
    parameter_ratio: float | None = Field(
        None,
        ge=0,
        le=1000,
        description="Draft parameters / target parameters (active ones for mixture-of-experts models), estimated "
        "from the configs; the monitor takes it as the cost of a draft step relative to a target step.",
    )


Rate = Annotated[float, Field(ge=0, le=1)]


class AcceptanceStatus(StatusModel):
    """The draft acceptance rate measured over the last complete window."""

    rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Accepted draft tokens / proposed draft tokens in the window (the ACCEPT column).",
    )
    mean_accepted_length: float | None = Field(
        None, ge=0, le=1000, description="Tokens produced per target step, bonus token included (1 + accepted/drafts)."
    )
    per_position: list[Rate] = Field(
        default_factory=list,
        max_length=32,
        description="Acceptance rate of each draft position, first position first.",
    )
    draft_tokens: int | None = Field(None, ge=0, description="Draft tokens proposed in the window.")
    accepted_tokens: int | None = Field(None, ge=0, description="Draft tokens accepted in the window.")
    drafts: int | None = Field(None, ge=0, description="Speculation steps (drafts) in the window.")
    window_end: Timestamp | None = Field(None, description="End of the window.")
    window_seconds: int | None = Field(None, ge=0, description="Length of the window in seconds.")
    pods_counted: int | None = Field(None, ge=0, description="Pods whose counters went into the window.")
    recommended_num_speculative_tokens: int | None = Field(
        None,
        ge=1,
        le=16,
        description="The k that the measured per-position rates suggest (advice only), assuming a draft step costs "
        "the serving revision's own validation parameterRatio of a target step (0.1 when its validator did not "
        "estimate it).",
    )
    rate_text: str | None = Field(None, max_length=16, description="The rate with two decimals, for display.")
    revision: str | None = Field(None, max_length=63, description="Serving revision these numbers belong to.")
    verdict: Literal["Hold", "Healthy", "Rollback"] | None = Field(
        None, description="The rollback decision on the latest windows: Hold, Healthy or Rollback."
    )
    reason: str | None = Field(None, max_length=64, description="Why the decision is what it is (CamelCase code).")
    message: str | None = Field(
        None, max_length=1024, description="The decision in words, with the rates and token counts it used."
    )


class SpeedupByLoad(StatusModel):
    """The measured speedup for one range of running requests per pod (issue 14)."""

    running_min: int = Field(ge=0, le=1_000_000, description="Fewest requests running per pod in this range.")
    running_max: int | None = Field(
        None, ge=0, le=1_000_000, description="Most requests running per pod in this range (unset: no upper end)."
    )
    speedup: float = Field(
        ge=0, le=1000, description="Control time per output token / speculative time per output token."
    )
    tokens: int = Field(ge=0, description="Output tokens of the speculative pods measured in this range.")


class PerformanceStatus(StatusModel):
    """Speed of the serving revision from vLLM's own latency and token series, over the last window with tokens."""

    revision: str | None = Field(None, max_length=63, description="Serving revision these numbers belong to.")
    time_per_output_token_seconds: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="Mean time per output token: vllm:request_time_per_output_token_seconds (sum/count increase "
        "over the window), or vllm:inter_token_latency_seconds when no request finished in it.",
    )
    generation_tokens_per_second: float | None = Field(
        None, ge=0, le=1e9, description="Output tokens per second, all serving pods together (vllm:generation_tokens)."
    )
    running_requests: float | None = Field(
        None, ge=0, le=1e6, description="Mean requests running per pod over the window (vllm:num_requests_running)."
    )
    speedup: float | None = Field(
        None,
        ge=0,
        le=1000,
        description="Measured speedup against a control group with speculation off: control time per output token "
        "over the speculative pods', per load, weighted by speculative tokens (null until measured).",
    )
    speedup_by_load: list[SpeedupByLoad] = Field(
        default_factory=list, max_length=16, description="Measured speedup per range of running requests."
    )
    speedup_from: Timestamp | None = Field(
        None,
        description="Start of the span the speedup was measured over: the last rollback.consecutiveWindows windows "
        "that qualified, pooled (the scrape times their data lies between, to the millisecond).",
    )
    speedup_to: Timestamp | None = Field(None, description="End of the span the speedup was measured over.")
    window_end: Timestamp | None = Field(None, description="End of the window.")
    message: str | None = Field(None, max_length=1024, description="What was measured, in words.")


class ScheduleEntry(StatusModel):
    """One range of the operator's batch-size schedule (vLLM's ``[range_start, range_end, num_speculative_tokens]``)."""

    start: int = Field(ge=1, le=65_536, description="Smallest batch size (running requests) of the range.")
    end: int = Field(ge=1, le=65_536, description="Largest batch size of the range (inclusive).")
    tokens: int = Field(ge=0, le=64, description="Tokens proposed per step in this range; 0 = no speculation.")


class AdaptiveStatus(StatusModel):
    """The adaptive loop's schedule in force (issue 14 item 3): durable here, so a restart computes the same
    revision. The spec is never edited; ``base`` is the spec's own revision the schedule was applied to."""

    schedule: list[ScheduleEntry] = Field(
        default_factory=list,
        max_length=16,
        description="numSpeculativeTokensPerBatchSize the operator rolled out; empty: the spec's own depth.",
    )
    reason: str | None = Field(None, max_length=1024, description="Why this schedule, in words, with the numbers.")
    changed_at: Timestamp | None = Field(None, description="When the operator last changed the schedule.")
    revision: RevisionId | None = Field(None, description="The revision that serves the spec with this schedule.")
    base: RevisionId | None = Field(None, description="The spec's own revision (a new spec drops the schedule).")


class CanaryPair(StatusModel):
    """One measure of the canary beside the same measure of the serving revision, over the same windows."""

    canary: float | None = Field(None, ge=0, le=1e6, description="The canary's value.")
    serving: float | None = Field(None, ge=0, le=1e6, description="The serving revision's value.")


class CanaryStatus(StatusModel):
    """The canary under analysis, or the last one (issue 13)."""

    revision: str | None = Field(None, max_length=63, description="The revision under analysis (its serving id).")
    phase: Literal["Starting", "Analyzing", "Promoting", "Promoted", "Aborted"] | None = Field(
        None,
        description="Starting (its pods are not all ready), Analyzing (compared with the serving revision), "
        "Promoting (replacing the old pods step by step), Promoted, or Aborted (its pods deleted).",
    )
    replicas: int | None = Field(None, ge=0, description="Pods of the canary's revision wanted now.")
    ready_replicas: int | None = Field(None, ge=0, description="Pods of the canary's revision that are ready.")
    windows_passed: int | None = Field(None, ge=0, description="Qualifying windows the canary passed so far.")
    acceptance: CanaryPair | None = Field(None, description="Draft acceptance rate, canary and serving.")
    time_per_output_token_seconds: CanaryPair | None = Field(
        None, description="Mean time per output token in seconds, canary and serving."
    )
    message: str | None = Field(
        None, max_length=1024, description="In words: what was compared, over how many tokens, and the decision."
    )


class SpeculativeDeploymentStatus(StatusModel):
    """Observed state, written only by the operator."""

    observed_generation: int | None = Field(None, ge=0, description="metadata.generation this status describes.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Validated, Ready, Progressing, Degraded and RolledBack.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    phase: Phase | None = Field(None, description="One-word summary of the conditions (the STATUS column).")
    replicas: int | None = Field(None, ge=0, description="vLLM pods that exist.")
    ready_replicas: int | None = Field(None, ge=0, description="vLLM pods that are ready.")
    num_speculative_tokens: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Speculative tokens per step of the revision that serves (0: speculation off), the K column.",
    )
    ready: str | None = Field(
        None, max_length=32, description="Ready replicas out of desired, e.g. 1/1 (the READY column)."
    )
    selector: str | None = Field(
        None,
        max_length=1024,
        description="Label selector of the vLLM pods, every revision (the scale subresource's, for autoscalers).",
    )
    revision: RevisionStatus | None = Field(None, description="Current, serving, stable and failed revisions.")
    validation: ValidationStatus | None = Field(None, description="Result of the last compatibility check.")
    acceptance: AcceptanceStatus | None = Field(None, description="Measured draft acceptance.")
    performance: PerformanceStatus | None = Field(
        None, description="Measured speed of the serving revision (time per output token, tokens per second, load)."
    )

    canary: CanaryStatus | None = Field(None, description="The canary under analysis, or the last one (issue 13).")
    adaptive: AdaptiveStatus | None = Field(
        None, description="The depth schedule the operator chose by load (spec.speculation.adaptive), and why."
    )
    endpoint: str | None = Field(
        None,
        max_length=512,
        description="In-cluster URL of the OpenAI-compatible API, http://<service>.<ns>.svc:<port>.",
    )

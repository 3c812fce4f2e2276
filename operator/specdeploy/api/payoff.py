"""Does speculation pay (issue 14): a control group, depth shaped by load, and vLLM's batch-size schedule.

Three opt-in parts of ``spec.speculation``:

* ``control``: N pods of the same target and serving settings with speculation off, behind the same Service, so the
  operator can measure the speedup of the speculative pods on live traffic instead of modelling it.
* ``adaptive``: the operator computes a ``numSpeculativeTokensPerBatchSize`` schedule from live measurements and
  rolls it out as a new revision (the spec itself is never edited).
* ``numSpeculativeTokensPerBatchSize``: vLLM 0.32's ``num_speculative_tokens_per_batch_size`` (dynamic speculative
  decoding): inclusive ranges of the engine's batch size (running requests) and the depth for each, 0 = no
  speculation in that range.

``control`` and ``adaptive`` are NOT part of the revision (``api.revision``): adding control pods or turning the
adaptive loop on must not restart the speculative pods. The schedule is: it changes vLLM's arguments.

The schedule rules are vLLM's own (``vllm/v1/spec_decode/dynamic/utils.py``,
``validate_and_normalize_dynamic_sd_schedule``): every range positive with start <= end, depths >= 0, ranges
non-overlapping, the first starting at 1 (gaps and the tail carry the previous depth forward). vLLM sorts the ranges
itself; the API asks for them sorted so that one schedule has one spelling (and one revision id). vLLM silently
clamps a depth above ``num_speculative_tokens``; the API refuses it instead, naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import ConfigDict, Field, JsonValue, model_validator

from specdeploy.api.base import SpecModel

MAX_SCHEDULE_RANGES: Final = 16
MAX_BATCH_SIZE: Final = 65_536
MAX_CONTROL_REPLICAS: Final = 100
DEFAULT_MIN_OUTPUT_TOKENS: Final = 1000
DEFAULT_ADAPTIVE_INTERVAL: Final = 600

SCHEDULE_FIELD: Final = "spec.speculation.numSpeculativeTokensPerBatchSize"
SCHEDULE_START_MESSAGE: Final = (
    f"{SCHEDULE_FIELD}: the first range must start at 1 (vLLM needs a depth for every batch size)"
)
SCHEDULE_ORDER_MESSAGE: Final = f"{SCHEDULE_FIELD}: ranges must be sorted by start and must not overlap"
SCHEDULE_RANGE_MESSAGE: Final = f"{SCHEDULE_FIELD}: each range's start must not exceed its end"
SCHEDULE_DEPTH_MESSAGE: Final = (
    f"{SCHEDULE_FIELD}: a range's tokens must not exceed spec.speculation.numSpeculativeTokens"
)


class BatchSizeRange(SpecModel):
    """One entry of the schedule: batch sizes start..end (inclusive) speculate ``tokens`` tokens per step."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self.start <= self.end", "message": SCHEDULE_RANGE_MESSAGE}]
        }
    )

    start: int = Field(ge=1, le=MAX_BATCH_SIZE, description="Smallest batch size (running requests) of the range.")
    end: int = Field(ge=1, le=MAX_BATCH_SIZE, description="Largest batch size of the range (inclusive).")
    tokens: int = Field(
        ge=0,
        le=16,
        description="Tokens proposed per step for these batch sizes; 0 = no speculation "
        "(at most spec.speculation.numSpeculativeTokens).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> BatchSizeRange:
        if self.start > self.end:
            raise ValueError(SCHEDULE_RANGE_MESSAGE)
        return self

    def as_vllm(self) -> list[int]:
        """vLLM's spelling of the entry: ``[range_start, range_end, num_speculative_tokens]``."""
        return [self.start, self.end, self.tokens]


# CEL for the list (self is the list): first range at 1, sorted and non-overlapping. With unique, sorted starts,
# "every range ends before any later one starts" is the pairwise form of vLLM's previous_end check.
SCHEDULE_RULES: Final[list[JsonValue]] = [
    {"rule": "size(self) == 0 || self[0].start == 1", "message": SCHEDULE_START_MESSAGE},
    {
        "rule": "self.all(a, self.all(b, b.start <= a.start || a.end < b.start)) && "
        "self.all(a, self.exists_one(b, b.start == a.start)) && self.map(e, e.start).isSorted()",
        "message": SCHEDULE_ORDER_MESSAGE,
    },
]


def check_schedule(schedule: Sequence[BatchSizeRange], k: int) -> None:
    """Raise ValueError (naming the field) unless vLLM 0.32 accepts ``schedule`` as given, with depths <= k."""
    if not schedule:
        return
    if schedule[0].start != 1:
        raise ValueError(SCHEDULE_START_MESSAGE)
    previous_end = 0
    for entry in schedule:
        if entry.start <= previous_end:
            raise ValueError(SCHEDULE_ORDER_MESSAGE)
        previous_end = entry.end
        if entry.tokens > k:
            raise ValueError(f"{SCHEDULE_DEPTH_MESSAGE} ({entry.tokens} > {k})")


def depth_at(schedule: Sequence[BatchSizeRange], batch_size: int, k: int) -> int:
    """The depth vLLM uses at ``batch_size`` (its dense lookup: gaps and the tail carry the previous depth)."""
    depth = k
    for entry in schedule:
        if entry.start > batch_size:
            break
        depth = entry.tokens
        if batch_size <= entry.end:
            break
    return min(depth, k)


class Control(SpecModel):
    """Pods serving the same target with speculation off, to measure what speculation gains on live traffic."""

    replicas: int = Field(
        ge=0,
        le=MAX_CONTROL_REPLICAS,
        description="Pods of the target alone (no speculation), same image, resources and serving settings, behind "
        "the same Service (they get a share of the traffic and count in READY). 0: none. Changing it never "
        "restarts the speculative pods.",
    )
    min_output_tokens: int = Field(
        DEFAULT_MIN_OUTPUT_TOKENS,
        ge=1,
        le=1_000_000_000,
        description="A window compares the two groups only when each generated at least this many tokens in it. "
        "Default: 1000.",
    )


class Adaptive(SpecModel):
    """Depth shaped by load: the operator picks a per-batch-size depth and rolls it out as a new revision."""

    enabled: bool = Field(
        False,
        strict=True,
        description="Compute a numSpeculativeTokensPerBatchSize schedule from the live per-position acceptance and "
        "the measured speedup per load (with a control group) or the modelled one (without), 0 where speculation "
        "loses, and roll it out through spec.rollout like any change (the spec is not edited; the schedule and why "
        "are in status). Default: false.",
    )
    min_interval_seconds: int = Field(
        DEFAULT_ADAPTIVE_INTERVAL,
        ge=10,
        le=604_800,
        description=f"The schedule changes at most once per this many seconds. Default: {DEFAULT_ADAPTIVE_INTERVAL}.",
    )

"""``spec`` of a SpeculativeDeployment: what to serve, how to speculate, and when to roll back.

Every bound and cross-field rule is declared here once. Field constraints become OpenAPI bounds and the
``x-kubernetes-validations`` entries become CEL rules in the CRD (the API server refuses a bad object at
``kubectl apply``); the ``model_validator`` methods apply the same rules when Python parses an object, so
``specdeploy render`` refuses exactly what the cluster would refuse, with messages that name the field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from specdeploy.api.base import SpecModel, unset_if_default
from specdeploy.api.constants import DEFAULT_VALIDATOR_IMAGE
from specdeploy.api.ecosystem import Disruption, Routing
from specdeploy.api.payoff import (
    MAX_SCHEDULE_RANGES,
    SCHEDULE_DEPTH_MESSAGE,
    SCHEDULE_RULES,
    Adaptive,
    BatchSizeRange,
    Control,
    check_schedule,
)
from specdeploy.api.rollout import Rollout
from specdeploy.api.serving import DEFAULT_GPUS_PER_NODE, Serving
from specdeploy.api.types import URL_PATTERN, Image, ModelId, ModelRevision, QuantizationName

MAX_TENSOR_PARALLEL = 64
MAX_PIPELINE_PARALLEL = 16
MAX_SPECULATIVE_TOKENS = 16


class Method(StrEnum):
    """vLLM speculative decoding methods (the ``method`` key of ``--speculative-config``)."""

    DRAFT_MODEL = "draft_model"
    EAGLE = "eagle"
    EAGLE3 = "eagle3"
    NGRAM = "ngram"
    MTP = "mtp"
    MEDUSA = "medusa"
    MLP_SPECULATOR = "mlp_speculator"
    NGRAM_GPU = "ngram_gpu"
    SUFFIX = "suffix"


# Model-free methods: n-gram lookup in the prompt (on the CPU, or on the GPU for ngram_gpu) and suffix decoding
# (suffix trees over the prompt and past responses; vLLM needs the arctic-inference package for it). There is no
# draft model to name.
METHODS_WITHOUT_DRAFT = frozenset({Method.NGRAM, Method.NGRAM_GPU, Method.SUFFIX})
NGRAM_METHODS = frozenset({Method.NGRAM, Method.NGRAM_GPU})
#: vLLM 0.32 suffix-decoding knobs (``SpeculativeConfig.suffix_decoding_*``), only for method suffix.
SUFFIX_FIELDS = (
    "suffix_decoding_max_tree_depth",
    "suffix_decoding_max_cached_requests",
    "suffix_decoding_max_spec_factor",
    "suffix_decoding_min_token_prob",
)
SUFFIX_CAMEL = (
    "suffixDecodingMaxTreeDepth",
    "suffixDecodingMaxCachedRequests",
    "suffixDecodingMaxSpecFactor",
    "suffixDecodingMinTokenProb",
)


def _ordered(methods: frozenset[Method]) -> list[str]:
    """Model-free methods first, then the others, each in declaration order (stable CRD text and messages)."""
    order = list(Method)
    return [m.value for m in sorted(methods, key=lambda m: (m not in METHODS_WITHOUT_DRAFT, order.index(m)))]


def _cel_list(methods: frozenset[Method]) -> str:
    return "[" + ", ".join(f"'{name}'" for name in _ordered(methods)) + "]"


def _words(methods: frozenset[Method]) -> str:
    names = _ordered(methods)
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


NGRAM_ONLY_MESSAGE = f"spec.speculation.promptLookupMax and promptLookupMin are only for method {_words(NGRAM_METHODS)}"
SUFFIX_ONLY_MESSAGE = "spec.speculation.suffixDecoding* fields are only for method suffix"
# MTP drafts with the target's own multi-token-prediction layers unless a separate checkpoint is named.
METHODS_WITH_OPTIONAL_DRAFT = frozenset({Method.MTP})
# vLLM's draft-model proposer refuses a draft tensor-parallel size other than the target's (V1
# DraftModelProposer: "'draft_tensor_parallel_size' and 'tensor_parallel_size' must be the same"). For the other
# methods vLLM's config accepts 1 or the target's size (SpeculativeConfig._verify_and_get_draft_tp), and the heads
# are loaded with the target's parallel config whatever the value.
METHODS_WITH_TARGET_DRAFT_TP = frozenset({Method.DRAFT_MODEL})

DEFAULT_NUM_SPECULATIVE_TOKENS = 4
# vLLM warns that k > 1 "will run multiple times of forward on same MTP layer, which may result in lower
# acceptance rate" (SpeculativeConfig, for MTP heads with one layer, as DeepSeek-V3's num_nextn_predict_layers: 1).
MTP_DEFAULT_NUM_SPECULATIVE_TOKENS = 1


HETEROGENEOUS_VOCAB_MESSAGE = (
    "spec.speculation.heterogeneousVocab is only for method draft_model (vLLM maps vocabularies only between a "
    "draft model and the target)"
)


def default_num_speculative_tokens(method: object) -> int:
    """k when the spec gives none: 1 for mtp (one MTP layer per step, as vLLM advises), 4 otherwise."""
    return MTP_DEFAULT_NUM_SPECULATIVE_TOKENS if method == Method.MTP else DEFAULT_NUM_SPECULATIVE_TOKENS


class Dtype(StrEnum):
    """Weight and activation precision (vLLM ``--dtype``)."""

    AUTO = "auto"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


class ValidationPolicy(StrEnum):
    """What a failed draft/target compatibility check does."""

    ENFORCE = "Enforce"
    WARN = "Warn"
    SKIP = "Skip"


class RollbackAction(StrEnum):
    """What the operator serves when the acceptance rate stays too low."""

    ROLLBACK_TO_LAST_GOOD = "RollbackToLastGood"
    DISABLE_SPECULATION = "DisableSpeculation"
    NONE = "None"


class MetricsSource(StrEnum):
    """Where the acceptance-rate counters are read."""

    PODS = "Pods"
    PROMETHEUS = "Prometheus"


class Target(SpecModel):
    """The model that answers requests; speculation never changes its output distribution."""

    model: ModelId = Field(
        description=(
            "Hugging Face repo id (org/name) or absolute path inside the pod (/models/name). Letters, digits, "
            "'.', '_', '-' and '/' only; no '..' segments and no leading '-'."
        )
    )
    revision: ModelRevision | None = Field(None, description="Branch, tag or commit of the model repo. Default: main.")
    tensor_parallel_size: int = Field(
        1,
        ge=1,
        le=MAX_TENSOR_PARALLEL,
        description="GPUs per replica the target is sharded over; also each pod's GPU request. Default: 1.",
    )
    pipeline_parallel_size: int | None = Field(
        None,
        ge=1,
        le=MAX_PIPELINE_PARALLEL,
        description=(
            "Pipeline stages the target's layers are split over; a replica uses tensorParallelSize x "
            "pipelineParallelSize GPUs, on several nodes (a LeaderWorkerSet group) when that exceeds "
            "spec.serving.gpusPerNode. Default: 1."
        ),
    )
    max_model_len: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="Context length in tokens (prompt plus output). Default: the model's own maximum.",
    )
    dtype: Dtype = Field(Dtype.AUTO, description="Precision of weights and activations. Default: auto.")
    quantization: QuantizationName | None = Field(
        None, description="vLLM quantization method of the target (awq, gptq, fp8, ...). Default: from the model."
    )

    # The default (1) is applied by ``pipeline_stages`` and an explicit 1 is stored as unset: the field was added
    # after revision ids were in use, and the id hashes the dumped spec (see api/revision.py), so a spec that
    # does not use pipeline parallelism keeps its id whether it writes 1 or nothing.
    _pp_default = field_validator("pipeline_parallel_size")(unset_if_default(1))

    @property
    def pipeline_stages(self) -> int:
        """``pipelineParallelSize`` with its default applied."""
        return self.pipeline_parallel_size or 1

    @property
    def gpus_per_replica(self) -> int:
        """GPUs one replica of the target uses: tensor degree times pipeline stages."""
        return self.tensor_parallel_size * self.pipeline_stages


class Draft(SpecModel):
    """The model that proposes tokens for the target to verify (a small LM, or EAGLE/Medusa/MTP heads)."""

    model: ModelId = Field(
        description="Hugging Face repo id (org/name) or absolute path inside the pod, as for spec.target.model."
    )
    revision: ModelRevision | None = Field(None, description="Branch, tag or commit of the draft repo. Default: main.")
    tensor_parallel_size: int | None = Field(
        None,
        ge=1,
        le=MAX_TENSOR_PARALLEL,
        description=(
            "vLLM's draft_tensor_parallel_size. draft_model: must equal spec.target.tensorParallelSize (vLLM's "
            "draft-model proposer refuses any other value). eagle, eagle3, mtp, medusa: 1 or the target's size; "
            "the heads are loaded with the target's parallel config either way, so this does not shard them. "
            "mlp_speculator: 1 or the target's size. Default: vLLM's, the target's size (1 for mlp_speculator)."
        ),
    )
    quantization: QuantizationName | None = Field(
        None, description="vLLM quantization method of the draft. Default: from the draft model."
    )


class Speculation(SpecModel):
    """How tokens are proposed and how many per step."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"(has(self.method) && self.method in {_cel_list(NGRAM_METHODS)}) || "
                    "(!has(self.promptLookupMax) && !has(self.promptLookupMin))",
                    "message": NGRAM_ONLY_MESSAGE,
                },
                {
                    "rule": "(has(self.method) && self.method == 'suffix') || ("
                    + " && ".join(f"!has(self.{name})" for name in SUFFIX_CAMEL)
                    + ")",
                    "message": SUFFIX_ONLY_MESSAGE,
                },
                {
                    "rule": "!has(self.promptLookupMax) || !has(self.promptLookupMin) || "
                    "self.promptLookupMin <= self.promptLookupMax",
                    "message": "spec.speculation.promptLookupMin must not exceed spec.speculation.promptLookupMax",
                },
                {
                    "rule": "!has(self.heterogeneousVocab) || !self.heterogeneousVocab || !has(self.method) || "
                    "self.method == 'draft_model'",
                    "message": HETEROGENEOUS_VOCAB_MESSAGE,
                },
                {
                    "rule": "!has(self.numSpeculativeTokensPerBatchSize) || "
                    "self.numSpeculativeTokensPerBatchSize.all(e, e.tokens <= (has(self.numSpeculativeTokens) ? "
                    f"self.numSpeculativeTokens : (has(self.method) && self.method == 'mtp' ? "
                    f"{MTP_DEFAULT_NUM_SPECULATIVE_TOKENS} : {DEFAULT_NUM_SPECULATIVE_TOKENS})))",
                    "message": SCHEDULE_DEPTH_MESSAGE,
                },
            ]
        }
    )

    method: Method = Field(
        Method.DRAFT_MODEL,
        description=(
            "draft_model (a smaller LM with the same tokenizer), eagle, eagle3, medusa, mlp_speculator (heads "
            "trained for the target), mtp (the target's multi-token-prediction layers), or a method without a "
            "draft model: ngram (prompt lookup), ngram_gpu (the same on the GPU) or suffix (suffix decoding over "
            "the prompt and past responses; the vLLM image needs the arctic-inference package). "
            "Default: draft_model. Note: vLLM 0.32's engine has no proposer for "
            "mlp_speculator (its pods fail at start-up with 'Unknown speculative decoding method')."
        ),
    )
    num_speculative_tokens: int | None = Field(
        None,
        ge=1,
        le=MAX_SPECULATIVE_TOKENS,
        description=(
            "Tokens proposed per step (k); for suffix the most per step. Higher pays off only with a high "
            "acceptance rate. Default: 4, or 1 for mtp (vLLM advises one step per MTP layer: more reruns the same "
            "layer and lowers acceptance)."
        ),
    )
    prompt_lookup_max: int | None = Field(
        None,
        ge=1,
        le=32,
        description=(
            "ngram, ngram_gpu: longest n-gram matched in the prompt. vLLM's default: "
            "spec.speculation.promptLookupMin when only that is set, else 5."
        ),
    )
    prompt_lookup_min: int | None = Field(
        None,
        ge=1,
        le=32,
        description=(
            "ngram, ngram_gpu: shortest n-gram matched in the prompt. vLLM's default: "
            "spec.speculation.promptLookupMax when only that is set, else 5."
        ),
    )
    suffix_decoding_max_tree_depth: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="suffix only: depth of the suffix trees (prefix match plus speculation length). vLLM default: 24.",
    )
    suffix_decoding_max_cached_requests: int | None = Field(
        None,
        ge=0,
        le=10_000_000,
        description="suffix only: past requests kept in the global suffix tree (FIFO eviction; 0 disables it, prompt "
        "trees are still used). vLLM default: 10000.",
    )
    suffix_decoding_max_spec_factor: float | None = Field(
        None,
        ge=0,
        le=1024,
        description="suffix only: at most this factor times the prefix match length is speculated. vLLM default: 1.0.",
    )
    suffix_decoding_min_token_prob: float | None = Field(
        None,
        ge=0,
        le=1,
        description="suffix only: only tokens with at least this estimated probability are speculated. "
        "vLLM default: 0.1.",
    )

    heterogeneous_vocab: bool | None = Field(
        None,
        strict=True,  # true or false only, as the API server's boolean type ("yes" is not coerced)
        description=(
            "draft_model only: let the draft use a different vocabulary than the target (vLLM 0.32's "
            "use_heterogeneous_vocab). vLLM then keeps only the tokens both vocabularies hold, maps the draft's "
            "proposals to the target's token ids, and drafts greedily; acceptance depends on how much the "
            "vocabularies overlap, which the validation Job reports (a differing pair passes with a warning "
            "instead of failing). Default: false (vLLM refuses a draft whose vocabulary size differs from the "
            "target's)."
        ),
    )

    # Issue 14 (api/payoff.py). The schedule is part of the revision (it changes vLLM's arguments); control and
    # adaptive are not (api/revision.py leaves them out of the hash), so they never restart the speculative pods.
    num_speculative_tokens_per_batch_size: list[BatchSizeRange] | None = Field(
        None,
        min_length=1,
        max_length=MAX_SCHEDULE_RANGES,
        description=(
            "vLLM's num_speculative_tokens_per_batch_size (dynamic speculative decoding): inclusive ranges of the "
            "engine's batch size (running requests) and the tokens proposed per step in each, 0 = no speculation "
            "there, e.g. [{start: 1, end: 4, tokens: 4}, {start: 5, end: 256, tokens: 0}]. Sorted, non-overlapping, "
            "the first starting at 1 (a gap or the tail keeps the previous range's depth, as in vLLM); tokens at "
            "most numSpeculativeTokens. With adaptive.enabled the operator's schedule replaces this one. "
            "Default: numSpeculativeTokens at every batch size."
        ),
        json_schema_extra={"x-kubernetes-validations": SCHEDULE_RULES},
    )
    control: Control | None = Field(
        None,
        description=(
            "A control group: pods of the same target and serving settings with speculation off, behind the same "
            "Service, against which the operator measures the speedup of the speculative pods per load "
            "(status.performance.speedup, speedupByLoad; spec.rollback.minSpeedup acts on it). Not part of the "
            "revision. Default: none."
        ),
    )
    adaptive: Adaptive | None = Field(
        None,
        description=(
            "Depth shaped by load: the operator computes numSpeculativeTokensPerBatchSize from live measurements "
            "and rolls it out as a new revision through spec.rollout. Not part of the revision. Default: off."
        ),
    )

    # An explicit false is stored as unset: specs that do not use it dump (and hash to a revision id) exactly as
    # before the field existed (see api/base.py).
    _heterogeneous_default = field_validator("heterogeneous_vocab")(unset_if_default(False))

    @model_validator(mode="before")
    @classmethod
    def _method_default_k(cls, data: Any) -> Any:
        # k's default depends on the method, which a schema default cannot express: the CRD has none, and the
        # parsed spec always holds the effective k (so writing the default explicitly gives the same revision).
        keys = ("numSpeculativeTokens", "num_speculative_tokens")
        if not isinstance(data, dict) or any(data.get(key) is not None for key in keys):
            return data
        rest = {key: value for key, value in data.items() if key not in keys}
        return {**rest, "numSpeculativeTokens": default_num_speculative_tokens(data.get("method", Method.DRAFT_MODEL))}

    @property
    def k(self) -> int:
        """The effective number of speculative tokens (the method's default when the spec gives none)."""
        if self.num_speculative_tokens is not None:
            return self.num_speculative_tokens
        return default_num_speculative_tokens(self.method)

    @model_validator(mode="after")
    def _ngram_fields(self) -> Speculation:
        lookup_set = self.prompt_lookup_max is not None or self.prompt_lookup_min is not None
        if self.method not in NGRAM_METHODS and lookup_set:
            raise ValueError(NGRAM_ONLY_MESSAGE)
        if self.method != Method.SUFFIX and any(getattr(self, name) is not None for name in SUFFIX_FIELDS):
            raise ValueError(SUFFIX_ONLY_MESSAGE)
        if (
            self.prompt_lookup_max is not None
            and self.prompt_lookup_min is not None
            and self.prompt_lookup_min > self.prompt_lookup_max
        ):
            raise ValueError("spec.speculation.promptLookupMin must not exceed spec.speculation.promptLookupMax")
        if self.heterogeneous_vocab and self.method != Method.DRAFT_MODEL:
            raise ValueError(HETEROGENEOUS_VOCAB_MESSAGE)
        if self.num_speculative_tokens_per_batch_size is not None:
            check_schedule(self.num_speculative_tokens_per_batch_size, self.k)
        return self


class Validation(SpecModel):
    """The draft/target compatibility check that runs as a Job before a revision is served."""

    policy: ValidationPolicy = Field(
        ValidationPolicy.ENFORCE,
        description=(
            "Enforce: an incompatible draft blocks the rollout. Warn: report and serve anyway. Skip: run no "
            "check. Default: Enforce."
        ),
    )
    image: Image | None = Field(
        None,
        description=(
            "Image of the validation Job. Default: the operator's validator image (its SPECDEPLOY_VALIDATOR_IMAGE, "
            f"set by the Helm chart), else {DEFAULT_VALIDATOR_IMAGE}."
        ),
    )
    active_deadline_seconds: int = Field(
        600, ge=30, le=86_400, description="The Job is stopped (and the check fails) after this long. Default: 600."
    )
    gpu_memory_gib: int | None = Field(
        None,
        alias="gpuMemoryGiB",
        ge=1,
        le=4096,
        description="Memory of one GPU in GiB; enables the check that target and draft weights fit. Default: off.",
    )


class Rollback(SpecModel):
    """When a low draft acceptance rate makes the operator stop serving a revision."""

    min_acceptance_rate: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Accepted draft tokens / proposed draft tokens below this is a bad window. Default: 0.5.",
    )
    window_seconds: int = Field(
        60, ge=10, le=86_400, description="Length of one measurement window, in seconds. Default: 60."
    )
    consecutive_windows: int = Field(
        3, ge=1, le=100, description="Bad windows in a row that trigger the action. Default: 3."
    )
    min_draft_tokens: int = Field(
        1000,
        ge=0,
        le=1_000_000_000_000,
        description="A window with fewer proposed draft tokens is inconclusive (no verdict). Default: 1000.",
    )
    warmup_seconds: int = Field(
        120,
        ge=0,
        le=86_400,
        description="Windows are not judged until a revision has been ready this long. Default: 120.",
    )
    action: RollbackAction = Field(
        RollbackAction.ROLLBACK_TO_LAST_GOOD,
        description=(
            "RollbackToLastGood: serve the last stable revision (or, without one, the target alone). "
            "DisableSpeculation: serve the target alone. None: only report. Default: RollbackToLastGood."
        ),
    )
    stable_after_seconds: int = Field(
        300,
        ge=0,
        le=604_800,
        description="A revision healthy for this long becomes stable: the target of later rollbacks. Default: 300.",
    )
    min_speedup: float | None = Field(
        None,
        ge=0.01,
        le=10,
        description=(
            "Needs spec.speculation.control. The speculative pods' measured speedup over the control pods (their "
            "time per output token divided by ours, at the same load) below this in consecutiveWindows qualifying "
            "windows in a row takes the action, with reason SlowerThanControl. 1.0: speculation must be at least "
            "as fast as none; 0.9 tolerates 10% slower. Default: unset (speed is only reported)."
        ),
        # The API server lets an integer 0 through `minimum: 0.01` on a number field (seen on 1.36): CEL refuses it.
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self >= 0.01", "message": "spec.rollback.minSpeedup must be at least 0.01"}
            ]
        },
    )


class Prometheus(SpecModel):
    """A Prometheus server that scrapes the vLLM pods."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=URL_PATTERN,
        description="Base URL, e.g. http://prometheus.monitoring:9090.",
    )


class Metrics(SpecModel):
    """Where and how often the acceptance-rate counters are read."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.source) || self.source != 'Prometheus' || has(self.prometheus)",
                    "message": "spec.metrics.prometheus.url is required when spec.metrics.source is Prometheus",
                }
            ]
        }
    )

    source: MetricsSource = Field(
        MetricsSource.PODS,
        description="Pods: the operator scrapes each ready pod's /metrics. Prometheus: query spec.metrics.prometheus. "
        "Default: Pods.",
    )
    scrape_interval_seconds: int = Field(
        15, ge=1, le=3600, description="Seconds between two reads of the counters. Default: 15."
    )
    timeout_seconds: int = Field(5, ge=1, le=300, description="Timeout of one scrape or query. Default: 5.")
    prometheus: Prometheus | None = Field(None, description="Required when source is Prometheus.")

    @model_validator(mode="after")
    def _prometheus_url(self) -> Metrics:
        if self.source == MetricsSource.PROMETHEUS and self.prometheus is None:
            raise ValueError("spec.metrics.prometheus.url is required when spec.metrics.source is Prometheus")
        return self


DRAFT_REQUIRED_MESSAGE = (
    f"spec.draft is required unless spec.speculation.method is {_words(METHODS_WITHOUT_DRAFT | {Method.MTP})}"
)
DRAFT_FORBIDDEN_MESSAGE = (
    f"spec.draft must not be set when spec.speculation.method is {_words(METHODS_WITHOUT_DRAFT)} (these methods "
    "propose tokens from the prompt and past text, not from a model)"
)
DRAFT_TP_MESSAGE = "spec.draft.tensorParallelSize must be 1 or equal to spec.target.tensorParallelSize"
DRAFT_MODEL_TP_MESSAGE = (
    "spec.draft.tensorParallelSize must equal spec.target.tensorParallelSize for method draft_model (vLLM's "
    "draft-model proposer refuses to start with any other value): leave it out or set the target's value"
)
GPUS_PER_NODE_MESSAGE = (
    "spec.target.tensorParallelSize x spec.target.pipelineParallelSize must be a multiple of "
    "spec.serving.gpusPerNode when it exceeds it (a multi-node replica is a group of whole nodes)"
)
MIN_SPEEDUP_MESSAGE = (
    "spec.rollback.minSpeedup needs spec.speculation.control (the speedup is measured against the control pods)"
)
WINDOW_MESSAGE = (
    "spec.rollback.windowSeconds must be at least spec.metrics.scrapeIntervalSeconds (a window needs a scrape)"
)


GPUS_PER_REPLICA_CEL = (
    "(has(self.target.tensorParallelSize) ? self.target.tensorParallelSize : 1) * "
    "(has(self.target.pipelineParallelSize) ? self.target.pipelineParallelSize : 1)"
)
GPUS_PER_NODE_CEL = (
    "(has(self.serving) && has(self.serving.gpusPerNode) ? self.serving.gpusPerNode : "
    + str(DEFAULT_GPUS_PER_NODE)
    + ")"
)


class SpeculativeDeploymentSpec(SpecModel):
    """Desired state: a target model served by vLLM with speculative decoding, checked and watched."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.draft) || (has(self.speculation) && has(self.speculation.method) && "
                    f"self.speculation.method in {_cel_list(METHODS_WITHOUT_DRAFT | {Method.MTP})})",
                    "message": DRAFT_REQUIRED_MESSAGE,
                },
                {
                    "rule": "!has(self.draft) || !has(self.speculation) || !has(self.speculation.method) || "
                    f"!(self.speculation.method in {_cel_list(METHODS_WITHOUT_DRAFT)})",
                    "message": DRAFT_FORBIDDEN_MESSAGE,
                },
                {
                    "rule": "!has(self.draft) || !has(self.draft.tensorParallelSize) || "
                    "self.draft.tensorParallelSize == 1 || self.draft.tensorParallelSize == "
                    "(has(self.target.tensorParallelSize) ? self.target.tensorParallelSize : 1)",
                    "message": DRAFT_TP_MESSAGE,
                },
                {
                    "rule": "!has(self.draft) || !has(self.draft.tensorParallelSize) || "
                    "(has(self.speculation) && has(self.speculation.method) && "
                    "self.speculation.method != 'draft_model') || self.draft.tensorParallelSize == "
                    "(has(self.target.tensorParallelSize) ? self.target.tensorParallelSize : 1)",
                    "message": DRAFT_MODEL_TP_MESSAGE,
                },
                {
                    "rule": GPUS_PER_REPLICA_CEL + " <= " + GPUS_PER_NODE_CEL + " || "
                    "(" + GPUS_PER_REPLICA_CEL + ") % " + GPUS_PER_NODE_CEL + " == 0",
                    "message": GPUS_PER_NODE_MESSAGE,
                },
                {
                    "rule": "!has(self.rollback) || !has(self.metrics) || !has(self.rollback.windowSeconds) || "
                    "!has(self.metrics.scrapeIntervalSeconds) || "
                    "self.rollback.windowSeconds >= self.metrics.scrapeIntervalSeconds",
                    "message": WINDOW_MESSAGE,
                },
                {
                    "rule": "!has(self.rollback) || !has(self.rollback.minSpeedup) || "
                    "(has(self.speculation) && has(self.speculation.control))",
                    "message": MIN_SPEEDUP_MESSAGE,
                },
            ]
        }
    )

    target: Target = Field(description="The model that answers requests.")
    draft: Draft | None = Field(
        None,
        description="The model that proposes tokens. Required unless speculation.method is ngram, ngram_gpu or "
        "suffix (forbidden there) or mtp (optional there).",
    )
    speculation: Speculation = Field(
        default_factory=Speculation,
        description="Speculative decoding method and depth.",
        json_schema_extra={"default": {}},
    )
    replicas: int = Field(1, ge=0, le=1000, description="Number of vLLM pods. Default: 1.")
    serving: Serving = Field(
        default_factory=Serving,
        description="Image, port, resources, scheduling and secrets of the vLLM pods.",
        json_schema_extra={"default": {}},
    )
    validation: Validation = Field(
        default_factory=Validation,
        description="Draft/target compatibility check run before a revision is served.",
        json_schema_extra={"default": {}},
    )
    rollback: Rollback = Field(
        default_factory=Rollback,
        description="Automatic rollback when the draft acceptance rate stays low.",
        json_schema_extra={"default": {}},
    )
    metrics: Metrics = Field(
        default_factory=Metrics,
        description="Where and how often the acceptance rate is measured.",
        json_schema_extra={"default": {}},
    )
    # Issue 13: how a new revision replaces the serving one (api/rollout.py); not part of the revision.
    rollout: Rollout = Field(
        default_factory=Rollout,
        description="How a change of revision reaches the pods: judged beside the serving one (Canary) or all at once.",
        json_schema_extra={"default": {}},
    )
    # Issue 15: PodDisruptionBudget and InferencePool settings (api/ecosystem.py); not part of the revision.
    disruption: Disruption = Field(
        default_factory=Disruption,
        description="PodDisruptionBudget of the vLLM pods, kept while replicas is 2 or more.",
        json_schema_extra={"default": {}},
    )
    routing: Routing = Field(
        default_factory=Routing,
        description="Gateway API Inference Extension routing (an InferencePool over the vLLM pods).",
        json_schema_extra={"default": {}},
    )

    @model_validator(mode="after")
    def _cross_field(self) -> SpeculativeDeploymentSpec:
        method = self.speculation.method
        if self.draft is None and method not in METHODS_WITHOUT_DRAFT | METHODS_WITH_OPTIONAL_DRAFT:
            raise ValueError(DRAFT_REQUIRED_MESSAGE)
        if self.draft is not None and method in METHODS_WITHOUT_DRAFT:
            raise ValueError(DRAFT_FORBIDDEN_MESSAGE)
        draft_tp = self.draft.tensor_parallel_size if self.draft is not None else None
        if draft_tp is not None and draft_tp not in (1, self.target.tensor_parallel_size):
            raise ValueError(DRAFT_TP_MESSAGE)
        target_tp = self.target.tensor_parallel_size
        if draft_tp is not None and method in METHODS_WITH_TARGET_DRAFT_TP and draft_tp != target_tp:
            raise ValueError(DRAFT_MODEL_TP_MESSAGE)
        gpus, per_node = self.target.gpus_per_replica, self.serving.gpus_per_node_or_default
        if gpus > per_node and gpus % per_node != 0:
            raise ValueError(GPUS_PER_NODE_MESSAGE)
        if self.rollback.window_seconds < self.metrics.scrape_interval_seconds:
            raise ValueError(WINDOW_MESSAGE)
        if self.rollback.min_speedup is not None and self.speculation.control is None:
            raise ValueError(MIN_SPEEDUP_MESSAGE)
        return self

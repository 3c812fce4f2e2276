"""Specs the API must refuse or accept, as data: unit tests run them through pydantic, and an integration test can
apply the same objects to a real API server (CRD schema + CEL) and expect the same verdict and field name.

Each invalid case carries the text that the refusal must contain: the field path for bound, enum and pattern
errors, or the rule's message for cross-field (CEL) rules. The API server reports schema errors as
``spec.target.tensorParallelSize: Invalid value: ...`` and CEL failures with the rule's message, so the same
text identifies the field in both places.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

BASE: dict[str, Any] = {"target": {"model": "org/target"}, "draft": {"model": "org/draft"}}


def spec(**sections: Any) -> dict[str, Any]:
    """BASE with sections merged in (a dict merges into the section, None removes it)."""
    raw = copy.deepcopy(BASE)
    for key, value in sections.items():
        if value is None:
            raw.pop(key, None)
        elif isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


class Case(NamedTuple):
    id: str
    spec: dict[str, Any]
    expect: str  # text the refusal names (field path or rule message)


INVALID: list[Case] = [
    Case("missing-target", {"draft": {"model": "org/draft"}}, "spec.target"),
    Case("empty-model", spec(target={"model": ""}), "spec.target.model"),
    Case("shell-in-model", spec(target={"model": "org/x;reboot"}), "spec.target.model"),
    Case("dotdot-in-draft", spec(draft={"model": "org/../etc"}), "spec.draft.model"),
    Case("flag-as-model", spec(target={"model": "--trust-remote-code"}), "spec.target.model"),
    Case("tp-zero", spec(target={"tensorParallelSize": 0}), "spec.target.tensorParallelSize"),
    Case("tp-too-big", spec(target={"tensorParallelSize": 65}), "spec.target.tensorParallelSize"),
    Case("dtype-enum", spec(target={"dtype": "fp8"}), "spec.target.dtype"),
    Case("k-zero", spec(speculation={"numSpeculativeTokens": 0}), "spec.speculation.numSpeculativeTokens"),
    Case("k-too-big", spec(speculation={"numSpeculativeTokens": 17}), "spec.speculation.numSpeculativeTokens"),
    Case("method-enum", spec(speculation={"method": "lookahead"}), "spec.speculation.method"),
    Case("replicas-negative", spec(replicas=-1), "spec.replicas"),
    Case("rate-above-one", spec(rollback={"minAcceptanceRate": 1.5}), "spec.rollback.minAcceptanceRate"),
    Case("window-too-short", spec(rollback={"windowSeconds": 5}), "spec.rollback.windowSeconds"),
    Case("windows-zero", spec(rollback={"consecutiveWindows": 0}), "spec.rollback.consecutiveWindows"),
    Case("action-enum", spec(rollback={"action": "Delete"}), "spec.rollback.action"),
    Case("policy-enum", spec(validation={"policy": "Strict"}), "spec.validation.policy"),
    Case("port-zero", spec(serving={"port": 0}), "spec.serving.port"),
    Case("gpu-util-zero", spec(serving={"gpuMemoryUtilization": 0}), "spec.serving.gpuMemoryUtilization"),
    Case("shm-not-quantity", spec(serving={"shmSize": "lots"}), "spec.serving.shmSize"),
    Case("scrape-zero", spec(metrics={"scrapeIntervalSeconds": 0}), "spec.metrics.scrapeIntervalSeconds"),
    Case(
        "draft-missing",
        spec(draft=None),
        "spec.draft is required unless spec.speculation.method is ngram, ngram_gpu, suffix or mtp",
    ),
    Case(
        "draft-missing-eagle3",
        spec(draft=None, speculation={"method": "eagle3"}),
        "spec.draft is required unless spec.speculation.method is ngram, ngram_gpu, suffix or mtp",
    ),
    Case(
        "draft-with-ngram",
        spec(speculation={"method": "ngram"}),
        "spec.draft must not be set when spec.speculation.method is ngram",
    ),
    Case(
        "draft-with-suffix",
        spec(speculation={"method": "suffix"}),
        "spec.draft must not be set when spec.speculation.method is ngram, ngram_gpu or suffix",
    ),
    Case(
        "suffix-knob-without-suffix",
        spec(draft=None, speculation={"method": "ngram", "suffixDecodingMaxTreeDepth": 8}),
        "spec.speculation.suffixDecoding* fields are only for method suffix",
    ),
    Case(
        "suffix-tree-depth-zero",
        spec(draft=None, speculation={"method": "suffix", "suffixDecodingMaxTreeDepth": 0}),
        "spec.speculation.suffixDecodingMaxTreeDepth",
    ),
    Case(
        "suffix-cached-requests-negative",
        spec(draft=None, speculation={"method": "suffix", "suffixDecodingMaxCachedRequests": -1}),
        "spec.speculation.suffixDecodingMaxCachedRequests",
    ),
    Case(
        "suffix-spec-factor-negative",
        spec(draft=None, speculation={"method": "suffix", "suffixDecodingMaxSpecFactor": -0.5}),
        "spec.speculation.suffixDecodingMaxSpecFactor",
    ),
    Case(
        "suffix-min-token-prob-above-one",
        spec(draft=None, speculation={"method": "suffix", "suffixDecodingMinTokenProb": 1.5}),
        "spec.speculation.suffixDecodingMinTokenProb",
    ),
    Case(
        "lookup-without-ngram",
        spec(speculation={"promptLookupMax": 3}),
        "spec.speculation.promptLookupMax and promptLookupMin are only for method ngram",
    ),
    Case(
        "lookup-min-above-max",
        spec(draft=None, speculation={"method": "ngram", "promptLookupMax": 2, "promptLookupMin": 4}),
        "spec.speculation.promptLookupMin must not exceed spec.speculation.promptLookupMax",
    ),
    Case(
        "heterogeneous-vocab-eagle3",
        spec(speculation={"method": "eagle3", "heterogeneousVocab": True}),
        "spec.speculation.heterogeneousVocab is only for method draft_model",
    ),
    Case(
        "heterogeneous-vocab-mtp",
        spec(draft=None, speculation={"method": "mtp", "heterogeneousVocab": True}),
        "spec.speculation.heterogeneousVocab is only for method draft_model",
    ),
    Case(
        "heterogeneous-vocab-not-bool",
        spec(speculation={"heterogeneousVocab": "yes"}),
        "spec.speculation.heterogeneousVocab",
    ),
    Case(
        "draft-tp-mismatch",
        spec(target={"tensorParallelSize": 4}, draft={"tensorParallelSize": 2}),
        "spec.draft.tensorParallelSize must be 1 or equal to spec.target.tensorParallelSize",
    ),
    Case(
        "draft-model-tp-one",
        spec(target={"tensorParallelSize": 8}, draft={"tensorParallelSize": 1}),
        "spec.draft.tensorParallelSize must equal spec.target.tensorParallelSize for method draft_model",
    ),
    Case(
        "prometheus-without-url",
        spec(metrics={"source": "Prometheus"}),
        "spec.metrics.prometheus.url is required when spec.metrics.source is Prometheus",
    ),
    Case(
        "window-shorter-than-scrape",
        spec(rollback={"windowSeconds": 10}, metrics={"scrapeIntervalSeconds": 30}),
        "spec.rollback.windowSeconds must be at least spec.metrics.scrapeIntervalSeconds",
    ),
    Case(
        "extra-args-model",
        spec(serving={"extraArgs": ["--model", "other/model"]}),
        "spec.serving.extraArgs must not set --model",
    ),
    Case(
        "extra-args-spec-config-dotted",
        spec(serving={"extraArgs": ["--speculative_config.method", "ngram"]}),
        "spec.serving.extraArgs must not set --speculative-config",
    ),
    Case(
        "extra-args-abbreviated-port",
        spec(serving={"extraArgs": ["--po=9000"]}),
        "spec.serving.extraArgs must not set --port",
    ),
    Case(
        "extra-args-short-tp",
        spec(serving={"extraArgs": ["-tp", "8"]}),
        "spec.serving.extraArgs must not set -tp",
    ),
    Case(
        "env-literal-token",
        spec(serving={"env": [{"name": "HF_TOKEN", "value": "hf_abc"}]}),
        "spec.serving.env must not set HF_TOKEN",
    ),
    Case(
        "env-value-and-value-from",
        spec(serving={"env": [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}),
        "set value or valueFrom, not both",
    ),
    Case(
        "annotation-key-too-long",
        spec(serving={"podAnnotations": {"example.com/" + "k" * 64: "v"}}),
        "spec.serving.podAnnotations",
    ),
    Case(
        "affinity-unknown-operator",
        spec(
            serving={
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Has"}]}]
                        }
                    }
                }
            }
        ),
        "spec.serving.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].operator",
    ),
    Case("pp-zero", spec(target={"pipelineParallelSize": 0}), "spec.target.pipelineParallelSize"),
    Case("pp-too-big", spec(target={"pipelineParallelSize": 17}), "spec.target.pipelineParallelSize"),
    Case("gpus-per-node-zero", spec(serving={"gpusPerNode": 0}), "spec.serving.gpusPerNode"),
    Case("gpus-per-node-too-big", spec(serving={"gpusPerNode": 17}), "spec.serving.gpusPerNode"),
    Case(
        "multi-node-uneven",
        spec(target={"tensorParallelSize": 4, "pipelineParallelSize": 3}),
        "must be a multiple of spec.serving.gpusPerNode",
    ),
    Case(
        "multi-node-uneven-gpus-per-node",
        spec(target={"tensorParallelSize": 8, "pipelineParallelSize": 2}, serving={"gpusPerNode": 6}),
        "must be a multiple of spec.serving.gpusPerNode",
    ),
    Case("extra-args-nnodes", spec(serving={"extraArgs": ["--nnodes", "2"]}), "spec.serving.extraArgs"),
    Case("extra-args-headless", spec(serving={"extraArgs": ["--headless"]}), "spec.serving.extraArgs"),
    Case("extra-args-master", spec(serving={"extraArgs": ["--master-addr=x"]}), "spec.serving.extraArgs"),
    # Issue 14: vLLM 0.32's own num_speculative_tokens_per_batch_size rules, the control group, minSpeedup.
    Case(
        "schedule-not-from-one",
        spec(speculation={"numSpeculativeTokensPerBatchSize": [{"start": 2, "end": 8, "tokens": 2}]}),
        "the first range must start at 1",
    ),
    Case(
        "schedule-overlap",
        spec(
            speculation={
                "numSpeculativeTokensPerBatchSize": [
                    {"start": 1, "end": 4, "tokens": 4},
                    {"start": 4, "end": 16, "tokens": 2},
                ]
            }
        ),
        "ranges must be sorted by start and must not overlap",
    ),
    Case(
        "schedule-unsorted",
        spec(
            speculation={
                "numSpeculativeTokensPerBatchSize": [
                    {"start": 1, "end": 4, "tokens": 4},
                    {"start": 17, "end": 32, "tokens": 0},
                    {"start": 5, "end": 16, "tokens": 2},
                ]
            }
        ),
        "ranges must be sorted by start and must not overlap",
    ),
    Case(
        "schedule-start-after-end",
        spec(
            speculation={
                "numSpeculativeTokensPerBatchSize": [
                    {"start": 1, "end": 1, "tokens": 4},
                    {"start": 9, "end": 5, "tokens": 0},
                ]
            }
        ),
        "each range's start must not exceed its end",
    ),
    Case(
        "schedule-negative-depth",
        spec(speculation={"numSpeculativeTokensPerBatchSize": [{"start": 1, "end": 8, "tokens": -1}]}),
        "spec.speculation.numSpeculativeTokensPerBatchSize[0].tokens",
    ),
    Case(
        "schedule-deeper-than-k",
        spec(
            speculation={
                "numSpeculativeTokens": 3,
                "numSpeculativeTokensPerBatchSize": [{"start": 1, "end": 8, "tokens": 4}],
            }
        ),
        "a range's tokens must not exceed spec.speculation.numSpeculativeTokens",
    ),
    Case(
        "schedule-deeper-than-default-k",
        spec(speculation={"numSpeculativeTokensPerBatchSize": [{"start": 1, "end": 8, "tokens": 5}]}),
        "a range's tokens must not exceed spec.speculation.numSpeculativeTokens",
    ),
    Case(
        "schedule-empty",
        spec(speculation={"numSpeculativeTokensPerBatchSize": []}),
        "spec.speculation.numSpeculativeTokensPerBatchSize",
    ),
    Case(
        "control-replicas-too-many",
        spec(speculation={"control": {"replicas": 101}}),
        "spec.speculation.control.replicas",
    ),
    Case("control-without-replicas", spec(speculation={"control": {}}), "spec.speculation.control.replicas"),
    Case(
        "min-speedup-without-control",
        spec(rollback={"minSpeedup": 1.0}),
        "spec.rollback.minSpeedup needs spec.speculation.control",
    ),
    Case(
        "min-speedup-zero",
        spec(rollback={"minSpeedup": 0}, speculation={"control": {"replicas": 1}}),
        "spec.rollback.minSpeedup",
    ),
    Case(
        "adaptive-interval-too-short",
        spec(speculation={"adaptive": {"enabled": True, "minIntervalSeconds": 5}}),
        "spec.speculation.adaptive.minIntervalSeconds",
    ),
]

VALID: list[Case] = [
    Case("minimal", BASE, ""),
    Case("ngram-no-draft", spec(draft=None, speculation={"method": "ngram", "promptLookupMax": 4}), ""),
    Case("ngram-gpu-no-draft", spec(draft=None, speculation={"method": "ngram_gpu", "promptLookupMin": 2}), ""),
    Case(
        "suffix-no-draft",
        spec(
            draft=None,
            speculation={
                "method": "suffix",
                "numSpeculativeTokens": 16,
                "suffixDecodingMaxTreeDepth": 24,
                "suffixDecodingMaxCachedRequests": 0,
                "suffixDecodingMaxSpecFactor": 1.5,
                "suffixDecodingMinTokenProb": 0.1,
            },
        ),
        "",
    ),
    Case("mtp-no-draft", spec(draft=None, speculation={"method": "mtp", "numSpeculativeTokens": 1}), ""),
    Case("heterogeneous-vocab-draft-model", spec(speculation={"heterogeneousVocab": True}), ""),
    Case(
        "heterogeneous-vocab-default-method",
        spec(speculation={"heterogeneousVocab": True, "numSpeculativeTokens": 3}),
        "",
    ),
    Case("heterogeneous-vocab-off-eagle", spec(speculation={"method": "eagle", "heterogeneousVocab": False}), ""),
    Case("local-paths", spec(target={"model": "/models/target"}, draft={"model": "/models/draft"}), ""),
    Case(
        "draft-tp-one-eagle",
        spec(target={"tensorParallelSize": 8}, draft={"tensorParallelSize": 1}, speculation={"method": "eagle"}),
        "",
    ),
    Case(
        "prometheus",
        spec(metrics={"source": "Prometheus", "prometheus": {"url": "http://prometheus.monitoring:9090"}}),
        "",
    ),
    Case(
        "extra-args-not-owned",
        spec(serving={"extraArgs": ["--max-num-seqs", "64", "--enable-prefix-caching", "--seed", "-1", "-O3"]}),
        "",
    ),
    Case(
        "env-from-secret",
        spec(serving={"env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}),
        "",
    ),
    Case("pp-two-on-one-node", spec(target={"tensorParallelSize": 2, "pipelineParallelSize": 2}), ""),
    Case("tp8-pp2-two-nodes", spec(target={"tensorParallelSize": 8, "pipelineParallelSize": 2}), ""),
    Case(
        "tp4-pp3-four-gpu-nodes",
        spec(target={"tensorParallelSize": 4, "pipelineParallelSize": 3}, serving={"gpusPerNode": 4}),
        "",
    ),
    Case("tp12-under-sixteen-gpu-node", spec(target={"tensorParallelSize": 12}, serving={"gpusPerNode": 16}), ""),
    Case(
        "quantities", spec(serving={"shmSize": 2147483648, "resources": {"requests": {"cpu": 8, "memory": "64Gi"}}}), ""
    ),
    Case(
        "schedule-with-gap-and-zero",
        spec(
            speculation={
                "numSpeculativeTokens": 5,
                "numSpeculativeTokensPerBatchSize": [
                    {"start": 1, "end": 4, "tokens": 5},
                    {"start": 8, "end": 16, "tokens": 2},
                    {"start": 17, "end": 256, "tokens": 0},
                ],
            }
        ),
        "",
    ),
    Case(
        "schedule-mtp-default-k",
        spec(
            draft=None,
            speculation={"method": "mtp", "numSpeculativeTokensPerBatchSize": [{"start": 1, "end": 2, "tokens": 1}]},
        ),
        "",
    ),
    Case(
        "control-min-speedup-adaptive",
        spec(
            speculation={
                "control": {"replicas": 1, "minOutputTokens": 200},
                "adaptive": {"enabled": True, "minIntervalSeconds": 60},
            },
            rollback={"minSpeedup": 1.0},
        ),
        "",
    ),
    Case("control-zero-replicas", spec(speculation={"control": {"replicas": 0}}), ""),
]

"""The vLLM server command line for a spec: the one place that knows vLLM's flags.

Each value is its own argv item and the container runs no shell, so nothing in the spec is ever parsed as
shell syntax. Every flag used here exists in vLLM 0.32's ``serve`` options (a unit test checks them against
the captured option list). The command is ``vllm serve MODEL``: the ``python3 -m
vllm.entrypoints.openai.api_server`` module is deprecated since vLLM 0.29 and warns at every start. The model is
the positional argument (vLLM warns about ``--model`` under ``serve``); a model id can never start with "-"
(``api.types.MODEL_PATTERN``), so it is never read as an option.
"""

from __future__ import annotations

import json
from typing import Any, Final

from specdeploy.api.spec import NGRAM_METHODS, SUFFIX_FIELDS, Method, SpeculativeDeploymentSpec

VLLM_COMMAND: Final = ("vllm", "serve")
LISTEN_HOST: Final = "0.0.0.0"  # all interfaces, so probes, the Service and `kubectl port-forward` all reach it  # noqa: S104


def served_model_name(spec: SpeculativeDeploymentSpec) -> str:
    """The name clients put in the API's ``model`` field (and vLLM's ``model_name`` metrics label)."""
    return spec.serving.served_model_name or spec.target.model


def speculative_config(spec: SpeculativeDeploymentSpec) -> dict[str, Any]:
    """The ``--speculative-config`` object (vLLM ``SpeculativeConfig`` keys), always with an explicit method.

    vLLM guesses the method from the draft's name or config when ``method`` is missing, and refuses drafts it
    does not recognise, so the method is always written out.
    """
    speculation = spec.speculation
    config: dict[str, Any] = {"method": speculation.method.value}
    draft = spec.draft
    if draft is not None:
        config["model"] = draft.model
    config["num_speculative_tokens"] = speculation.k
    if draft is None and speculation.method == Method.MTP and spec.target.revision is not None:
        # MTP without a draft loads the target's own MTP layers, but vLLM builds that draft config with the
        # speculative config's revision (default: none, the repo's main branch), not the target's.
        config["revision"] = spec.target.revision
    if draft is not None:
        if draft.tensor_parallel_size is not None:
            config["draft_tensor_parallel_size"] = draft.tensor_parallel_size
        if draft.revision is not None:
            config["revision"] = draft.revision
        if draft.quantization is not None:
            config["quantization"] = draft.quantization
    if speculation.heterogeneous_vocab:
        # Different vocabularies (draft_model only, greedy drafting: the spec's rules and vLLM's own both hold).
        config["use_heterogeneous_vocab"] = True
    if speculation.method in NGRAM_METHODS:
        if speculation.prompt_lookup_max is not None:
            config["prompt_lookup_max"] = speculation.prompt_lookup_max
        if speculation.prompt_lookup_min is not None:
            config["prompt_lookup_min"] = speculation.prompt_lookup_min
    if speculation.num_speculative_tokens_per_batch_size is not None:
        # vLLM 0.32 dynamic speculative decoding: [[start, end, tokens], ...] (validated by api/payoff.py).
        schedule = speculation.num_speculative_tokens_per_batch_size
        config["num_speculative_tokens_per_batch_size"] = [entry.as_vllm() for entry in schedule]
    if speculation.method == Method.SUFFIX:
        for name in SUFFIX_FIELDS:  # vLLM's own key names; unset knobs keep vLLM's defaults
            value = getattr(speculation, name)
            if value is not None:
                config[name] = value
    return config


def vllm_args(spec: SpeculativeDeploymentSpec, *, speculation_enabled: bool = True) -> list[str]:
    """Arguments after ``VLLM_COMMAND``, the model first; without ``--speculative-config`` when speculation is off."""
    target, serving = spec.target, spec.serving
    args = [target.model]
    if target.revision is not None:
        args += ["--revision", target.revision]
    args += ["--tensor-parallel-size", str(target.tensor_parallel_size)]
    if target.pipeline_stages > 1:
        args += ["--pipeline-parallel-size", str(target.pipeline_stages)]
    if target.max_model_len is not None:
        args += ["--max-model-len", str(target.max_model_len)]
    args += ["--dtype", target.dtype.value]
    if target.quantization is not None:
        args += ["--quantization", target.quantization]
    args += ["--served-model-name", served_model_name(spec)]
    args += ["--host", LISTEN_HOST, "--port", str(serving.port)]
    if serving.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", repr(serving.gpu_memory_utilization)]
    if speculation_enabled:
        args += ["--speculative-config", json.dumps(speculative_config(spec), separators=(",", ":"))]
    args += list(serving.extra_args)
    return args

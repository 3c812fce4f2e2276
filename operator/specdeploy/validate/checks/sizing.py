"""Checks ``parameter_ratio`` and ``memory``, from parameter estimates built on config shapes.

A draft earns its keep between roughly 1:20 and 1:3 of the target (1:10-1:5 is typical): smaller ones guess
badly, bigger ones cost nearly as much as the target. Memory is where deployments fail after minutes of
loading: the draft's weights and its own KV cache come on top of the target's, per GPU.
"""

from __future__ import annotations

from typing import Any

from specdeploy.validate.checks.multinode import last_stage_layers, nodes, target_weight_share
from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.methods import HEADS
from specdeploy.validate.models import Model
from specdeploy.validate.report import Check
from specdeploy.validate.sizing import GiB, estimate_parameters, kv_cache_bytes_per_gpu, weight_bytes_per_gpu

RATIO_MIN = 1 / 20
RATIO_MAX = 1 / 3


def check_parameter_ratio(pair: Pair) -> Check:
    if pair.draft is None or pair.method != "draft_model":
        reason = "heads are small by design" if pair.method in HEADS else "no separate draft model"
        return Check("parameter_ratio", "skip", f"{pair.method}: {reason}")
    t, d = pair.target.params, pair.draft.params
    if t is None or d is None:
        return Check("parameter_ratio", "warn", "config shapes incomplete; parameters not estimated")
    # speed follows the parameters a token passes through: the active ones for mixture-of-experts models
    ratio = d.active / t.active
    details: dict[str, Any] = {
        "target_params": t.total,
        "draft_params": d.total,
        "ratio": round(ratio, 4),
        "ratio_text": f"1:{1 / ratio:.1f}",
    }
    if t.active != t.total or d.active != d.total:
        details.update(target_active=t.active, draft_active=d.active)
    sizes = f"draft {_billions(d.active)} vs target {_billions(t.active)} (1:{1 / ratio:.1f})"
    if ratio < RATIO_MIN:
        return Check("parameter_ratio", "warn", f"{sizes}: smaller than 1:20, expect a low acceptance rate", details)
    if ratio > RATIO_MAX:
        return Check(
            "parameter_ratio",
            "warn",
            f"{sizes}: larger than 1:3, each draft step costs too much for speculation to pay off",
            details,
        )
    return Check("parameter_ratio", "pass", f"{sizes}, within 1:20-1:3", details)


def check_memory(pair: Pair) -> Check:
    opts = pair.options
    tokens = pair.max_model_len
    target = pair.target
    if target.params is None or tokens is None:
        return Check("memory", "skip", "target shapes or serving length unknown; memory not estimated")
    tp = opts.tensor_parallel
    # With pipeline stages, the GPUs that matter are the last stage's: its share of the target plus the draft,
    # which vLLM runs on the last pipeline rank only (see checks/multinode.py).
    stage_layers = last_stage_layers(pair) if opts.pipeline_parallel > 1 else None
    target_w = weight_bytes_per_gpu(target_weight_share(target.params.total, pair), target.config, tp)
    target_kv = kv_cache_bytes_per_gpu(target.config, tokens, tp, layers=stage_layers)
    draft_w = draft_kv = 0
    if pair.method == "mtp" and target.config.mtp_layers:
        draft_w = weight_bytes_per_gpu(_mtp_params(target), target.config, tp)
        draft_kv = kv_cache_bytes_per_gpu(target.config, tokens, tp, layers=target.config.mtp_layers)
    elif pair.draft is not None and pair.draft.params is not None:
        draft_tp = pair.draft_tp
        draft_tokens = min(tokens, pair.draft.config.max_len or tokens)
        draft_w = weight_bytes_per_gpu(pair.draft.params.total, pair.draft.config, draft_tp)
        draft_kv = kv_cache_bytes_per_gpu(pair.draft.config, draft_tokens, draft_tp)
    need = target_w + target_kv + draft_w + draft_kv
    details: dict[str, Any] = {
        "tokens": tokens,
        "target_weights_gib": _gib(target_w),
        "target_kv_gib": _gib(target_kv),
        "draft_weights_gib": _gib(draft_w),
        "draft_kv_gib": _gib(draft_kv),
        "need_gib": _gib(need),
    }
    where = ""
    if opts.pipeline_parallel > 1:
        where = f" of the last of {opts.pipeline_parallel} pipeline stages"
        if nodes(pair) > 1:
            where += f" (node {nodes(pair) - 1} of the group, where the draft runs)"
        details.update(pipeline_parallel=opts.pipeline_parallel, last_stage_layers=stage_layers)
    summary = (
        f"per GPU{where}: weights {_gib(target_w + draft_w)} GiB (draft {_gib(draft_w)}) + KV cache for one "
        f"{tokens}-token sequence {_gib(target_kv + draft_kv)} GiB = {_gib(need)} GiB"
    )
    if opts.gpu_memory_gib is None:
        return Check("memory", "skip", f"{summary}; pass --gpu-memory-gib to compare with the GPU", details)
    budget = opts.gpu_memory_gib * GiB * opts.gpu_memory_utilization
    details.update(gpu_memory_gib=opts.gpu_memory_gib, budget_gib=_gib(int(budget)))
    if need > budget:
        return Check(
            "memory",
            "warn",
            f"{summary}, more than the {_gib(int(budget))} GiB vLLM may use of a {opts.gpu_memory_gib:g} GiB GPU "
            f"(utilization {opts.gpu_memory_utilization:g}): it will not fit; raise TP, lower --max-model-len "
            "or use a smaller draft",
            details,
        )
    return Check(
        "memory", "pass", f"{summary}, within {_gib(int(budget))} GiB usable (activations not counted)", details
    )


def _mtp_params(model: Model) -> int:
    """Parameters of the MTP layers: extra decoder layers plus their own embedding and head projections."""
    cfg = model.config
    layers, extra = cfg.num_layers or 0, cfg.mtp_layers or 0
    with_mtp = estimate_parameters(cfg, layers=layers + extra)
    without = estimate_parameters(cfg, layers=layers)
    if with_mtp is None or without is None:
        return 0
    return with_mtp.total - without.total + 2 * (cfg.vocab_size or 0) * (cfg.hidden_size or 0)


def _gib(nbytes: int) -> float:
    return round(nbytes / GiB, 1)


def _billions(params: int) -> str:
    return f"{params / 1e9:.2f}B"

"""Check ``tensor_parallel``: head and MLP divisibility for target and draft, and vLLM 0.32's draft-TP rule.

vLLM splits attention heads and MLP columns evenly over the tensor-parallel GPUs and raises at startup when
they do not divide (KV heads may instead be replicated when there are fewer than GPUs). vLLM 0.32 accepts a
draft TP of 1 or the target's TP, and its V1 ``draft_model`` proposer requires draft TP == target TP.
"""

from __future__ import annotations

from typing import Any

from specdeploy.validate.checks.multinode import pipeline_problems
from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.modelconfig import ModelConfig
from specdeploy.validate.report import Check


def check_tensor_parallel(pair: Pair) -> Check:
    tp = pair.options.tensor_parallel
    problems = _divisibility("target", pair.target.config, tp)
    details: dict[str, Any] = {
        "target_tp": tp,
        "target_heads": pair.target.config.num_heads,
        "target_kv_heads": pair.target.config.num_kv_heads,
    }
    if pair.draft is not None:
        draft_tp = pair.draft_tp
        details.update(
            draft_tp=draft_tp, draft_heads=pair.draft.config.num_heads, draft_kv_heads=pair.draft.config.num_kv_heads
        )
        if draft_tp not in (1, tp):
            problems.append(f"draft TP {draft_tp} must be 1 or the target's TP {tp} (vLLM 0.32)")
        elif pair.method == "draft_model" and draft_tp != tp:
            problems.append(f"vLLM's V1 draft_model proposer requires draft TP == target TP ({tp}), got {draft_tp}")
        elif pair.method == "mlp_speculator" and draft_tp != 1:
            problems.append(f"vLLM always runs an MLP speculator at TP 1, got {draft_tp}")
        problems += _divisibility("draft", pair.draft.config, draft_tp)
    stage_failures, stage_warnings = pipeline_problems(pair)
    problems += stage_failures
    if pair.options.pipeline_parallel > 1:
        details.update(pipeline_parallel=pair.options.pipeline_parallel, target_layers=pair.target.config.num_layers)
    if problems:
        return Check("tensor_parallel", "fail", "; ".join(problems), details)
    side = f", draft TP {pair.draft_tp}" if pair.draft is not None else ""
    stages = f", PP {pair.options.pipeline_parallel}" if pair.options.pipeline_parallel > 1 else ""
    if stage_warnings:
        return Check("tensor_parallel", "warn", "; ".join(stage_warnings), details)
    return Check("tensor_parallel", "pass", f"heads divide evenly at target TP {tp}{side}{stages}", details)


def _divisibility(role: str, cfg: ModelConfig, tp: int) -> list[str]:
    problems = []
    if cfg.num_heads is not None and cfg.num_heads % tp:
        problems.append(f"{role}: {cfg.num_heads} attention heads do not divide by TP {tp}")
    kv = cfg.num_kv_heads
    if kv is not None and cfg.mla is None and kv % tp and tp % kv:
        problems.append(f"{role}: {kv} KV heads neither divide by TP {tp} nor divide it")
    width = cfg.moe.expert_intermediate if cfg.moe else cfg.intermediate_size
    if width is not None and width % tp:
        problems.append(f"{role}: MLP width {width} does not divide by TP {tp}")
    return problems

"""Check ``architecture``: what the speculative method needs from the draft, method by method.

The common recipe "same hidden size and head count" is wrong for a separate draft model (a 1B draft for a 70B
target never matches) and right only for heads fed with the target's hidden states (EAGLE, EAGLE-3, Medusa,
MLP speculator). MTP layers are part of the target checkpoint, and n-gram lookup has no draft.
"""

from __future__ import annotations

from typing import Any

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.methods import EAGLE3_TARGET_TYPES, SAME_HIDDEN_SIZE
from specdeploy.validate.mtp import FIXED
from specdeploy.validate.report import Check


def check_architecture(pair: Pair) -> Check:
    method = pair.method
    target, draft = pair.target.config, pair.draft.config if pair.draft else None
    details: dict[str, Any] = {"method": method, "target_hidden_size": target.hidden_size}
    if draft is not None:
        details["draft_hidden_size"] = draft.hidden_size
    if method == "ngram":
        return Check("architecture", "pass", "n-gram lookup proposes tokens from the prompt: no draft needed", details)
    if method == "mtp":
        return _mtp(pair, details)
    if draft is None:
        return Check("architecture", "fail", f"{method} needs a draft (--draft)", details)
    if method == "draft_model":
        problems = []
        for role, cfg in (("target", target), ("draft", draft)):
            if cfg.multimodal:
                problems.append(f"the {role} is multimodal, which vLLM's draft_model proposer does not support")
            if cfg.mrope:
                problems.append(f"the {role} uses M-RoPE, which vLLM's draft_model proposer does not support")
        if problems:
            return Check("architecture", "fail", "; ".join(problems), details)
        return Check(
            "architecture",
            "pass",
            f"a separate draft model needs no particular hidden size (target {target.hidden_size}, "
            f"draft {draft.hidden_size}); it needs the same vocabulary",
            details,
        )
    if method in SAME_HIDDEN_SIZE:
        if target.hidden_size is None or draft.hidden_size is None:
            return Check("architecture", "warn", "hidden size unknown; cannot confirm the head fits", details)
        if target.hidden_size != draft.hidden_size:
            return Check(
                "architecture",
                "fail",
                f"{method} heads read the target's hidden states: the head expects hidden size "
                f"{draft.hidden_size} but the target has {target.hidden_size} (a head trained for another model)",
                details,
            )
        if method == "eagle3" and not any(t in (target.model_type or "") for t in EAGLE3_TARGET_TYPES):
            return Check(
                "architecture",
                "fail",
                f"vLLM supports EAGLE-3 only for target model types {', '.join(EAGLE3_TARGET_TYPES)}; "
                f"the target is {target.model_type!r}",
                details,
            )
        return Check(
            "architecture", "pass", f"the {method} head matches the target hidden size {target.hidden_size}", details
        )
    return Check("architecture", "fail", f"unknown speculative method {method!r}", details)


def _mtp(pair: Pair, details: dict[str, Any]) -> Check:
    """MTP drafts with layers inside the target: its config alone decides (no draft needed)."""
    config = pair.target.config
    mtp = config.mtp
    details["mtp_layers"] = config.mtp_layers
    if pair.draft is not None and pair.draft.spec != pair.target.spec:
        return Check(
            "architecture",
            "fail",
            f"mtp uses the target's own multi-token-prediction layers; the draft must be the target itself "
            f"(or omitted), not {pair.draft.spec}",
            details,
        )
    kind = config.model_type or (config.architectures[0] if config.architectures else "unknown")
    if mtp is None:  # a native params.json: no MTP layers can be declared there
        return Check(
            "architecture",
            "fail",
            f"the target ({kind}, params.json) declares no MTP layers; mtp needs a checkpoint that ships them",
            details,
        )
    details["mtp_key"] = mtp.key
    if mtp.family is not None:
        details["mtp_family"] = mtp.family
    if mtp.layers > 0:
        source = (
            f"{mtp.key} = {mtp.declared}"
            if mtp.declared is not None
            else f"vLLM's default for {mtp.family}"
            if mtp.key != FIXED
            else f"fixed by vLLM for {mtp.family}"
        )
        if mtp.family is None:
            return Check(
                "architecture",
                "warn",
                f"the target declares {mtp.layers} MTP layer(s) ({source}), but vLLM lists no MTP drafter for "
                f"model type {kind!r}: it may refuse method mtp",
                details,
            )
        return Check("architecture", "pass", f"the target ships {mtp.layers} MTP layer(s) ({source})", details)
    found = "is 0" if mtp.declared == 0 else "is not set"
    if mtp.family is None:
        return Check(
            "architecture",
            "fail",
            f"the target ({kind}) has no MTP layers: {mtp.keys_text} {found} in its config, and vLLM lists no MTP "
            "drafter for this model type; use a draft model, EAGLE or n-gram instead",
            details,
        )
    return Check(
        "architecture",
        "fail",
        f"the target ({mtp.family}) has no MTP layers: {mtp.key} {found} in its config, and vLLM reads the MTP "
        "layer count from that key; this checkpoint cannot serve method mtp",
        details,
    )

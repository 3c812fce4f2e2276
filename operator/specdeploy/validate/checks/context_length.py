"""Check ``context_length``: the serving length against what the target and the draft support.

vLLM refuses ``--max-model-len`` above the target's derived limit. For the draft it uses min(draft, target),
so a draft trained on shorter contexts silently stops helping on long requests (the acceptance rate sinks with
prompt length): that is a warning a user should see before paying for GPUs.
"""

from __future__ import annotations

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.report import Check


def check_context_length(pair: Pair) -> Check:
    target, draft = pair.target, pair.draft
    target_max = target.config.max_len
    requested = pair.options.max_model_len
    serving = pair.max_model_len
    details = {
        "max_model_len": serving,
        "target_max": target_max,
        "draft_max": draft.config.max_len if draft else None,
    }
    details = {k: v for k, v in details.items() if v is not None}
    if requested and target_max and requested > target_max:
        return Check(
            "context_length",
            "fail",
            f"--max-model-len {requested} exceeds the target's limit {target_max} "
            f"({target.config.max_len_key}); vLLM refuses to start unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
            details,
        )
    if draft is None:
        return Check("context_length", "skip", f"{pair.method}: no separate draft; serving length {serving}", details)
    draft_max = draft.config.max_len
    if draft_max is None:
        return Check(
            "context_length",
            "pass",
            "the draft config declares no maximum length; vLLM gives it the target's",
            details,
        )
    if serving is None:
        return Check(
            "context_length", "warn", "the target config declares no maximum length; pass --max-model-len", details
        )
    if draft_max < serving:
        return Check(
            "context_length",
            "warn",
            f"the draft supports {draft_max} tokens but requests may reach {serving}: vLLM limits the draft to "
            f"{draft_max}, so speculation stops helping past that length (acceptance falls on long prompts)",
            details,
        )
    return Check(
        "context_length", "pass", f"the draft covers the serving length {serving} (draft: {draft_max})", details
    )

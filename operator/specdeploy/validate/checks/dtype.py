"""Check ``dtype``: the draft's stored dtype against the target's.

vLLM loads the draft in the target's dtype, so a float16 draft for a bfloat16 target is cast at load time:
it works, but the draft then runs in a precision it was not trained in (a small accuracy hit). Warn.
"""

from __future__ import annotations

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.report import Check


def check_dtype(pair: Pair) -> Check:
    if pair.draft is None:
        return Check("dtype", "skip", f"{pair.method}: no separate draft model")
    t, d = pair.target.config, pair.draft.config
    details = {
        "target_dtype": t.dtype,
        "draft_dtype": d.dtype,
        "target_quantization": t.quantization,
        "draft_quantization": d.quantization,
    }
    details = {k: v for k, v in details.items() if v is not None}
    if t.dtype is None or d.dtype is None:
        missing = "target" if t.dtype is None else "draft"
        return Check("dtype", "pass", f"the {missing} config declares no dtype; vLLM uses the target's", details)
    if t.dtype != d.dtype:
        return Check(
            "dtype",
            "warn",
            f"dtype differs: target {t.dtype}, draft {d.dtype}; vLLM runs the draft in {t.dtype}",
            details,
        )
    return Check("dtype", "pass", f"both {t.dtype}", details)

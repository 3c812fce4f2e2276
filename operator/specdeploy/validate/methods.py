"""Speculative methods vLLM 0.32 knows and what each asks of the draft (the rules the checks apply).

A separate draft model (``draft_model``) must share the target's vocabulary and token ids but may have any
hidden size; heads that read the target's hidden states (EAGLE, EAGLE-3, Medusa, MLP speculator) must have the
target's hidden size; MTP layers ship inside the target; n-gram lookup has no draft at all.
"""

from __future__ import annotations

METHODS = ("draft_model", "eagle", "eagle3", "mtp", "ngram", "medusa", "mlp_speculator")

NEEDS_DRAFT = frozenset({"draft_model", "eagle", "eagle3", "medusa", "mlp_speculator"})
SAME_HIDDEN_SIZE = frozenset({"eagle", "eagle3", "medusa", "mlp_speculator"})
HEADS = SAME_HIDDEN_SIZE  # small predictors on top of the target, not stand-alone models

# vLLM speculative.py (@f19b16d9): EAGLE-3 heads exist for these target model types (substring match).
EAGLE3_TARGET_TYPES = ("llama", "qwen", "minicpm", "gpt_oss", "hunyuan_vl", "hunyuan_v1_dense", "afmoe")


def normalise(method: str) -> str:
    """The canonical method name; vLLM's deprecated per-model MTP aliases (``deepseek_mtp``...) become ``mtp``."""
    name = method.strip().lower()
    if name.endswith("_mtp"):
        return "mtp"
    return name


def default_draft_tp(method: str, target_tp: int) -> int:
    """The draft tensor parallelism vLLM uses when none is given (MLP speculator is always 1)."""
    return 1 if method == "mlp_speculator" else target_tp

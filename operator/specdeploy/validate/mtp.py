"""Where a target's config says how many multi-token-prediction (MTP) layers it ships, per architecture.

``method: mtp`` drafts with layers inside the target checkpoint. vLLM turns the target's config into the draft's
(``SpeculativeConfig.hf_config_override``) and reads the layer count from one key that depends on the model type
or architecture; a config without it (or with 0) has no MTP layers, and the pods fail only after loading the
weights. This table follows that function (vLLM main @002e77c1; 0.32 knows a subset of these families): the key it
reads and the count it assumes when the key is absent (``None``: the key is required). A family vLLM does not list
is judged by the usual keys alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NEXTN = "num_nextn_predict_layers"
QWEN35 = "mtp_num_hidden_layers"
MINIMAX = "num_mtp_modules"
FIXED = "(fixed by vLLM)"
#: Keys that declare MTP layers in configs of families vLLM does not list.
GENERIC_KEYS = (NEXTN, QWEN35, MINIMAX, "num_mtp_layers")


@dataclass(frozen=True)
class Rule:
    """The key vLLM reads for one family and the layer count it assumes when the key is absent."""

    key: str
    default: int | None = None
    section: str | None = None  # a nested object holding the key (Inkling's ``mtp_config``)


_BY_MODEL_TYPE: dict[str, Rule] = {
    **dict.fromkeys(
        (
            "deepseek_v3",
            "deepseek_v32",
            "deepseek_v4",
            "deepseek_mtp",
            "glm_moe_dsa",
            "pangu_ultra_moe",
            "kimi_k3",
            "ernie4_5_moe",
            "ernie_mtp",
            "nemotron_h",
            "nemotron_h_puzzle",
            "qwen3_next",
            "bailing_hybrid",
            "exaone_moe",
            "exaone4_5",
            "hy_v3",
            "hy_v4",
            "glm5_next",
        ),
        Rule(NEXTN),
    ),
    **dict.fromkeys(("dots3_note", "longcat_flash", "longcat_flash_ngram", "step3p5", "step3p7"), Rule(NEXTN, 1)),
    **dict.fromkeys(("qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text"), Rule(QWEN35)),
    **dict.fromkeys(("minimax_m3_vl", "minimax_m3_mtp"), Rule(MINIMAX, 1)),
    **dict.fromkeys(("inkling_mm_model", "inkling_model"), Rule(NEXTN, None, section="mtp_config")),
}
_BY_ARCHITECTURE: dict[str, Rule] = {
    **dict.fromkeys(
        (
            "MiMoForCausalLM",
            "Glm4MoeForCausalLM",
            "Glm4MoeLiteForCausalLM",
            "GlmOcrForConditionalGeneration",
            "BailingMoeV2_5ForCausalLM",
            "BailingMoeV3ForCausalLM",
            "BailingMoeV3VLForConditionalGeneration",
        ),
        Rule(NEXTN),
    ),
    **dict.fromkeys(("Step3p5ForCausalLM", "Step3p7ForConditionalGeneration"), Rule(NEXTN, 1)),
    **dict.fromkeys(("MiMoV2ForCausalLM", "MiMoV2OmniForCausalLM", "MiMoV2FlashForCausalLM"), Rule(FIXED, 1)),
    "MiniMaxM3SparseForConditionalGeneration": Rule(MINIMAX, 1),
}


@dataclass(frozen=True)
class MtpLayers:
    """What a config says about MTP layers: the family vLLM knows it as (None if unlisted), the key, the counts."""

    family: str | None
    key: str
    declared: int | None  # the value in the config, None when absent
    layers: int  # what vLLM would build: declared, else its default, else 0

    @property
    def keys_text(self) -> str:
        return self.key if self.family is not None else " / ".join(GENERIC_KEYS)


def mtp_layers(config: dict[str, Any], model_types: tuple[str, ...], architectures: tuple[str, ...]) -> MtpLayers:
    """Read the MTP layer count from ``config`` (the text config merged over the top level) the way vLLM does.

    Values must already be validated integers (``modelconfig`` reads them with its bounds); anything else counts as
    absent.
    """
    family, rule = _rule(model_types, architectures)
    if rule is None:
        for key in GENERIC_KEYS:
            value = _int(config.get(key))
            if value is not None:
                return MtpLayers(None, key, value, value)
        return MtpLayers(None, GENERIC_KEYS[0], None, 0)
    if rule.key == FIXED:
        return MtpLayers(family, rule.key, None, rule.default or 0)
    holder = config.get(rule.section) if rule.section else config
    value = _int(holder.get(rule.key)) if isinstance(holder, dict) else None
    key = f"{rule.section}.{rule.key}" if rule.section else rule.key
    layers = value if value is not None else (rule.default or 0)
    return MtpLayers(family, key, value, layers)


def _rule(model_types: tuple[str, ...], architectures: tuple[str, ...]) -> tuple[str | None, Rule | None]:
    for arch in architectures[:1]:
        if arch in _BY_ARCHITECTURE:
            return arch, _BY_ARCHITECTURE[arch]
    for model_type in model_types:
        if model_type in _BY_MODEL_TYPE:
            return model_type, _BY_MODEL_TYPE[model_type]
    return None, None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

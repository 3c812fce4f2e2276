"""The shape of a model as the checks need it, read from config.json (HF) or params.json (native format).

Configs spell the same quantity many ways (``hidden_size``/``d_model``/``n_embd``/``dim``), multimodal models
nest the language model under ``text_config``, and MoE / MLA models add their own keys. This module reduces all
of that to one ``ModelConfig`` so each check reads a field by one name. Context length follows vLLM's own rule
(smallest of the known length keys, scaled by rope_scaling except for llama3/longrope/su).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.files import read_json
from specdeploy.validate.mtp import GENERIC_KEYS as _MTP_KEYS
from specdeploy.validate.mtp import MtpLayers, mtp_layers

_LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
_HIDDEN_KEYS = ("hidden_size", "d_model", "n_embd", "emb_dim", "dim")
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HEAD_KEYS = ("num_attention_heads", "n_head", "n_heads")
_KV_HEAD_KEYS = ("num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num")
_FFN_KEYS = ("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size", "hidden_dim", "inner_dim")
_EXPERT_KEYS = ("num_local_experts", "n_routed_experts", "num_experts")
# Families whose HF config class defaults to untied embeddings (PretrainedConfig itself defaults to tied).
_UNTIED_BY_DEFAULT = ("llama", "mistral", "mixtral", "qwen", "deepseek", "phi3", "granite", "olmo", "internlm")
_NON_GATED_MLP = ("gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "starcoder2", "phi", "mlp_speculator")

DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0, "float8_e4m3fn": 1.0, "float8": 1.0}


@dataclass(frozen=True)
class MoE:
    """Mixture-of-experts shape: routed experts, their width, shared experts and leading dense layers."""

    experts: int
    per_token: int
    expert_intermediate: int
    shared_experts: int
    shared_intermediate: int
    dense_layers: int


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek V2/V3) projection ranks."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModelConfig:
    """What the checks need to know about one model's architecture, from its config file."""

    source: str
    model_type: str | None
    architectures: tuple[str, ...]
    hidden_size: int | None
    num_layers: int | None
    num_heads: int | None
    num_kv_heads: int | None
    head_dim: int | None
    intermediate_size: int | None
    vocab_size: int | None
    tie_word_embeddings: bool
    gated_mlp: bool
    max_len: int | None
    max_len_key: str | None
    dtype: str | None
    weight_bits: float | None
    quantization: str | None
    moe: MoE | None
    mla: MLA | None
    mtp_layers: int | None  # MTP layers vLLM would build for method mtp (None: the config declares none)
    mtp: MtpLayers | None  # how that count was read (key, family); None for native params.json
    multimodal: bool
    mrope: bool
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    pad_token_id: int | None

    @property
    def weight_bytes_per_param(self) -> float:
        """Bytes per parameter of the stored weights (quantization bits win over the dtype)."""
        if self.weight_bits is not None:
            return self.weight_bits / 8
        return DTYPE_BYTES.get(self.dtype or "", 2.0)

    @property
    def activation_bytes(self) -> float:
        """Bytes per element of activations and the KV cache (vLLM's ``auto`` KV dtype = model dtype)."""
        return DTYPE_BYTES.get(self.dtype or "", 2.0) if self.dtype != "float32" else 2.0


def load_config(config_path: Path | None, params_path: Path | None, generation_path: Path | None) -> ModelConfig:
    """Read config.json (preferred) or params.json, plus generation_config.json for stop tokens."""
    if config_path is not None:
        cfg = from_hf_config(read_json(config_path, "config.json"))
    elif params_path is not None:
        cfg = from_params(read_json(params_path, "params.json"))
    else:  # sources.require_config guarantees one of the two
        raise CheckError("missing_files", "no config.json or params.json")
    if generation_path is not None:
        generation = read_json(generation_path, "generation_config.json")
        eos = _int_list(generation.get("eos_token_id"), "generation_config.json", "eos_token_id")
        if eos:
            cfg = _replace(cfg, eos_token_ids=tuple(dict.fromkeys((*eos, *cfg.eos_token_ids))))
    return cfg


def _replace(cfg: ModelConfig, **changes: Any) -> ModelConfig:
    from dataclasses import replace

    return replace(cfg, **changes)


def from_hf_config(raw: dict[str, Any]) -> ModelConfig:
    """Interpret a Hugging Face config.json (using ``text_config`` for multimodal models, as vLLM does)."""
    text = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else None
    cfg: dict[str, Any] = {**raw, **text} if text else raw
    label = "config.json" + (" text_config" if text else "")
    model_type = _str(cfg.get("model_type")) or _str(raw.get("model_type"))
    hidden = _first_int(cfg, _HIDDEN_KEYS, label)
    heads = _first_int(cfg, _HEAD_KEYS, label)
    kv = _first_int(cfg, _KV_HEAD_KEYS, label)
    if kv is None and cfg.get("multi_query") is True:
        kv = 1
    head_dim = _int(cfg.get("head_dim"), label, "head_dim")
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    quant = cfg.get("quantization_config") if isinstance(cfg.get("quantization_config"), dict) else None
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    max_len, max_key = _max_len(cfg, rope if isinstance(rope, dict) else None, label)
    tie_default = not any((model_type or "").startswith(f) for f in _UNTIED_BY_DEFAULT)
    _first_int(cfg, _MTP_KEYS, label)  # a malformed layer count is an error naming the key
    architectures = tuple(str(a) for a in (raw.get("architectures") or []) if isinstance(a, str))
    model_types = tuple(t for t in (_str(raw.get("model_type")), _str(cfg.get("model_type"))) if t)
    mtp = mtp_layers(cfg, model_types, architectures)
    return ModelConfig(
        source="config.json",
        model_type=model_type,
        architectures=architectures,
        hidden_size=hidden,
        num_layers=_first_int(cfg, _LAYER_KEYS, label),
        num_heads=heads,
        num_kv_heads=kv if kv is not None else heads,
        head_dim=head_dim,
        intermediate_size=_first_int(cfg, _FFN_KEYS, label),
        vocab_size=_int(cfg.get("vocab_size", raw.get("vocab_size")), label, "vocab_size"),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", raw.get("tie_word_embeddings", tie_default))),
        gated_mlp=not any((model_type or "") == t for t in _NON_GATED_MLP),
        max_len=max_len,
        max_len_key=max_key,
        dtype=_dtype(cfg.get("torch_dtype") or cfg.get("dtype") or raw.get("torch_dtype") or raw.get("dtype")),
        weight_bits=_quant_bits(quant),
        quantization=_str(quant.get("quant_method")) if quant else None,
        moe=_moe(cfg, label),
        mla=_mla(cfg, label),
        mtp_layers=mtp.layers if mtp.layers or mtp.declared is not None else None,
        mtp=mtp,
        multimodal=text is not None or any(k in raw for k in ("vision_config", "audio_config")),
        mrope=isinstance(rope, dict) and ("mrope_section" in rope or rope.get("rope_type") == "mrope"),
        bos_token_id=_first(_int_list(cfg.get("bos_token_id"), label, "bos_token_id")),
        eos_token_ids=tuple(_int_list(cfg.get("eos_token_id"), label, "eos_token_id")),
        pad_token_id=_first(_int_list(cfg.get("pad_token_id"), label, "pad_token_id")),
    )


def from_params(raw: dict[str, Any]) -> ModelConfig:
    """Interpret a native params.json (Mistral ``consolidated`` / Meta Llama reference layout)."""
    label = "params.json"
    dim = _int(raw.get("dim"), label, "dim")
    heads = _int(raw.get("n_heads"), label, "n_heads")
    ffn = _int(raw.get("hidden_dim"), label, "hidden_dim")
    if ffn is None and dim is not None:  # Meta's reference rule for Llama 2/3
        ffn = int(2 * 4 * dim / 3)
        multiplier = raw.get("ffn_dim_multiplier")
        if isinstance(multiplier, int | float):
            ffn = int(multiplier * ffn)
        multiple_of = _int(raw.get("multiple_of"), label, "multiple_of") or 256
        ffn = multiple_of * math.ceil(ffn / multiple_of)
    moe_raw = raw.get("moe") if isinstance(raw.get("moe"), dict) else None
    moe = None
    if moe_raw and ffn:
        moe = MoE(
            experts=_int(moe_raw.get("num_experts"), label, "moe.num_experts") or 1,
            per_token=_int(moe_raw.get("num_experts_per_tok"), label, "moe.num_experts_per_tok") or 1,
            expert_intermediate=ffn,
            shared_experts=0,
            shared_intermediate=0,
            dense_layers=0,
        )
    max_len = _first_int(raw, ("max_seq_len", "max_position_embeddings"), label)
    head_dim = _int(raw.get("head_dim"), label, "head_dim")
    return ModelConfig(
        source="params.json",
        model_type="mistral" if "hidden_dim" in raw else "llama",
        architectures=(),
        hidden_size=dim,
        num_layers=_int(raw.get("n_layers"), label, "n_layers"),
        num_heads=heads,
        num_kv_heads=_int(raw.get("n_kv_heads"), label, "n_kv_heads") or heads,
        head_dim=head_dim or (dim // heads if dim and heads else None),
        intermediate_size=ffn,
        vocab_size=_int(raw.get("vocab_size"), label, "vocab_size"),
        tie_word_embeddings=bool(raw.get("tied_embeddings", False)),
        gated_mlp=True,
        max_len=max_len,
        max_len_key="max_seq_len" if max_len else None,
        dtype=None,
        weight_bits=None,
        quantization=None,
        moe=moe,
        mla=None,
        mtp_layers=None,
        mtp=None,
        multimodal="vision_encoder" in raw,
        mrope=False,
        bos_token_id=None,
        eos_token_ids=(),
        pad_token_id=None,
    )


def _max_len(cfg: dict[str, Any], rope: dict[str, Any] | None, label: str) -> tuple[int | None, str | None]:
    best: float | None = None
    key: str | None = None
    for name in _LENGTH_KEYS:
        value = _int(cfg.get(name), label, name)
        if value is not None and (best is None or value < best):
            best, key = value, name
    if best is None:
        return None, None
    if rope:
        rope_type = rope.get("rope_type") or rope.get("type") or "default"
        if rope_type not in ("su", "longrope", "llama3"):
            factor = rope.get("factor", 1.0)
            if rope_type == "yarn" and isinstance(rope.get("original_max_position_embeddings"), int):
                best = rope["original_max_position_embeddings"]
            if isinstance(factor, int | float):
                best = best * factor
    return int(best), key


def _moe(cfg: dict[str, Any], label: str) -> MoE | None:
    experts = _first_int(cfg, _EXPERT_KEYS, label)
    if not experts or experts <= 1:
        return None
    width = _first_int(cfg, ("moe_intermediate_size", "expert_intermediate_size"), label) or _first_int(
        cfg, _FFN_KEYS, label
    )
    return MoE(
        experts=experts,
        per_token=_first_int(cfg, ("num_experts_per_tok", "num_experts_per_token", "top_k"), label) or 1,
        expert_intermediate=width or 0,
        shared_experts=_first_int(cfg, ("n_shared_experts",), label)
        or (1 if cfg.get("shared_expert_intermediate_size") else 0),
        shared_intermediate=_first_int(cfg, ("shared_expert_intermediate_size",), label) or width or 0,
        dense_layers=_first_int(cfg, ("first_k_dense_replace",), label) or 0,
    )


def _mla(cfg: dict[str, Any], label: str) -> MLA | None:
    kv_rank = _int(cfg.get("kv_lora_rank"), label, "kv_lora_rank")
    if not kv_rank:
        return None
    return MLA(
        q_lora_rank=_int(cfg.get("q_lora_rank"), label, "q_lora_rank"),
        kv_lora_rank=kv_rank,
        qk_nope_head_dim=_int(cfg.get("qk_nope_head_dim"), label, "qk_nope_head_dim") or 0,
        qk_rope_head_dim=_int(cfg.get("qk_rope_head_dim"), label, "qk_rope_head_dim") or 0,
        v_head_dim=_int(cfg.get("v_head_dim"), label, "v_head_dim") or 0,
    )


def _quant_bits(quant: dict[str, Any] | None) -> float | None:
    if not quant:
        return None
    method = str(quant.get("quant_method", "")).lower()
    bits = quant.get("bits") or quant.get("w_bit") or quant.get("weight_bits")
    if isinstance(bits, int | float) and bits > 0:
        return float(bits)
    if "fp8" in method or method == "fbgemm_fp8":
        return 8.0
    groups = quant.get("config_groups")
    if isinstance(groups, dict):  # compressed-tensors: take the first weight scheme
        for group in groups.values():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict) and isinstance(weights.get("num_bits"), int):
                return float(weights["num_bits"])
    return None


def _dtype(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name: str = value.removeprefix("torch.")
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    return aliases.get(name, name)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# No shape, length or id of a real model comes near 2**53 (the largest integer a JSON number holds exactly); a
# bigger one is a broken or hostile file, and would make the sizing arithmetic slow or overflow a float.
_MAX_CONFIG_INT = 2**53


def _int(value: Any, label: str, key: str) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
        or not 0 <= value <= _MAX_CONFIG_INT
    ):
        raise CheckError("malformed", f"{label}: {key} must be an integer from 0 to 2**53, found {_clip(repr(value))}")
    return int(value)


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_int(cfg: dict[str, Any], keys: tuple[str, ...], label: str) -> int | None:
    for key in keys:
        value = _int(cfg.get(key), label, key)
        if value is not None:
            return value
    return None


def _int_list(value: Any, label: str, key: str) -> list[int]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v for item in value if (v := _int(item, label, key)) is not None]
    parsed = _int(value, label, key)
    return [parsed] if parsed is not None else []


def _first(values: list[int]) -> int | None:
    return values[0] if values else None

"""Real tokenizer files from PyPI packages and real config shapes, assembled into HF-style model folders.

Tokenizers: mistral-common ships Mistral's SentencePiece v1 (32000) and v3 (32768) models and tekken; llama-models
ships Meta's Llama 3 tiktoken file (128000 ranks + 256 special tokens). Configs carry the published values of the
named models (hidden sizes, heads, vocab, context, eos lists); only the fields the validator reads matter.
"""

from __future__ import annotations

import base64
import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import llama_models
import mistral_common

MISTRAL_DATA = Path(mistral_common.__file__).parent / "data"
SPM_V1 = MISTRAL_DATA / "tokenizer.model.v1"
SPM_V3 = MISTRAL_DATA / "mistral_instruct_tokenizer_240323.model.v3"
TEKKEN = MISTRAL_DATA / "tekken_240911.json"
LLAMA3_TIKTOKEN = Path(llama_models.__file__).parent / "llama3" / "tokenizer.model"

_LLAMA31_ROPE = {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3",
}
LLAMA_31_70B_INSTRUCT: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 64,
    "num_hidden_layers": 80,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_scaling": _LLAMA31_ROPE,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
LLAMA_31_8B_INSTRUCT = {**LLAMA_31_70B_INSTRUCT, "hidden_size": 4096, "intermediate_size": 14336}
LLAMA_31_8B_INSTRUCT.update(num_attention_heads=32, num_hidden_layers=32)
LLAMA_31_8B = {**LLAMA_31_8B_INSTRUCT, "eos_token_id": 128001}
LLAMA_32_1B_INSTRUCT = {
    **LLAMA_31_70B_INSTRUCT,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_attention_heads": 32,
    "num_hidden_layers": 16,
    "head_dim": 64,
    "rope_scaling": {**_LLAMA31_ROPE, "factor": 32.0},
    "tie_word_embeddings": True,
}
LLAMA_3_8B_INSTRUCT = {  # Llama 3.0: 8k context, no rope scaling
    **LLAMA_31_8B_INSTRUCT,
    "max_position_embeddings": 8192,
    "rope_scaling": None,
    "eos_token_id": 128009,
}
MISTRAL_7B_V01: dict[str, Any] = {
    "architectures": ["MistralForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "model_type": "mistral",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 32000,
}
MISTRAL_7B_V03 = {**MISTRAL_7B_V01, "vocab_size": 32768, "rope_theta": 1000000.0, "sliding_window": None}
MISTRAL_NEMO_12B = {  # tekken tokenizer, 131072 vocab, 128 head_dim
    **MISTRAL_7B_V01,
    "hidden_size": 5120,
    "head_dim": 128,
    "num_hidden_layers": 40,
    "max_position_embeddings": 1024000,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "vocab_size": 131072,
}
EAGLE_LLAMA3_INSTRUCT_8B = {  # yuhuili/EAGLE-LLaMA3-Instruct-8B: one decoder layer on top of the 8B target
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 1,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vocab_size": 128256,
}
DEEPSEEK_V3: dict[str, Any] = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "bos_token_id": 0,
    "eos_token_id": 1,
    "first_k_dense_replace": 3,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_attention_heads": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "rope_scaling": {
        "beta_fast": 32,
        "beta_slow": 1,
        "factor": 40,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
        "original_max_position_embeddings": 4096,
        "type": "yarn",
    },
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "v_head_dim": 128,
    "vocab_size": 129280,
}

# Meta's Llama 3.0 special-token names (Meta-Llama-3-8B): 3.1 renamed several reserved slots.
_LLAMA30_NAMED = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128002: "<|reserved_special_token_0|>",
    128003: "<|reserved_special_token_1|>",
    128004: "<|reserved_special_token_2|>",
    128005: "<|reserved_special_token_3|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128008: "<|reserved_special_token_4|>",
    128009: "<|eot_id|>",
}


@cache
def llama3_specials() -> dict[int, str]:
    """id -> name of the 256 Llama 3 special tokens, as Meta's llama-models tokenizer defines them."""
    from llama_models.llama3.tokenizer import Tokenizer

    return {i: name for name, i in Tokenizer.get_instance().special_tokens.items()}


def llama30_specials() -> dict[int, str]:
    """The Llama 3.0 naming: same ids, reserved slots numbered without the 3.1 additions."""
    names = dict(_LLAMA30_NAMED)
    for i in range(128010, 128256):
        names[i] = f"<|reserved_special_token_{i - 128010 + 5}|>"
    return names


def llama3_tokenizer_config(eos: str, specials: dict[int, str] | None = None) -> dict[str, Any]:
    """tokenizer_config.json as HF publishes it for Llama 3 (bos/eos strings and added_tokens_decoder)."""
    specials = specials or llama3_specials()
    return {
        "bos_token": "<|begin_of_text|>",
        "eos_token": eos,
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": {
            str(i): {
                "content": name,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i, name in sorted(specials.items())
        },
    }


MISTRAL_TOKENIZER_CONFIG = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "legacy": False}


@cache
def llama3_ranks() -> tuple[bytes, ...]:
    return tuple(
        base64.b64decode(line.split()[0]) for line in LLAMA3_TIKTOKEN.read_bytes().splitlines() if line.strip()
    )


def _byte_level_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character table (written independently of the validator's inverse)."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


@cache
def llama3_tokenizer_json_text() -> str:
    """Llama 3 as a HF tokenizer.json (byte-level BPE with merges), converted from Meta's tiktoken file.

    Merges are every split of a token into two tokens, ordered by the token's rank, the way HF's tiktoken
    converter builds them; the file is ~9 MB like the published one.
    """
    alphabet = _byte_level_alphabet()
    ranks = llama3_ranks()
    index = {tok: i for i, tok in enumerate(ranks)}

    def enc(tok: bytes) -> str:
        return "".join(alphabet[b] for b in tok)

    merges: list[tuple[int, int, int, list[str]]] = []
    for rank, tok in enumerate(ranks):
        for cut in range(1, len(tok)):
            left, right = tok[:cut], tok[cut:]
            if left in index and right in index:
                merges.append((rank, index[left], index[right], [enc(left), enc(right)]))
    merges.sort()
    from llama_models.llama3.tokenizer import Tokenizer

    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_special_token(i, name) for i, name in sorted(llama3_specials().items())],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": Tokenizer.pat_str}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {enc(tok): i for i, tok in enumerate(ranks)},
            "merges": [m[3] for m in merges],
        },
    }
    return json.dumps(spec, ensure_ascii=False)


def _special_token(token_id: int, content: str) -> dict[str, Any]:
    """An ``added_tokens`` entry of tokenizer.json for a special token, as Hugging Face writes one."""
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }


def write_model(
    folder: Path,
    config: dict[str, Any] | None,
    *,
    tokenizer: str | None = None,
    tokenizer_config: dict[str, Any] | None = None,
    generation_config: dict[str, Any] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Create an HF-style model folder. ``tokenizer``: llama3-tiktoken | llama3-json | spm-v1 | spm-v3 | tekken."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    if generation_config is not None:
        (folder / "generation_config.json").write_text(json.dumps(generation_config, indent=2))
    if tokenizer_config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    if tokenizer == "llama3-tiktoken":
        (folder / "tokenizer.model").write_bytes(LLAMA3_TIKTOKEN.read_bytes())
    elif tokenizer == "llama3-json":
        (folder / "tokenizer.json").write_text(llama3_tokenizer_json_text())
    elif tokenizer == "spm-v1":
        (folder / "tokenizer.model").write_bytes(SPM_V1.read_bytes())
    elif tokenizer == "spm-v3":
        (folder / "tokenizer.model").write_bytes(SPM_V3.read_bytes())
        (folder / "tokenizer.model.v3").write_bytes(SPM_V3.read_bytes())
    elif tokenizer == "tekken":
        (folder / "tekken.json").write_bytes(TEKKEN.read_bytes())
    elif tokenizer is not None:
        raise ValueError(tokenizer)
    for name, data in (extra or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def generation(eos: int | list[int], bos: int = 128000) -> dict[str, Any]:
    return {"bos_token_id": bos, "do_sample": True, "eos_token_id": eos, "temperature": 0.6, "top_p": 0.9}


def llama(folder: Path, config: dict[str, Any], *, eos: str, tokenizer: str = "llama3-tiktoken") -> Path:
    """A Llama 3.x folder: config, generation config with the config's eos list, tokenizer files."""
    return write_model(
        folder,
        config,
        tokenizer=tokenizer,
        tokenizer_config=llama3_tokenizer_config(eos),
        generation_config=generation(copy.deepcopy(config["eos_token_id"])),
    )


def mistral(folder: Path, config: dict[str, Any], *, tokenizer: str) -> Path:
    return write_model(
        folder,
        config,
        tokenizer=tokenizer,
        tokenizer_config=MISTRAL_TOKENIZER_CONFIG,
        generation_config={"bos_token_id": 1, "eos_token_id": 2},
    )


@cache
def mistral_tokenizer_json_text(model: Path = SPM_V3) -> str:
    """A Mistral SentencePiece model as HF's tokenizer.json (BPE, byte fallback, U+2581 word marker).

    The vocabulary is the model's pieces with their ids; merges are every split of a piece into two pieces,
    ordered by the merged piece's score, which is how HF's SentencePiece converter builds them.
    """
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    index = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, piece in enumerate(pieces):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i):
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in index and right in index:
                merges.append((-sp.get_score(i), index[left], index[right], [left, right]))
    merges.sort()
    control = [i for i in range(len(pieces)) if sp.is_control(i) or sp.is_unknown(i)]
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_special_token(i, pieces[i]) for i in control],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        "post_processor": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": {p: i for i, p in enumerate(pieces)},
            "merges": [m[3] for m in merges],
        },
    }
    return json.dumps(spec, ensure_ascii=False)


def model_folders(root: Path) -> dict[str, str]:
    """The pair the cluster tests validate: a Llama 3.1 8B target, a compatible Llama 3.2 1B draft ("good") and an
    incompatible Mistral v0.3 draft ("bad"), as HF-style folders under ``root``."""
    target = llama(root / "llama-3.1-8b-instruct", LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>")
    good = llama(root / "llama-3.2-1b-instruct", LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
    bad = mistral(root / "mistral-7b-v0.3", MISTRAL_7B_V03, tokenizer="spm-v3")
    return {"target": str(target), "good": str(good), "bad": str(bad)}


# Code Llama (Python) as published: the 70B carries 16 extra embedding rows (vocab_size 32016), the 7B does not
# (32000); litgpt's config table and the models' config.json agree.
CODELLAMA_70B_PYTHON: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "max_position_embeddings": 16384,
    "model_type": "llama",
    "num_attention_heads": 64,
    "num_hidden_layers": 80,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 32016,
}
CODELLAMA_7B_PYTHON = {
    **CODELLAMA_70B_PYTHON,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
}

# Qwen2.5 small models (examples/tiny.yaml): 0.5B, 1.5B and 3B share vocab_size 151936 (7B and larger: 152064).
QWEN25_15B_INSTRUCT: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "max_position_embeddings": 32768,
    "model_type": "qwen2",
    "num_attention_heads": 12,
    "num_hidden_layers": 28,
    "num_key_value_heads": 2,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "vocab_size": 151936,
}
QWEN25_05B_INSTRUCT = {
    **QWEN25_15B_INSTRUCT,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_hidden_layers": 24,
}

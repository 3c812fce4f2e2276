"""Which token ids a model uses for bos/eos/unk/pad, and which ids stop generation.

HF spreads this over tokenizer_config.json (token strings), special_tokens_map.json, config.json and
generation_config.json (ids; vLLM stops on the generation config's eos list); SentencePiece and tekken files carry
their own ids; native Llama 3 folders rely on naming conventions. This module merges them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdeploy.validate.modelconfig import ModelConfig
from specdeploy.validate.vocab import Vocabulary

ROLES = ("bos", "eos", "unk", "pad")
_CONVENTIONAL = {
    "bos": ("<|begin_of_text|>", "<s>", "<bos>", "[BOS]"),
    "eos": ("<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", "[EOS]"),
    "unk": ("<unk>", "[UNK]"),
    "pad": ("<pad>", "<|finetune_right_pad_id|>", "[PAD]"),
}


@dataclass(frozen=True)
class SpecialTokens:
    """Role -> token id (None when the model defines no such token) plus every id that ends generation."""

    ids: dict[str, int | None]
    stop_ids: tuple[int, ...]

    def get(self, role: str) -> int | None:
        return self.ids.get(role)


def resolve(
    config: ModelConfig,
    vocab: Vocabulary | None,
    tokenizer_config: dict[str, Any] | None,
    special_tokens_map: dict[str, Any] | None,
) -> SpecialTokens:
    """Merge the sources of special-token information for one model."""
    config_ids = {"bos": config.bos_token_id, "eos": _first(config.eos_token_ids), "pad": config.pad_token_id}
    ids: dict[str, int | None] = {}
    for role in ROLES:
        candidates = (
            _from_text(tokenizer_config, role, vocab),
            _from_text(special_tokens_map, role, vocab),
            config_ids.get(role),
            vocab.roles.get(role) if vocab else None,
            _conventional(role, vocab),
        )
        ids[role] = next((c for c in candidates if c is not None), None)
    stops = [i for i in (ids["eos"], *config.eos_token_ids) if i is not None]
    return SpecialTokens(ids=ids, stop_ids=tuple(sorted(dict.fromkeys(stops))))


def _first(values: tuple[int, ...]) -> int | None:
    return values[0] if values else None


def _from_text(source: dict[str, Any] | None, role: str, vocab: Vocabulary | None) -> int | None:
    if not source or vocab is None:
        return None
    value = source.get(f"{role}_token")
    if isinstance(value, dict):
        value = value.get("content")
    if not isinstance(value, str):
        return None
    return vocab.ids.get(value.encode("utf-8"))


def _conventional(role: str, vocab: Vocabulary | None) -> int | None:
    if vocab is None:
        return None
    for name in _CONVENTIONAL[role]:
        token_id = vocab.ids.get(name.encode("utf-8"))
        if token_id is not None and token_id in vocab.special_ids:
            return token_id
    return None

"""How the parts of a Hugging Face ``tokenizer.json`` become a ``Vocabulary``, whichever reader produced them.

Two readers exist: a direct reader of the JSON (fast, BPE only) and the ``tokenizers`` library (every model type,
and the reference the direct reader is tested against). Both hand over the same three things: the vocabulary as
the library's ``get_vocab(with_added_tokens=True)`` gives it, the added tokens by id, and the JSON nodes of the
pre-tokenizer, decoder and normaliser. Building the ``Vocabulary`` and detecting how strings encode bytes happens
here, once, so the two readers can only differ in what they read, never in how it is interpreted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from specdeploy.validate.vocab import (
    SPM_SPACE,
    Vocabulary,
    bounded_id,
    decode_byte_level_many,
    decode_sentencepiece,
)

#: The key under which a ``Sequence`` node of each component kind lists its children.
SEQUENCE_KEYS = ("pretokenizers", "decoders", "normalizers")


def build_vocabulary(
    *,
    label: str,
    model_type: str,
    style: str,
    vocab: Mapping[str, int],
    added: Mapping[int, tuple[str, bool]],
) -> Vocabulary:
    """The ``Vocabulary`` of a tokenizer.json.

    ``vocab`` maps every string (model vocabulary and added tokens) to its id; ``added`` maps the id of each added
    token to its literal content and whether it is special. Added tokens keep their literal text; every other string
    is decoded according to ``style``.
    """
    size = bounded_id(max(vocab.values()), label, "the highest token id") + 1 if vocab else 0
    tokens: list[bytes | None] = [None] * size
    for token_id, token in zip(vocab.values(), _decode_all(style, vocab.keys()), strict=True):
        tokens[token_id] = token
    for token_id, (content, _) in added.items():  # every added id is one of vocab's values
        tokens[token_id] = content.encode("utf-8")
    return Vocabulary(
        format=f"tokenizer.json ({model_type}, {style.replace('_', '-')})",
        file=label,
        tokens=tuple(tokens),
        special_ids=frozenset(token_id for token_id, (_, special) in added.items() if special),
    )


def _decode_all(style: str, texts: Iterable[str]) -> list[bytes]:
    """The bytes each vocabulary string stands for, in order."""
    if style == "byte_level":
        return decode_byte_level_many(texts)
    if style == "sentencepiece":
        return [decode_sentencepiece(text) for text in texts]
    return [text.encode("utf-8") for text in texts]


def component_nodes(node: Any) -> list[dict[str, Any]]:
    """A component's JSON node and, for ``Sequence`` nodes, every node inside it (depth first)."""
    if not isinstance(node, dict):
        return []
    out = [node]
    if node.get("type") == "Sequence":
        for key in SEQUENCE_KEYS:
            children = node.get(key)
            for child in children if isinstance(children, list) else []:
                out.extend(component_nodes(child))
    return out


def detect_style(nodes: Iterable[Mapping[str, Any]], *, byte_fallback: bool) -> str:
    """How vocabulary strings encode bytes: ``byte_level``, ``sentencepiece`` or ``plain``.

    ``nodes``: the pre-tokenizer, decoder and normaliser nodes (``component_nodes`` of each). A ``ByteLevel`` node
    means the GPT-2 byte alphabet; a ``Metaspace`` node, a ``Replace`` of U+2581, or a BPE model with byte fallback
    mean SentencePiece-style pieces; anything else is plain UTF-8.
    """
    kinds: set[Any] = set()
    marker = False
    for node in nodes:
        kinds.add(node.get("type"))
        if node.get("type") == "Replace":
            marker = marker or _mentions(node.get("pattern"), SPM_SPACE) or _mentions(node.get("content"), SPM_SPACE)
    if "ByteLevel" in kinds:
        return "byte_level"
    if "Metaspace" in kinds or marker or byte_fallback:
        return "sentencepiece"
    return "plain"


def _mentions(value: Any, char: str) -> bool:
    """True when ``char`` occurs in a string anywhere inside the JSON value ``value``."""
    if isinstance(value, str):
        return char in value
    if isinstance(value, dict):
        return any(_mentions(item, char) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, char) for item in value)
    return False

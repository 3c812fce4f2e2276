"""Hugging Face ``tokenizer.json``: loaded with the ``tokenizers`` library, normalised to token bytes.

The library gives the vocabulary (model vocab plus added tokens); the tokenizer's pre-tokenizer/decoder tell how
vocabulary strings map to bytes: byte-level BPE (GPT-2 alphabet) or SentencePiece-style (U+2581 for space).
Those components are read back from the loaded tokenizer, so the 10-30 MB file is parsed only once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.vocab import Vocabulary, bounded_id, decode_byte_level, decode_sentencepiece


def load(path: Path, label: str) -> Vocabulary:
    """Load ``tokenizer.json`` at ``path``; ``label`` names it in errors."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the library raises a bare Exception carrying its parse error and position
        raise CheckError("malformed", f"{label} cannot be loaded by the tokenizers library: {exc}") from exc
    vocab: dict[str, int] = tokenizer.get_vocab(with_added_tokens=True)
    added = tokenizer.get_added_tokens_decoder()
    parts = [_state(tokenizer.pre_tokenizer), _state(tokenizer.decoder), _state(tokenizer.normalizer)]
    style = _style(parts, byte_fallback=bool(getattr(tokenizer.model, "byte_fallback", False)))
    decode = {"byte_level": decode_byte_level, "sentencepiece": decode_sentencepiece}.get(style, _utf8)
    size = bounded_id(max(vocab.values(), default=-1), label, "the highest token id") + 1 if vocab else 0
    tokens: list[bytes | None] = [None] * size
    for text, token_id in vocab.items():
        tokens[token_id] = _utf8(added[token_id].content) if token_id in added else decode(text)
    return Vocabulary(
        format=f"tokenizer.json ({type(tokenizer.model).__name__}, {style.replace('_', '-')})",
        file=label,
        tokens=tuple(tokens),
        special_ids=frozenset(i for i, tok in added.items() if tok.special),
    )


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _state(component: Any) -> Any:
    """The JSON description of a tokenizers component (None when the tokenizer has none)."""
    if component is None:
        return None
    return json.loads(component.__getstate__())


def _components(node: Any) -> list[dict[str, Any]]:
    """A component and, for Sequence nodes, everything inside it."""
    if not isinstance(node, dict):
        return []
    out = [node]
    for key in ("pretokenizers", "decoders", "normalizers"):
        for child in node.get(key) or []:
            out.extend(_components(child))
    return out


def _style(parts: list[Any], *, byte_fallback: bool) -> str:
    """How vocabulary strings encode bytes: ``byte_level``, ``sentencepiece`` or ``plain``."""
    nodes = [node for part in parts for node in _components(part)]
    kinds = {node.get("type") for node in nodes}
    if "ByteLevel" in kinds:
        return "byte_level"
    marker = any(node.get("type") == "Replace" and "\u2581" in json.dumps(node, ensure_ascii=False) for node in nodes)
    if "Metaspace" in kinds or marker or byte_fallback:
        return "sentencepiece"
    return "plain"

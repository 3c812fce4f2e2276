"""Hugging Face ``tokenizer.json``: the vocabulary read straight from the JSON, without building the tokenizer.

Comparing two 128k vocabularies must take under a second (design.md, budgets). ``tokenizers.Tokenizer.from_file``
builds the whole BPE model, merges included, to hand back a vocabulary that is plainly written in the file: about
half a second per 9 MB Llama 3 file, and as much again to copy the vocabulary into Python. This reader decodes only
what the comparison needs (``model.vocab``, ``added_tokens`` and the pre-tokenizer/decoder/normaliser nodes that
tell how strings map to bytes) with ``msgspec``, which checks the whole file's JSON syntax but skips the merges
without building them, in about a tenth of the time.

It gives exactly the ``Vocabulary`` the library would: added tokens are placed the way ``tokenizers`` (0.23)
places them on load, which is by content, not by the ``id`` written next to them (``_place_added_tokens``).
It handles BPE models, the type of every large LLM tokenizer.json; anything else (WordPiece, WordLevel, Unigram,
legacy files without a model ``type``, components without a ``type``) and every file it cannot decode goes to the
library (``hf_library``), so odd files get exactly the old treatment and broken ones the library's error message.
What it does not re-check, unlike the library: that the merges name vocabulary tokens and that the components
(regexes, unknown types) are ones the library can build; neither changes which bytes an id stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from specdeploy.validate.formats import hf_library
from specdeploy.validate.formats.hf_parts import SEQUENCE_KEYS, build_vocabulary, component_nodes, detect_style
from specdeploy.validate.vocab import Vocabulary

#: Token ids as the library stores them (u32); a file with any other id is left to the library to refuse.
_TokenId = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF)]
_ABSENT = msgspec.Raw()
_NULL = msgspec.Raw(b"null")


class _AddedToken(msgspec.Struct, frozen=True):
    """One ``added_tokens`` entry; like the library, every field is required."""

    id: _TokenId
    content: str
    single_word: bool
    lstrip: bool
    rstrip: bool
    normalized: bool
    special: bool


class _Model(msgspec.Struct):
    type: str = ""
    vocab: dict[str, _TokenId] | None = None
    merges: msgspec.Raw = _ABSENT  # never decoded: only its presence as a JSON array is checked
    byte_fallback: bool | None = None


class _File(msgspec.Struct):
    version: str = "1.0"
    model: _Model | None = None
    added_tokens: list[_AddedToken] = msgspec.field(default_factory=list)
    normalizer: msgspec.Raw = _NULL
    pre_tokenizer: msgspec.Raw = _NULL
    decoder: msgspec.Raw = _NULL


_DECODER = msgspec.json.Decoder(_File)


@dataclass(frozen=True)
class Parts:
    """What the direct reader took from a tokenizer.json: the inputs of ``build_vocabulary``."""

    model_type: str
    style: str
    vocab: dict[str, int]
    added: dict[int, tuple[str, bool]]


def load(path: Path, label: str) -> Vocabulary:
    """Load ``tokenizer.json`` at ``path``; ``label`` names it in errors."""
    parts = read(path.read_bytes())
    if parts is None:
        return hf_library.load(path, label)
    return build_vocabulary(
        label=label, model_type=parts.model_type, style=parts.style, vocab=parts.vocab, added=parts.added
    )


def read(data: bytes) -> Parts | None:
    """The vocabulary parts of a BPE tokenizer.json; None when the file is not one this reader handles."""
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):  # malformed, or not the expected shape: the library decides
        return None
    model = doc.model
    if doc.version != "1.0" or model is None or model.type != "BPE" or model.vocab is None:
        return None
    if bytes(memoryview(model.merges)[:1]) != b"[":  # the library refuses a BPE model without merges
        return None
    nodes = _component_nodes((doc.pre_tokenizer, doc.decoder, doc.normalizer))
    if nodes is None:
        return None
    vocab = model.vocab
    by_content, added = _place_added_tokens(doc.added_tokens, vocab)
    vocab.update(by_content)  # as get_vocab(with_added_tokens=True): added tokens override model entries
    return Parts(
        model_type="BPE",
        style=detect_style(nodes, byte_fallback=bool(model.byte_fallback)),
        vocab=vocab,
        added=added,
    )


def _component_nodes(components: tuple[msgspec.Raw, ...]) -> list[dict[str, Any]] | None:
    """Every node of the given components; None if one is not a JSON object tree with a ``type`` on each node."""
    nodes: list[dict[str, Any]] = []
    for raw in components:
        try:
            value = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            return None
        if value is None:
            continue
        found = component_nodes(value)
        if not found or not all(_well_formed(node) for node in found):
            return None
        nodes.extend(found)
    return nodes


def _well_formed(node: dict[str, Any]) -> bool:
    if not isinstance(node.get("type"), str):
        return False
    return node["type"] != "Sequence" or any(isinstance(node.get(key), list) for key in SEQUENCE_KEYS)


def _place_added_tokens(
    tokens: list[_AddedToken], vocab: dict[str, int]
) -> tuple[dict[str, int], dict[int, tuple[str, bool]]]:
    """The added tokens with the ids ``tokenizers`` gives them when it loads the file: content -> id, and
    id -> (content, special).

    The library ignores the ``id`` written in the file (it only logs a warning when they differ). In file order, an
    empty token is skipped and one identical to an earlier entry is skipped; otherwise the token takes the id of an
    earlier added token with the same content, else the id of the same string in the model vocabulary, else the
    next free id, counting up from the number of model vocabulary entries. A later token given an id already
    taken replaces the earlier one at that id.
    """
    by_content: dict[str, int] = {}
    by_id: dict[int, _AddedToken] = {}
    next_id = len(vocab)
    for token in tokens:
        if not token.content:
            continue
        known = by_content.get(token.content)
        if known is not None and _same(by_id.get(known), token):
            continue
        token_id = known if known is not None else vocab.get(token.content)
        if token_id is None:
            token_id, next_id = next_id, next_id + 1
        by_content[token.content] = token_id
        by_id[token_id] = token
    return by_content, {token_id: (token.content, token.special) for token_id, token in by_id.items()}


def _same(a: _AddedToken | None, b: _AddedToken) -> bool:
    """Equal as the library compares added tokens: every field but the id."""
    return a is not None and (a.content, a.single_word, a.lstrip, a.rstrip, a.normalized, a.special) == (
        b.content,
        b.single_word,
        b.lstrip,
        b.rstrip,
        b.normalized,
        b.special,
    )

"""One representation of a vocabulary, whatever file format it came from, so two can be compared id by id.

A token is stored as the bytes it stands for: tiktoken and tekken ranks are bytes already; byte-level BPE
strings (GPT-2 alphabet, used by tokenizer.json for Llama 3, Qwen, Mistral tekken) are mapped back to bytes;
SentencePiece pieces have their word-boundary marker U+2581 turned into a space. Special and added tokens keep
their literal text. The same tokenizer shipped as tokenizer.json and as tiktoken therefore compares equal.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from specdeploy.validate.errors import CheckError

SPM_SPACE = "\u2581"
#: The most ids a vocabulary may have. The largest published vocabularies hold about 262,000 ids (Gemma 3); a file
#: that claims an id beyond four times that is not a tokenizer, and believing it would allocate gigabytes (the
#: table is indexed by id) before any check could say so.
MAX_VOCAB_IDS = 1 << 20


def bounded_id(token_id: int, label: str, what: str = "token id") -> int:
    """``token_id`` if it can index a real vocabulary; otherwise a ``malformed`` error naming ``label``."""
    if not 0 <= token_id < MAX_VOCAB_IDS:
        raise CheckError(
            "malformed",
            f"{label}: {what} {token_id:,} is outside 0..{MAX_VOCAB_IDS - 1:,}; no real tokenizer has that many ids",
        )
    return token_id


def bounded_size(count: int, label: str, what: str) -> int:
    """``count`` ids if a real vocabulary can have that many; otherwise a ``malformed`` error naming ``label``."""
    if not 0 <= count <= MAX_VOCAB_IDS:
        raise CheckError(
            "malformed", f"{label}: {what} is {count:,}, more than the {MAX_VOCAB_IDS:,} ids of any real tokenizer"
        )
    return count


@dataclass(frozen=True)
class Vocabulary:
    """A tokenizer's vocabulary as id -> token bytes, with the ids that are special (control/added) tokens."""

    format: str
    file: str
    tokens: tuple[bytes | None, ...]
    special_ids: frozenset[int] = frozenset()
    roles: dict[str, int] = field(default_factory=dict)  # bos/eos/unk/pad as the tokenizer file itself defines

    @property
    def size(self) -> int:
        """Number of ids (highest id + 1), the quantity that must fit the model's embedding rows."""
        return len(self.tokens)

    @cached_property
    def ids(self) -> dict[bytes, int]:
        """token -> id (the lowest id wins when a token appears twice)."""
        out: dict[bytes, int] = {}
        for i, tok in enumerate(self.tokens):
            if tok is not None and tok not in out:
                out[tok] = i
        return out

    def token(self, token_id: int) -> bytes | None:
        return self.tokens[token_id] if 0 <= token_id < len(self.tokens) else None

    def text(self, token_id: int) -> str | None:
        """A printable rendering of a token for messages."""
        tok = self.token(token_id)
        return None if tok is None else display(tok)


def display(token: bytes, limit: int = 40) -> str:
    """Render token bytes readably: UTF-8 where possible, \\x escapes otherwise, truncated to ``limit``."""
    text = token.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def byte_level_alphabet() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-character table used by byte-level BPE vocabularies.

    Printable Latin-1 bytes stand for themselves; the remaining 68 bytes are assigned, in byte order, to the
    code points from U+0100 upward.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


@cache
def _byte_level_translation() -> dict[int, int]:
    """Code point of each byte-level character -> the byte it stands for, for ``str.translate``."""
    return {ord(ch): b for ch, b in byte_level_alphabet().items()}


@cache
def _byte_level_codec() -> Any:
    """The byte-level alphabet as a charmap encoding table: encodes a whole string in C, and refuses (raises
    ``UnicodeEncodeError`` for) any character outside the alphabet."""
    by_byte = {b: ch for ch, b in byte_level_alphabet().items()}
    return codecs.charmap_build("".join(by_byte[b] for b in range(256)))


def decode_byte_level_many(tokens: Iterable[str]) -> list[bytes]:
    """Bytes of each byte-level BPE vocabulary string, in order: one byte per character of the alphabet (encoded in
    C through the charmap table, looked up once); a string with characters outside it keeps those as UTF-8."""
    encode, table = codecs.charmap_encode, _byte_level_codec()
    out: list[bytes] = []
    append = out.append
    for token in tokens:
        try:
            append(encode(token, "strict", table)[0])
        except UnicodeEncodeError:
            append(_decode_byte_level_mixed(token))
    return out


def _decode_byte_level_mixed(token: str) -> bytes:
    """A string with characters outside the byte-level alphabet: if they are all below U+0100 they stand for the
    byte of the same value; otherwise alphabet characters become their bytes and the others are kept as UTF-8."""
    try:  # every character maps to one byte (code point < 256 after translation)
        return token.translate(_byte_level_translation()).encode("latin-1")
    except UnicodeEncodeError:
        table = byte_level_alphabet()
        return b"".join(bytes([table[ch]]) if ch in table else ch.encode("utf-8") for ch in token)


def decode_sentencepiece(piece: str) -> bytes:
    """Bytes of a SentencePiece-style piece: the U+2581 word marker is a space."""
    return piece.replace(SPM_SPACE, " ").encode("utf-8")

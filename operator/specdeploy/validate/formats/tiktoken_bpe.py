"""tiktoken BPE files (Llama 3 ``tokenizer.model``, ``*.tiktoken``): one ``base64-token rank`` pair per line.

The file holds only the mergeable ranks; special tokens come from tokenizer_config.json's
``added_tokens_decoder``. Without it, a 128,000-rank file is Meta's Llama 3 tokenizer, whose reference code
appends 256 special tokens in a fixed order; that convention is applied so a native-format folder (params.json +
tokenizer.model) still has named special tokens.
"""

from __future__ import annotations

import base64
import binascii
import re

from specdeploy.validate.errors import CheckError
from specdeploy.validate.formats.added import AddedToken
from specdeploy.validate.vocab import MAX_VOCAB_IDS, Vocabulary, bounded_id

_FIRST_LINE = re.compile(rb"^[A-Za-z0-9+/]+={0,2} \d+\r?$")

LLAMA3_BASE_RANKS = 128000
_LLAMA3_NAMED = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
    "<|image|>",
)
_LLAMA3_SPECIALS = 256


def looks_like_tiktoken(data: bytes) -> bool:
    """True when the file starts with a ``base64 rank`` line (a SentencePiece model is binary protobuf)."""
    first = data[:512].split(b"\n", 1)[0]
    return bool(_FIRST_LINE.match(first))


def parse_ranks(data: bytes, label: str) -> list[bytes | None]:
    """rank -> token bytes; errors name the line."""
    tokens: list[bytes | None] = []
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            encoded, rank_text = line.split()
            token = base64.b64decode(encoded, validate=True)
            rank = int(rank_text)
        except (ValueError, binascii.Error) as exc:
            raise CheckError("malformed", f"{label} line {lineno} is not 'base64-token rank'") from exc
        if not 0 <= rank < MAX_VOCAB_IDS:  # the check inline: the call and its label cost ~20 ms per 128k lines
            bounded_id(rank, f"{label} line {lineno}", "rank")
        if rank < len(tokens):
            if tokens[rank] is not None:
                raise CheckError("malformed", f"{label} line {lineno}: rank {rank} appears twice")
            tokens[rank] = token
            continue
        tokens.extend([None] * (rank - len(tokens)))
        tokens.append(token)
    if not tokens:
        raise CheckError("malformed", f"{label} holds no tokens")
    return tokens


def llama3_specials(base: int) -> dict[int, AddedToken]:
    """Meta's Llama 3 reference special tokens, appended after the ``base`` mergeable ranks."""
    names = [*_LLAMA3_NAMED]
    names += [f"<|reserved_special_token_{2 + i}|>" for i in range(_LLAMA3_SPECIALS - len(names))]
    return {base + i: AddedToken(content=name, special=True) for i, name in enumerate(names)}


def load(data: bytes, label: str, added: dict[int, AddedToken]) -> Vocabulary:
    """Build the vocabulary of a tiktoken file plus its added tokens."""
    tokens = parse_ranks(data, label)
    base = len(tokens)
    convention = ""
    if not added and base == LLAMA3_BASE_RANKS:
        added = llama3_specials(base)
        convention = ", Llama 3 special tokens"
    for token_id, token in sorted(added.items()):
        while len(tokens) <= token_id:
            tokens.append(None)
        tokens[token_id] = token.content.encode("utf-8")
    return Vocabulary(
        format=f"tiktoken{convention}",
        file=label,
        tokens=tuple(tokens),
        special_ids=frozenset(i for i, tok in added.items() if tok.special),
    )

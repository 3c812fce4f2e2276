"""Added and special tokens declared in tokenizer_config.json (``added_tokens_decoder``).

Formats without their own special-token table (tiktoken files, SentencePiece models extended by HF) rely on
this list to give ids beyond the base vocabulary a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.vocab import bounded_id


@dataclass(frozen=True)
class AddedToken:
    content: str
    special: bool


def from_tokenizer_config(config: dict[str, Any] | None, *, label: str) -> dict[int, AddedToken]:
    """id -> added token from ``added_tokens_decoder``; empty when the file or the key is absent."""
    if not config:
        return {}
    table = config.get("added_tokens_decoder")
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise CheckError("malformed", f"{label}: added_tokens_decoder must be an object of id -> token")
    out: dict[int, AddedToken] = {}
    for key, entry in table.items():
        try:
            token_id = int(key)
        except ValueError as exc:
            raise CheckError("malformed", f"{label}: added_tokens_decoder key {key!r} is not a token id") from exc
        content = entry.get("content") if isinstance(entry, dict) else None
        if not isinstance(content, str) or token_id < 0:
            raise CheckError("malformed", f"{label}: added_tokens_decoder[{key}] has no string 'content'")
        bounded_id(token_id, label, "added_tokens_decoder id")
        out[token_id] = AddedToken(content=content, special=bool(entry.get("special", False)))
    return out

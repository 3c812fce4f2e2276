"""Mistral ``tekken.json``: tiktoken-style ranks plus a block of special tokens placed before them.

Facts of the format (as mistral-common reads it): the first ``default_num_special_tokens`` ids are special
tokens (from the file's ``special_tokens`` list, or the 20 legacy names for files that lack it, padded with
``<SPECIAL_n>``); vocabulary rank r has id ``r + num_special``; the total is ``default_vocab_size``.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.files import read_json
from specdeploy.validate.vocab import Vocabulary, bounded_size

_LEGACY_SPECIALS = (
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "<pad>",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
)
_ROLE_NAMES = {"bos": "<s>", "eos": "</s>", "unk": "<unk>", "pad": "<pad>"}


def load(path: Path, label: str) -> Vocabulary:
    """Load a tekken.json file; ``label`` names it in errors."""
    spec = read_json(path, label)
    config = spec.get("config")
    vocab = spec.get("vocab")
    if not isinstance(config, dict) or not isinstance(vocab, list):
        raise CheckError("malformed", f"{label} lacks the 'config' object or the 'vocab' list of a tekken file")
    num_special = bounded_size(
        _positive(config, "default_num_special_tokens", label), label, "config.default_num_special_tokens"
    )
    total = bounded_size(_positive(config, "default_vocab_size", label), label, "config.default_vocab_size")
    specials = _specials(spec.get("special_tokens"), num_special, label)
    tokens: list[bytes | None] = [name.encode("utf-8") for name in specials]
    inner = total - num_special
    regular: list[bytes | None] = [None] * inner
    for entry in vocab:
        rank = entry.get("rank") if isinstance(entry, dict) else None
        if not isinstance(rank, int):
            raise CheckError("malformed", f"{label}: vocab entry without an integer 'rank'")
        if rank >= inner:
            continue
        try:
            regular[rank] = base64.b64decode(entry["token_bytes"], validate=True)
        except (KeyError, binascii.Error, TypeError) as exc:
            raise CheckError("malformed", f"{label}: vocab rank {rank} has no valid base64 'token_bytes'") from exc
    tokens.extend(regular)
    lookup = {name: i for i, name in enumerate(specials)}
    roles = {role: lookup[name] for role, name in _ROLE_NAMES.items() if name in lookup}
    return Vocabulary(
        format="tekken",
        file=label,
        tokens=tuple(tokens),
        special_ids=frozenset(range(num_special)),
        roles=roles,
    )


def _positive(config: dict[str, Any], key: str, label: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or value <= 0:
        raise CheckError("malformed", f"{label}: config.{key} must be a positive integer")
    return value


def _specials(declared: Any, count: int, label: str) -> list[str]:
    names: list[str | None] = [None] * count
    if declared is None:
        entries = [{"rank": i, "token_str": name} for i, name in enumerate(_LEGACY_SPECIALS)]
    elif isinstance(declared, list):
        entries = declared
    else:
        raise CheckError("malformed", f"{label}: special_tokens must be a list")
    for entry in entries:
        rank, text = (entry.get("rank"), entry.get("token_str")) if isinstance(entry, dict) else (None, None)
        if not isinstance(rank, int) or not isinstance(text, str) or not 0 <= rank < count:
            raise CheckError("malformed", f"{label}: special token entry {entry!r} is invalid")
        names[rank] = text
    return [name if name is not None else f"<SPECIAL_{i}>" for i, name in enumerate(names)]

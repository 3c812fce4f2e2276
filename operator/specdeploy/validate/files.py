"""Which files of a model repository the validator may read, how big each may be, and how to read them safely.

The validator must never touch weights: this module is the single allow-list, shared by the Hugging Face fetcher
and the local-folder reader, so both fetch exactly the same metadata. Size caps keep a hostile or broken repo
(a 5 GB "tokenizer.json") from exhausting the Job's memory; each error names the offending file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specdeploy.validate.errors import CheckError

MiB = 1024 * 1024

CONFIG_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json")
PARAMS_FILE = "params.json"  # Mistral / Llama native ("consolidated") format
FALLBACK_FOLDER = "original"  # Llama repos keep the native params.json and tiktoken file here

_SMALL_CAP = 1 * MiB
_TOKENIZER_CONFIG_CAP = 16 * MiB  # some list thousands of added tokens (Gemma 3: ~1.2 MB)
_TOKENIZER_CAP = 64 * MiB  # the largest real tokenizer.json files are ~33 MB

_MISTRAL_SPM = re.compile(r"^tokenizer\.model\.v(\d+)(m\d+)?$")


@dataclass(frozen=True)
class FilePlan:
    """The repository paths to fetch for one model: configs plus exactly one tokenizer file (if any)."""

    configs: tuple[str, ...]
    tokenizer: str | None

    @property
    def paths(self) -> tuple[str, ...]:
        return (*self.configs, self.tokenizer) if self.tokenizer else self.configs


def size_cap(path: str) -> int:
    """The largest size in bytes accepted for the repository file ``path``."""
    name = path.rsplit("/", 1)[-1]
    if name == "tokenizer_config.json":
        return _TOKENIZER_CONFIG_CAP
    if name in CONFIG_FILES or name == PARAMS_FILE:
        return _SMALL_CAP
    return _TOKENIZER_CAP


def is_allowed(path: str) -> bool:
    """True for the metadata files the validator may read; never true for weights or code."""
    parts = path.split("/")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != FALLBACK_FOLDER):
        return False
    name = parts[-1]
    return name in CONFIG_FILES or name == PARAMS_FILE or _tokenizer_rank(name) is not None


def _tokenizer_rank(name: str) -> tuple[int, int] | None:
    """Preference order of tokenizer files (lower is better); None if ``name`` is not a tokenizer file."""
    if name == "tokenizer.json":
        return (0, 0)
    if name == "tekken.json":
        return (1, 0)
    if name == "tokenizer.model":
        return (2, 0)
    match = _MISTRAL_SPM.match(name)
    if match:
        return (3, -int(match.group(1)))  # the newest Mistral SentencePiece version first
    if name.endswith(".tiktoken"):
        return (4, 0)
    return None


def plan_files(listing: Iterable[str]) -> FilePlan:
    """Choose what to fetch from a repository listing: configs, params.json and the best tokenizer file.

    Top-level files win; ``original/`` is only used for what the top level lacks (Llama's native layout).
    """
    present = set(listing)
    configs = [name for name in (*CONFIG_FILES, PARAMS_FILE) if name in present]
    if PARAMS_FILE not in present and f"{FALLBACK_FOLDER}/{PARAMS_FILE}" in present and "config.json" not in present:
        configs.append(f"{FALLBACK_FOLDER}/{PARAMS_FILE}")
    tokenizer = _best_tokenizer(p for p in present if "/" not in p)
    if tokenizer is None:
        inner = _best_tokenizer(p.split("/", 1)[1] for p in present if p.startswith(f"{FALLBACK_FOLDER}/"))
        tokenizer = f"{FALLBACK_FOLDER}/{inner}" if inner else None
    return FilePlan(configs=tuple(configs), tokenizer=tokenizer)


def _best_tokenizer(names: Iterable[str]) -> str | None:
    ranked = [(rank, name) for name in names if (rank := _tokenizer_rank(name)) is not None]
    return min(ranked)[1] if ranked else None


def check_size(path: Path, label: str) -> int:
    """The size of ``path``; raises ``oversized`` when it exceeds the cap for its kind of file."""
    size = path.stat().st_size
    cap = size_cap(label)
    if size > cap:
        raise CheckError(
            "oversized",
            f"{label} is {size / MiB:.1f} MiB, more than the {cap // MiB} MiB allowed for this file; "
            "this does not look like model metadata",
        )
    return size


def read_json(path: Path, label: str) -> dict[str, Any]:
    """Parse a JSON object from ``path``; errors name ``label`` and the position of the problem."""
    check_size(path, label)
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise CheckError("malformed", f"{label} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except UnicodeDecodeError as exc:
        raise CheckError("malformed", f"{label} is not UTF-8 text") from exc
    except RecursionError as exc:  # Python's parser recurses per nesting level; no model file nests that deep
        raise CheckError("malformed", f"{label} nests JSON arrays or objects too deeply to be model metadata") from exc
    if not isinstance(data, dict):
        raise CheckError("malformed", f"{label} must hold a JSON object, found {type(data).__name__}")
    return data

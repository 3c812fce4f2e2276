"""A model as the checks see it: its files, parsed config, vocabulary and special tokens, loaded once.

Loading is where malformed files are found; every error is attributed to the side (target or draft) and the
file, so a user knows which repository to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.files import read_json
from specdeploy.validate.formats import load_vocabulary
from specdeploy.validate.modelconfig import ModelConfig, load_config
from specdeploy.validate.modelfiles import ModelFiles
from specdeploy.validate.sizing import ParameterEstimate, estimate_parameters
from specdeploy.validate.specials import SpecialTokens, resolve
from specdeploy.validate.vocab import Vocabulary

_TOKENIZER_SUFFIXES = ("tokenizer.json", "tekken.json", ".tiktoken")


@dataclass(frozen=True)
class Model:
    """Everything known about one side of the pair."""

    role: str
    files: ModelFiles
    config: ModelConfig
    vocab: Vocabulary | None
    specials: SpecialTokens
    params: ParameterEstimate | None

    @property
    def spec(self) -> str:
        return self.files.spec

    def summary(self) -> dict[str, Any]:
        """The report's description of this model (compact: it must fit the termination message)."""
        cfg = self.config
        out: dict[str, Any] = {
            "model": self.files.spec,
            "source": self.files.origin,
            "revision": self.files.revision,
            "commit": self.files.commit,
            "model_type": cfg.model_type,
            "architecture": cfg.architectures[0] if cfg.architectures else None,
            "hidden_size": cfg.hidden_size,
            "vocab_size": cfg.vocab_size,
            "max_len": cfg.max_len,
            "dtype": cfg.dtype,
            "params": self.params.total if self.params else None,
            "tokenizer": f"{self.vocab.format}: {self.vocab.size} ids" if self.vocab else None,
            "files": sorted(self.files.files),
            "metadata_bytes": self.files.bytes_read,
            "downloaded_bytes": self.files.bytes_downloaded,
        }
        return {k: v for k, v in out.items() if v is not None}


def load_model(files: ModelFiles, role: str) -> Model:
    """Parse the metadata of one model; errors name ``role`` and the file."""
    try:
        config = load_config(files.get("config.json"), files.get("params.json"), files.get("generation_config.json"))
        tokenizer_config = _optional_json(files, "tokenizer_config.json")
        special_map = _optional_json(files, "special_tokens_map.json")
        vocab = None
        tokenizer_name = next((n for n in files.files if _is_tokenizer(n)), None)
        if tokenizer_name is not None:
            vocab = load_vocabulary(tokenizer_name, files.files[tokenizer_name], tokenizer_config)
    except CheckError as exc:
        raise exc.with_source(role) from None
    return Model(
        role=role,
        files=files,
        config=config,
        vocab=vocab,
        specials=resolve(config, vocab, tokenizer_config, special_map),
        params=estimate_parameters(config),
    )


def _is_tokenizer(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(_TOKENIZER_SUFFIXES) or base.startswith("tokenizer.model")


def _optional_json(files: ModelFiles, name: str) -> dict[str, Any] | None:
    path = files.get(name)
    return read_json(path, name) if path is not None else None

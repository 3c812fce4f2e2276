"""Tokenizer file formats: each submodule turns one format into a ``Vocabulary``; ``load_vocabulary`` picks one.

Formats: Hugging Face ``tokenizer.json`` (BPE models read directly, others via the ``tokenizers`` library),
SentencePiece ``tokenizer.model`` / ``tokenizer.model.vN`` (via ``sentencepiece``), tiktoken BPE files
(``*.tiktoken`` or a ``tokenizer.model`` that holds base64 ranks; parsed directly) and Mistral's ``tekken.json``.
None of them needs transformers or torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specdeploy.validate.files import check_size
from specdeploy.validate.vocab import Vocabulary


def load_vocabulary(name: str, path: Path, tokenizer_config: dict[str, Any] | None) -> Vocabulary:
    """Load the tokenizer file ``name`` (its path inside the repo) from ``path``."""
    check_size(path, name)
    base = name.rsplit("/", 1)[-1]
    if base == "tokenizer.json":
        from specdeploy.validate.formats import hf_json

        return hf_json.load(path, name)
    if base == "tekken.json":
        from specdeploy.validate.formats import tekken

        return tekken.load(path, name)
    from specdeploy.validate.formats import added, tiktoken_bpe

    extra = added.from_tokenizer_config(tokenizer_config, label="tokenizer_config.json")
    data = path.read_bytes()
    if base.endswith(".tiktoken") or tiktoken_bpe.looks_like_tiktoken(data):
        return tiktoken_bpe.load(data, name, extra)
    from specdeploy.validate.formats import sentencepiece_model

    return sentencepiece_model.load(data, name, extra)

"""``tokenizer.json`` read through the ``tokenizers`` library: every model type, and the library's own verdict.

This is the authority the direct reader (``hf_json``) is tested against, and the path taken for everything that
reader does not handle: WordPiece, WordLevel and Unigram models, legacy files without a model ``type``, and any
file the direct reader finds malformed (so a broken file gets the library's error, with its line and column).
``Tokenizer.from_file`` builds the complete model (BPE merges included), which costs about half a second for a
128k vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.formats.hf_parts import build_vocabulary, component_nodes, detect_style
from specdeploy.validate.vocab import Vocabulary


def load(path: Path, label: str) -> Vocabulary:
    """Load ``tokenizer.json`` at ``path`` with the ``tokenizers`` library; ``label`` names it in errors."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the library raises a bare Exception carrying its parse error and position
        raise CheckError("malformed", f"{label} cannot be loaded by the tokenizers library: {exc}") from exc
    nodes = [
        node
        for component in (tokenizer.pre_tokenizer, tokenizer.decoder, tokenizer.normalizer)
        for node in component_nodes(_state(component))
    ]
    return build_vocabulary(
        label=label,
        model_type=type(tokenizer.model).__name__,
        style=detect_style(nodes, byte_fallback=bool(getattr(tokenizer.model, "byte_fallback", False))),
        vocab=tokenizer.get_vocab(with_added_tokens=True),
        added={i: (token.content, bool(token.special)) for i, token in tokenizer.get_added_tokens_decoder().items()},
    )


def _state(component: Any) -> Any:
    """The JSON description of a tokenizers component (None when the tokenizer has none)."""
    if component is None:
        return None
    return json.loads(component.__getstate__())

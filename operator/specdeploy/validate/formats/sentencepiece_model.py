"""SentencePiece ``tokenizer.model`` (Llama 2, Mistral v1/v3, Gemma): loaded with ``sentencepiece``.

Pieces keep their ids; byte-fallback pieces (``<0x0A>``) and control pieces stay literal; the U+2581 marker
becomes a space. The model's own bos/eos/unk/pad ids are recorded; ``added_tokens_decoder`` entries from
tokenizer_config.json extend or name ids the way Hugging Face does.
"""

from __future__ import annotations

from specdeploy.validate.errors import CheckError
from specdeploy.validate.formats.added import AddedToken
from specdeploy.validate.vocab import Vocabulary, decode_sentencepiece


def load(data: bytes, label: str, added: dict[int, AddedToken]) -> Vocabulary:
    """Load a serialized SentencePiece model; ``label`` names the file in errors."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(data)
    except Exception as exc:  # sentencepiece raises RuntimeError/OSError with its parser message
        raise CheckError("malformed", f"{label} is neither a SentencePiece model nor a tiktoken file ({exc})") from exc
    size = processor.get_piece_size()
    tokens: list[bytes | None] = []
    special: set[int] = set()
    for i in range(size):
        piece = processor.id_to_piece(i)
        if processor.is_control(i) or processor.is_unknown(i):
            special.add(i)
            tokens.append(piece.encode("utf-8"))
        elif processor.is_byte(i):
            tokens.append(piece.encode("utf-8"))
        else:
            tokens.append(decode_sentencepiece(piece))
    for token_id, token in sorted(added.items()):
        while len(tokens) <= token_id:
            tokens.append(None)
        tokens[token_id] = token.content.encode("utf-8")
        if token.special:
            special.add(token_id)
    roles = {
        role: token_id
        for role, token_id in (
            ("bos", processor.bos_id()),
            ("eos", processor.eos_id()),
            ("unk", processor.unk_id()),
            ("pad", processor.pad_id()),
        )
        if token_id >= 0
    }
    return Vocabulary(
        format="sentencepiece", file=label, tokens=tuple(tokens), special_ids=frozenset(special), roles=roles
    )

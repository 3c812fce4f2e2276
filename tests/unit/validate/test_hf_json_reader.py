"""The direct tokenizer.json reader gives exactly the vocabulary the ``tokenizers`` library gives, on every file.

Each case loads one file twice, through ``formats.hf_json`` (msgspec, no model built) and through
``formats.hf_library`` (``Tokenizer.from_file``, the previous implementation and the reference), and requires the
same ``Vocabulary``: ids, token bytes, special ids, model type and style. Files: Llama 3 and Mistral converted from
the real files that llama-models and mistral-common ship, tokenizers trained here with the library itself in every
style the validator tells apart, hand-written added-token corner cases, and a few hundred random ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.harness import zoo

from specdeploy.validate.errors import CheckError
from specdeploy.validate.formats import hf_json, hf_library, load_vocabulary
from specdeploy.validate.vocab import Vocabulary

SPM = "\u2581"


def both(path: Path) -> tuple[Vocabulary | str, Vocabulary | str]:
    """(direct reader, library) results for ``path``; an error becomes its kind and message."""

    def run(load: Callable[[Path, str], Vocabulary]) -> Vocabulary | str:
        try:
            return load(path, "tokenizer.json")
        except CheckError as err:
            return f"{err.kind}: {err.message}"

    return run(hf_json.load), run(hf_library.load)


def assert_same(path: Path, *, direct: bool = True) -> Vocabulary:
    """The two readers agree on ``path``; ``direct``: the fast reader handled it itself (no library fallback)."""
    assert (hf_json.read(path.read_bytes()) is not None) is direct
    fast, library = both(path)
    assert isinstance(library, Vocabulary), library
    assert isinstance(fast, Vocabulary), fast
    if fast != library:  # say where, not just that 128k-entry tuples differ
        assert (fast.format, fast.size, fast.special_ids) == (library.format, library.size, library.special_ids)
        first = next(i for i, (a, b) in enumerate(zip(fast.tokens, library.tokens, strict=True)) if a != b)
        raise AssertionError(f"id {first}: direct {fast.tokens[first]!r}, library {library.tokens[first]!r}")
    return fast


def write(tmp_path: Path, spec: dict[str, Any] | str, name: str = "tokenizer.json") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec, ensure_ascii=False))
    return path


# --- real tokenizers ------------------------------------------------------------------------------------------------


def test_llama3_tokenizer_json_is_read_directly_and_equals_the_library(tmp_path: Path) -> None:
    vocab = assert_same(write(tmp_path, zoo.llama3_tokenizer_json_text()))
    assert vocab.size == 128256 and len(vocab.special_ids) == 256
    assert vocab.format == "tokenizer.json (BPE, byte-level)"
    assert vocab.tokens[128000] == b"<|begin_of_text|>" and vocab.tokens[1917] == b" world"


@pytest.mark.parametrize("model", [zoo.SPM_V1, zoo.SPM_V3], ids=["mistral-v1", "mistral-v3"])
def test_mistral_tokenizer_json_is_read_directly_and_equals_the_library(tmp_path: Path, model: Path) -> None:
    vocab = assert_same(write(tmp_path, zoo.mistral_tokenizer_json_text(model)))
    assert vocab.format == "tokenizer.json (BPE, sentencepiece)"
    assert vocab.tokens[:3] == (b"<unk>", b"<s>", b"</s>") and {0, 1, 2} <= vocab.special_ids
    assert vocab.tokens[3] in (b"<0x00>", b"[INST]")  # v1 starts its byte pieces there, v3 its control tokens


# --- tokenizers trained here, one per style and model type -----------------------------------------------------------

CORPUS = [
    "The quick brown fox jumps over the lazy dog, then naps until 10:45.",
    "def add(a, b):\n    return a + b  # tabs\tand  double  spaces",
    "Größe, café, naïve: les élèves étudient à l'école.",
    "東京は日本の首都です。 Привет, мир! مرحبا بالعالم",
    "Emoji 🙂🚀 and symbols ©®™ and a non-breaking\u00a0space.",
    "<s>tags</s> that look special but are plain text in the corpus",
]


def _train(model: Any, trainer: Any, setup: Callable[[Any], None]) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer(model)
    setup(tokenizer)
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    return tokenizer


def byte_level_bpe() -> Any:
    from tokenizers import decoders, models, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        t.decoder = decoders.ByteLevel()

    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    return _train(models.BPE(), trainer, setup)


def metaspace_bpe_with_byte_fallback() -> Any:
    from tokenizers import decoders, models, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPM, prepend_scheme="first")
        t.decoder = decoders.Sequence(
            [decoders.Replace(SPM, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )

    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"])
    return _train(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True), trainer, setup)


def llama2_style_bpe() -> Any:
    """Llama 2's layout: no pre-tokenizer; the normaliser turns spaces into U+2581; byte fallback."""
    from tokenizers import decoders, models, normalizers, trainers

    def setup(t: Any) -> None:
        t.normalizer = normalizers.Sequence([normalizers.Prepend(SPM), normalizers.Replace(" ", SPM)])
        t.decoder = decoders.Sequence([decoders.Replace(SPM, " "), decoders.ByteFallback(), decoders.Fuse()])

    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"])
    return _train(models.BPE(unk_token="<unk>", byte_fallback=True), trainer, setup)


def replace_marker_bpe() -> Any:
    """SentencePiece-style only through a Replace of U+2581 (no Metaspace, no byte fallback)."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.normalizer = normalizers.Replace(" ", SPM)
        t.pre_tokenizer = pre_tokenizers.Split(SPM, behavior="merged_with_next")
        t.decoder = decoders.Replace(SPM, " ")

    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>"])
    return _train(models.BPE(unk_token="<unk>"), trainer, setup)


def plain_bpe_with_suffix() -> Any:
    """Whitespace pre-tokenizer and an end-of-word suffix, CLIP-like: plain UTF-8 strings."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.pre_tokenizer = pre_tokenizers.Whitespace()
        t.decoder = decoders.BPEDecoder(suffix="</w>")

    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>"], end_of_word_suffix="</w>")
    return _train(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"), trainer, setup)


def wordpiece() -> Any:
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.normalizer = normalizers.BertNormalizer(lowercase=True)
        t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        t.decoder = decoders.WordPiece()

    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"])
    return _train(models.WordPiece(unk_token="[UNK]"), trainer, setup)


def wordlevel() -> Any:
    from tokenizers import models, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.pre_tokenizer = pre_tokenizers.Whitespace()

    return _train(models.WordLevel(unk_token="<unk>"), trainers.WordLevelTrainer(special_tokens=["<unk>"]), setup)


def unigram_with_byte_fallback() -> Any:
    from tokenizers import decoders, models, pre_tokenizers, trainers

    def setup(t: Any) -> None:
        t.pre_tokenizer = pre_tokenizers.Metaspace()
        t.decoder = decoders.Metaspace()

    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<unk>", "<s>"], unk_token="<unk>")
    return _train(models.Unigram([("<unk>", 0.0)], 0, True), trainer, setup)


def _with_added_tokens(tokenizer: Any) -> Any:
    """Added tokens as fine-tunes add them: new specials, a new plain token, one already in the vocabulary."""
    from tokenizers import AddedToken

    tokenizer.add_special_tokens(["<|tool|>", AddedToken("<|end|>", special=True, lstrip=True)])
    tokenizer.add_tokens(["<think>", AddedToken("the", normalized=False)])
    return tokenizer


TRAINED: dict[str, tuple[Callable[[], Any], bool, str]] = {
    # name: (builder, read directly, style in the format)
    "byte-level BPE": (byte_level_bpe, True, "BPE, byte-level"),
    "Metaspace BPE with byte fallback": (metaspace_bpe_with_byte_fallback, True, "BPE, sentencepiece"),
    "Llama 2 style BPE": (llama2_style_bpe, True, "BPE, sentencepiece"),
    "Replace-marker BPE": (replace_marker_bpe, True, "BPE, sentencepiece"),
    "plain BPE with suffix": (plain_bpe_with_suffix, True, "BPE, plain"),
    "WordPiece": (wordpiece, False, "WordPiece, plain"),
    "WordLevel": (wordlevel, False, "WordLevel, plain"),
    "Unigram with byte fallback": (unigram_with_byte_fallback, False, "Unigram, sentencepiece"),
}


@pytest.mark.parametrize("name", list(TRAINED))
@pytest.mark.parametrize("added", [False, True], ids=["base", "added-tokens"])
def test_trained_tokenizers_read_the_same_as_the_library(tmp_path: Path, name: str, added: bool) -> None:
    build, direct, kind = TRAINED[name]
    tokenizer = build()
    if added:
        tokenizer = _with_added_tokens(tokenizer)
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    vocab = assert_same(path, direct=direct)
    assert vocab.format == f"tokenizer.json ({kind})"
    assert vocab.size == tokenizer.get_vocab_size(with_added_tokens=True)
    if added:
        assert vocab.tokens[tokenizer.token_to_id("<|tool|>")] == b"<|tool|>"
        assert tokenizer.token_to_id("<|end|>") in vocab.special_ids
        assert tokenizer.token_to_id("<think>") not in vocab.special_ids


# --- added tokens: the library's placement, not the ids written in the file ------------------------------------------


def bpe_file(vocab: dict[str, int], added: list[dict[str, Any]], **model: Any) -> dict[str, Any]:
    return {
        "version": "1.0",
        "added_tokens": [
            {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True, **token}
            for token in added
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "vocab": vocab, "merges": [], **model},
    }


BASE = {"a": 0, "b": 1, "c": 2, "ab": 3}
ADDED_CASES: dict[str, tuple[dict[str, int], list[dict[str, Any]], dict[int, bytes]]] = {
    # name: (model vocab, added_tokens, expected id -> token for the ids that matter)
    "written ids ignored: next free id": (BASE, [{"id": 90, "content": "<x>"}], {4: b"<x>"}),
    "content already in the vocabulary keeps its id": (BASE, [{"id": 7, "content": "ab"}], {3: b"ab"}),
    "identical duplicate skipped": (
        BASE,
        [{"id": 4, "content": "<x>"}, {"id": 4, "content": "<x>"}, {"id": 5, "content": "<y>"}],
        {4: b"<x>", 5: b"<y>"},
    ),
    "duplicate with other flags reuses the id": (
        BASE,
        [{"id": 4, "content": "<x>"}, {"id": 5, "content": "<x>", "special": False}],
        {4: b"<x>"},
    ),
    "empty content skipped": (BASE, [{"id": 4, "content": ""}, {"id": 5, "content": "<y>"}], {4: b"<y>"}),
    "gap in the vocabulary: counted, not max+1": (
        {"a": 0, "b": 1, "z": 9},
        [{"id": 10, "content": "<x>"}, {"id": 11, "content": "<y>"}],
        {3: b"<x>", 4: b"<y>", 9: b"z"},
    ),
    "next free id collides with a vocabulary id": ({"a": 0, "z": 2}, [{"id": 3, "content": "<x>"}], {2: b"<x>"}),
}


@pytest.mark.parametrize("name", list(ADDED_CASES))
def test_added_tokens_are_placed_as_the_library_places_them(tmp_path: Path, name: str) -> None:
    model_vocab, added, expected = ADDED_CASES[name]
    vocab = assert_same(write(tmp_path, bpe_file(model_vocab, added)))
    assert {i: vocab.tokens[i] for i in expected} == expected


def test_special_flag_of_a_duplicate_follows_the_last_entry(tmp_path: Path) -> None:
    added = [{"id": 4, "content": "<x>", "special": True}, {"id": 4, "content": "<x>", "special": False}]
    vocab = assert_same(write(tmp_path, bpe_file(BASE, added)))
    assert 4 not in vocab.special_ids


METASPACE = {"type": "Metaspace", "replacement": SPM, "prepend_scheme": "always", "split": True}


@pytest.mark.parametrize("seed", range(200))
def test_random_vocabularies_and_added_tokens_read_the_same(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    letters = "abĠċ▁é東🙂 <>|"
    strings = list(dict.fromkeys("".join(rng.choices(letters, k=rng.randint(1, 4))) for _ in range(40)))
    ids = rng.sample(range(len(strings) + rng.randint(0, 10)), len(strings))  # unique ids, maybe with gaps
    model_vocab = dict(zip(strings, ids, strict=True))
    pool = [*strings[:10], "<x>", "<y>", "<z>", ""]
    added = [
        {
            "id": rng.randint(0, 80),
            "content": rng.choice(pool),
            "special": rng.random() < 0.5,
            "normalized": rng.random() < 0.3,
            "lstrip": rng.random() < 0.2,
        }
        for _ in range(rng.randint(0, 8))
    ]
    spec = bpe_file(model_vocab, added, byte_fallback=rng.random() < 0.3)
    spec["pre_tokenizer"] = spec["decoder"] = rng.choice([spec["decoder"], METASPACE, None])
    assert_same(write(tmp_path, spec))


# --- files the direct reader leaves to the library -------------------------------------------------------------------

LEFT_TO_LIBRARY: dict[str, str] = {
    "truncated": '{"model": {"type": "BPE", "vocab": ',
    "no model type (legacy)": json.dumps({"model": {"vocab": {"a": 0}, "merges": []}, "added_tokens": []}),
    "BPE without merges": json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}}}),
    "negative id": json.dumps(bpe_file({"a": -1}, [])),
    "added token without its flags": json.dumps({**bpe_file(BASE, []), "added_tokens": [{"id": 4, "content": "x"}]}),
    "unknown version": json.dumps({**bpe_file(BASE, []), "version": "2.0"}),
    "pre-tokenizer without a type": json.dumps({**bpe_file(BASE, []), "pre_tokenizer": {"add_prefix_space": True}}),
    "deeply nested unused field": '{"truncation": ' + "[" * 100_000 + "]" * 100_000 + "}",
}


@pytest.mark.parametrize("name", list(LEFT_TO_LIBRARY))
def test_files_outside_the_direct_readers_shape_get_the_library_outcome(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, LEFT_TO_LIBRARY[name])
    assert hf_json.read(path.read_bytes()) is None
    fast, library = both(path)
    assert fast == library
    if isinstance(fast, str):
        assert fast.startswith("malformed: tokenizer.json cannot be loaded by the tokenizers library")


def test_an_id_beyond_any_real_vocabulary_names_the_file_and_the_id(tmp_path: Path) -> None:
    path = write(tmp_path, bpe_file({"a": 0, "b": 4_000_000_000}, []))
    assert hf_json.read(path.read_bytes()) is not None  # a valid u32: the direct reader's own bound refuses it
    with pytest.raises(CheckError) as err:
        load_vocabulary("tokenizer.json", path, None)
    assert err.value.kind == "malformed"
    assert "tokenizer.json" in err.value.message and "4,000,000,000" in err.value.message

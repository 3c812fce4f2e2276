"""Tokenizer formats load into the same id -> bytes vocabulary: real files from mistral-common and llama-models."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.harness import zoo

from specdeploy.validate.errors import CheckError
from specdeploy.validate.formats import load_vocabulary
from specdeploy.validate.vocab import Vocabulary
from specdeploy.validate.vocabdiff import compare_vocabularies


def test_mistral_v1_sentencepiece() -> None:
    vocab = load_vocabulary("tokenizer.model", zoo.SPM_V1, None)
    assert vocab.format == "sentencepiece"
    assert vocab.size == 32000
    assert vocab.roles == {"bos": 1, "eos": 2, "unk": 0}
    assert vocab.tokens[:3] == (b"<unk>", b"<s>", b"</s>")
    assert vocab.tokens[3] == b"<0x00>"  # byte-fallback pieces stay literal
    assert b" the" in vocab.ids  # U+2581 became a space
    assert b"\xe2\x96\x81the" not in vocab.ids


def test_mistral_v3_sentencepiece_has_control_tokens() -> None:
    vocab = load_vocabulary("tokenizer.model.v3", zoo.SPM_V3, None)
    assert vocab.size == 32768
    assert vocab.tokens[3] == b"[INST]"
    assert 3 in vocab.special_ids


def test_tekken_places_specials_before_the_ranks() -> None:
    vocab = load_vocabulary("tekken.json", zoo.TEKKEN, None)
    assert vocab.size == 131072
    assert vocab.roles == {"bos": 1, "eos": 2, "unk": 0, "pad": 11}
    assert vocab.tokens[1000] == b"\x00"  # rank 0 follows the 1000 special ids
    assert vocab.tokens[999] == b"<SPECIAL_999>"
    assert len(vocab.special_ids) == 1000


def test_llama3_tiktoken_gets_the_256_special_tokens() -> None:
    vocab = load_vocabulary("tokenizer.model", zoo.LLAMA3_TIKTOKEN, None)
    assert vocab.size == 128256
    assert vocab.tokens[128000] == b"<|begin_of_text|>"
    assert vocab.tokens[128009] == b"<|eot_id|>"
    assert len(vocab.special_ids) == 256


def test_llama3_tiktoken_uses_tokenizer_config_added_tokens() -> None:
    config = zoo.llama3_tokenizer_config("<|eot_id|>", zoo.llama30_specials())
    vocab = load_vocabulary("tokenizer.model", zoo.LLAMA3_TIKTOKEN, config)
    assert vocab.tokens[128008] == b"<|reserved_special_token_4|>"  # 3.0 naming, not 3.1's <|eom_id|>


def test_llama3_tokenizer_json_equals_the_tiktoken_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(zoo.llama3_tokenizer_json_text())
    from_json = load_vocabulary("tokenizer.json", tmp_path / "tokenizer.json", None)
    from_tiktoken = load_vocabulary("tokenizer.model", zoo.LLAMA3_TIKTOKEN, None)
    assert "byte-level" in from_json.format
    assert from_json.tokens == from_tiktoken.tokens
    assert from_json.special_ids == from_tiktoken.special_ids
    assert from_json.tokens[1917] == b" world"


def test_mistral_tokenizer_json_equals_the_sentencepiece_model(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(zoo.mistral_tokenizer_json_text())
    from_json = load_vocabulary("tokenizer.json", tmp_path / "tokenizer.json", None)
    from_spm = load_vocabulary("tokenizer.model.v3", zoo.SPM_V3, None)
    assert "sentencepiece" in from_json.format
    assert compare_vocabularies(from_spm, from_json).identical


def test_perturbed_vocabulary_reports_count_and_examples() -> None:
    base = load_vocabulary("tokenizer.model", zoo.LLAMA3_TIKTOKEN, None)
    tokens = list(base.tokens)
    tokens[100], tokens[101] = tokens[101], tokens[100]
    tokens[5000] = b"changed"
    other = Vocabulary(format="test", file="x", tokens=tuple(tokens), special_ids=base.special_ids)
    diff = compare_vocabularies(base, other)
    assert diff.differing == 3
    assert not diff.special_only
    assert [e[0] for e in diff.examples] == [100, 101, 5000]
    assert diff.examples[2][2] == b"changed"


def test_truncated_tiktoken_file_names_the_line(tmp_path: Path) -> None:
    lines = zoo.LLAMA3_TIKTOKEN.read_bytes().splitlines()[:10]
    lines[6] = b"not-base64!! 6"
    path = tmp_path / "tokenizer.model"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CheckError) as err:
        load_vocabulary("tokenizer.model", path, None)
    assert err.value.kind == "malformed"
    assert "line 7" in err.value.message


def test_garbage_tokenizer_model_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.model"
    path.write_bytes(b"\x00\x01 this is neither protobuf nor tiktoken")
    with pytest.raises(CheckError) as err:
        load_vocabulary("tokenizer.model", path, None)
    assert err.value.kind == "malformed"
    assert "tokenizer.model" in err.value.message


def test_broken_tokenizer_json_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text('{"model": {"type": "BPE", "vocab": ')
    with pytest.raises(CheckError) as err:
        load_vocabulary("tokenizer.json", path, None)
    assert err.value.kind == "malformed"
    assert "tokenizer.json" in err.value.message

"""Contexts of an exact token length built from prompts, and the prompt file reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from specdeploy.compare.prompts import DEFAULT_PROMPTS, PromptError, build_contexts, read_prompts

PROMPTS = [[10, 11, 12], [20, 21, 22, 23], [30, 31]]
BOS = [1]
SEP = [2]


@pytest.mark.parametrize("length", [2, 3, 4, 7, 16, 100])
def test_every_context_has_exactly_the_requested_length_and_starts_with_the_prefix(length: int) -> None:
    contexts = build_contexts(PROMPTS, length, prefix=BOS, separator=SEP)
    assert len(contexts) == len(PROMPTS)
    for context in contexts:
        assert len(context) == length
        assert context[0] == 1


def test_each_context_ends_with_its_own_prompt_preceded_by_the_previous_ones() -> None:
    contexts = build_contexts(PROMPTS, 9, prefix=BOS, separator=SEP)
    # Prompt 1 is continued; prompt 0 comes before it.
    assert contexts[1] == [1, 10, 11, 12, 2, 20, 21, 22, 23]
    # Prompt 0: before it (cycling) prompt 2, then prompt 1, cut from the left.
    assert contexts[0] == [1, 23, 2, 30, 31, 2, 10, 11, 12]


def test_short_contexts_keep_the_end_of_the_prompt() -> None:
    assert build_contexts(PROMPTS, 3, prefix=BOS) == [[1, 11, 12], [1, 22, 23], [1, 30, 31]]


def test_without_prefix_or_separator_prompts_are_simply_concatenated() -> None:
    assert build_contexts([[5, 6], [7]], 5) == [[5, 6, 7, 5, 6], [6, 7, 5, 6, 7]]


def test_a_length_that_leaves_no_room_after_the_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="context length 1 leaves no room"):
        build_contexts(PROMPTS, 1, prefix=BOS)


def test_no_tokens_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="no prompt tokens"):
        build_contexts([[], []], 8)


def test_read_prompts_skips_blank_lines_and_expands_newlines(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("first prompt\n\n   \ndef f():\\n    return 1\n")
    assert read_prompts(path) == ["first prompt", "def f():\n    return 1"]


def test_read_prompts_names_the_file_when_it_is_empty_or_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(PromptError, match=r"--prompts .*empty.txt: no prompts"):
        read_prompts(empty)
    with pytest.raises(PromptError, match=r"--prompts .*missing.txt: cannot read"):
        read_prompts(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PromptError, match="not UTF-8"):
        read_prompts(binary)


def test_default_prompts_are_distinct_and_substantial() -> None:
    assert len(set(DEFAULT_PROMPTS)) == len(DEFAULT_PROMPTS) >= 8
    assert all(len(p) > 120 for p in DEFAULT_PROMPTS)

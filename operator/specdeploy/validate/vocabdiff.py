"""Id-by-id comparison of two vocabularies: the core of the ``token_ids`` check, and its hot loop.

A draft proposes token ids that the target verifies; vLLM hands the draft the target's token ids, so id i must
mean the same token to both. Comparing 128k-entry vocabularies must stay well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from specdeploy.validate.vocab import Vocabulary


@dataclass(frozen=True)
class VocabDiff:
    """How two vocabularies differ: ids present in both but different, ids only one side has, examples."""

    compared: int
    differing: int
    only_target: int
    only_draft: int
    special_only: bool
    examples: tuple[tuple[int, bytes | None, bytes | None], ...]

    @property
    def total(self) -> int:
        return self.differing + self.only_target + self.only_draft

    @property
    def identical(self) -> bool:
        return self.total == 0


def compare_vocabularies(target: Vocabulary, draft: Vocabulary, *, max_examples: int = 5) -> VocabDiff:
    """Compare two vocabularies id by id (missing ids on one side count as differences)."""
    a, b = target.tokens, draft.tokens
    if a == b:
        return VocabDiff(len(a), 0, 0, 0, True, ())
    common = min(len(a), len(b))
    mismatched = [i for i in range(common) if a[i] != b[i]]
    # ids beyond the shorter vocabulary that actually hold a token
    only_target = [i for i in range(common, len(a)) if a[i] is not None]
    only_draft = [i for i in range(common, len(b)) if b[i] is not None]
    # a None on one side inside the common range is also "only one side has it"
    only_target_inner = [i for i in mismatched if b[i] is None]
    only_draft_inner = [i for i in mismatched if a[i] is None]
    both = len(mismatched) - len(only_target_inner) - len(only_draft_inner)
    ids = [*mismatched, *only_target, *only_draft]
    specials = target.special_ids | draft.special_ids
    special_only = all(i in specials for i in ids)
    examples = tuple((i, target.token(i), draft.token(i)) for i in sorted(ids)[:max_examples])
    return VocabDiff(
        compared=max(len(a), len(b)),
        differing=both,
        only_target=len(only_target) + len(only_target_inner),
        only_draft=len(only_draft) + len(only_draft_inner),
        special_only=special_only,
        examples=examples,
    )


@dataclass(frozen=True)
class Overlap:
    """Tokens both vocabularies hold (by token text), as vLLM's heterogeneous-vocabulary mapping would pair them."""

    shared: int
    target_tokens: int
    draft_tokens: int

    def share_of(self, count: int) -> float:
        return self.shared / count if count else 0.0

    def describe(self) -> str:
        return (
            f"{self.shared} tokens ({100 * self.share_of(self.target_tokens):.1f}% of the target's "
            f"{self.target_tokens}, {100 * self.share_of(self.draft_tokens):.1f}% of the draft's {self.draft_tokens})"
        )


def vocabulary_overlap(target: Vocabulary, draft: Vocabulary) -> Overlap:
    """How many distinct tokens the two vocabularies share, whatever their ids.

    vLLM's ``use_heterogeneous_vocab`` (token-level intersection) pairs tokens whose strings match after the
    word-boundary marker is turned into a space; this compares the tokens' bytes, which is the same within a
    tokenizer family and can count a few more across families (vLLM compares byte-level BPE and SentencePiece
    spellings of non-ASCII and byte tokens as different strings).
    """
    target_set, draft_set = set(target.tokens), set(draft.tokens)  # built in C; unused ids (None) dropped below
    target_set.discard(None)
    draft_set.discard(None)
    return Overlap(len(target_set & draft_set), len(target_set), len(draft_set))

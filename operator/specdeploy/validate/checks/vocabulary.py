"""Checks ``vocabulary`` (embedding sizes) and ``token_ids`` (id-by-id agreement of the tokenizers).

vLLM refuses a draft whose vocab size differs from the target's, padding included (e.g. 152064 vs 151936),
even when the tokenizers agree; and when the ids disagree the draft's proposals are garbage to the target, so
the acceptance rate collapses silently. Both are failures; differences limited to special/added tokens
(renamed reserved tokens) only warn.

vLLM 0.32 has one way around this, for ``draft_model`` only: ``use_heterogeneous_vocab: true`` in the speculative
config (token-level intersection: the draft may only propose tokens both vocabularies hold, mapped between the two
id spaces; greedy draft sampling only). ``SpeculativeConfig.verify_equal_vocab_size_if_draft_model`` skips the
size check when it is set. With ``--heterogeneous-vocab`` a differing pair therefore warns and reports how many
tokens the vocabularies share; without it the failure says that the mode exists and what the overlap would be.
"""

from __future__ import annotations

from typing import Any

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.methods import HEADS
from specdeploy.validate.report import Check
from specdeploy.validate.vocab import display
from specdeploy.validate.vocabdiff import Overlap, compare_vocabularies

HETEROGENEOUS_KEY = "use_heterogeneous_vocab"
HETEROGENEOUS_METHOD = "draft_model"
#: vLLM logs a warning when fewer tokens than this are shared (``vllm/v1/spec_decode/vocab_mapping.py``).
SMALL_OVERLAP = 100


def check_vocabulary(pair: Pair) -> Check:
    target, draft = pair.target, pair.draft
    if draft is None:
        return Check("vocabulary", "skip", f"{pair.method}: no separate draft model, nothing to compare")
    t_size, d_size = target.config.vocab_size, draft.config.vocab_size
    details: dict[str, Any] = {
        "target_vocab_size": t_size,
        "draft_vocab_size": d_size,
        "target_tokenizer_ids": target.vocab.size if target.vocab else None,
        "draft_tokenizer_ids": draft.vocab.size if draft.vocab else None,
    }
    details = {k: v for k, v in details.items() if v is not None}
    for model in (target, draft):
        if model.vocab and model.config.vocab_size and model.vocab.size > model.config.vocab_size:
            return Check(
                "vocabulary",
                "fail",
                f"the {model.role}'s tokenizer has {model.vocab.size} ids but its model embeds only "
                f"{model.config.vocab_size}: ids past the embedding would crash or be garbage",
                details,
            )
    if t_size is None or d_size is None:
        missing = "target" if t_size is None else "draft"
        return Check("vocabulary", "warn", f"the {missing} config has no vocab_size; sizes not compared", details)
    if t_size == d_size:
        return Check("vocabulary", "pass", f"both models have vocab_size {t_size}", details)
    differs = f"vocab_size differs: target {t_size}, draft {d_size}"
    overlap = pair.overlap
    if overlap is not None:
        details.update(_overlap_details(overlap))
    heterogeneous = pair.options.heterogeneous_vocab
    details["heterogeneous_vocab"] = heterogeneous
    if pair.method != HETEROGENEOUS_METHOD:
        extra = f"; vLLM accepts {HETEROGENEOUS_KEY} only with method {HETEROGENEOUS_METHOD}" if heterogeneous else ""
        return Check(
            "vocabulary",
            "fail",
            f"{differs}; vLLM refuses a draft whose vocabulary size (embedding padding included) differs from the "
            f"target's{extra}",
            details,
        )
    if not heterogeneous:
        shared = f"; the tokenizers share {overlap.describe()}" if overlap is not None else ""
        return Check(
            "vocabulary",
            "fail",
            f"{differs}; vLLM 0.32 refuses a draft_model pair whose vocabulary sizes differ (embedding padding "
            f"included) unless the speculative config sets {HETEROGENEOUS_KEY}: true (check with "
            f"--heterogeneous-vocab){shared}",
            details,
        )
    return _heterogeneous(pair, "vocabulary", differs, overlap, details)


def check_token_ids(pair: Pair) -> Check:
    target, draft = pair.target, pair.draft
    if draft is None:
        return Check("token_ids", "skip", f"{pair.method}: no separate draft model, nothing to compare")
    if target.vocab is None or draft.vocab is None:
        missing = "target" if target.vocab is None else "draft"
        if pair.method in HEADS:
            return Check(
                "token_ids", "skip", f"{pair.method} heads use the target's tokenizer; the {missing} ships none"
            )
        return Check(
            "token_ids",
            "warn",
            f"the {missing} has no tokenizer file (tokenizer.json, tokenizer.model, tekken.json, *.tiktoken); "
            "vLLM will use the target's tokenizer but the token ids could not be verified",
        )
    diff = compare_vocabularies(target.vocab, draft.vocab)
    details: dict[str, Any] = {
        "target_tokenizer": f"{target.vocab.format} ({target.vocab.file})",
        "draft_tokenizer": f"{draft.vocab.format} ({draft.vocab.file})",
        "compared": diff.compared,
        "differing": diff.differing,
        "only_target": diff.only_target,
        "only_draft": diff.only_draft,
    }
    if diff.identical:
        return Check("token_ids", "pass", f"all {diff.compared} token ids agree", details)
    details["examples"] = [
        {"id": i, "target": display(t) if t is not None else None, "draft": display(d) if d is not None else None}
        for i, t, d in diff.examples
    ]
    first = diff.examples[0]
    sample = f"first at id {first[0]}: target {_show(first[1])}, draft {_show(first[2])}"
    differs = f"{diff.total} of {diff.compared} token ids differ ({sample})"
    heterogeneous = pair.method == HETEROGENEOUS_METHOD and pair.options.heterogeneous_vocab
    if heterogeneous:
        overlap = pair.overlap
        if overlap is not None:
            details.update(_overlap_details(overlap))
        return _heterogeneous(pair, "token_ids", differs, overlap, details)
    if diff.special_only:
        return Check(
            "token_ids",
            "warn",
            f"{diff.total} of {diff.compared} ids differ, all of them special/added tokens ({sample}); "
            "ordinary text tokenizes identically, but prompts using these tokens will not speculate well",
            details,
        )
    hint = ""
    if pair.method == HETEROGENEOUS_METHOD:
        overlap = pair.overlap
        shared = ""
        if overlap is not None:
            details.update(_overlap_details(overlap))
            shared = f"; the tokenizers share {overlap.describe()}"
        hint = (
            f"; vLLM 0.32 can pair different vocabularies only with {HETEROGENEOUS_KEY}: true in the speculative "
            f"config (check with --heterogeneous-vocab){shared}"
        )
    return Check(
        "token_ids",
        "fail",
        f"{differs}; the draft would propose tokens the target reads as different text: the tokenizers are not "
        f"the same{hint}",
        details,
    )


def _heterogeneous(pair: Pair, name: str, differs: str, overlap: Overlap | None, details: dict[str, Any]) -> Check:
    """The verdict under ``use_heterogeneous_vocab``: warn with the overlap, or fail where vLLM cannot map."""
    for model in (pair.target, pair.draft):
        if model is not None and model.specials.get("unk") is None and model.specials.get("eos") is None:
            return Check(
                name,
                "fail",
                f"{differs}; {HETEROGENEOUS_KEY} maps tokens outside the shared set to the tokenizer's unk (else eos) "
                f"token, and the {model.role}'s tokenizer defines neither: vLLM refuses to build the mapping",
                details,
            )
    if overlap is None:
        missing = "target" if pair.target.vocab is None else "draft"
        return Check(
            name,
            "fail",
            f"{differs}; {HETEROGENEOUS_KEY} loads both models' own tokenizers to map the tokens they share, and the "
            f"{missing} ships no tokenizer file (tokenizer.json, tokenizer.model, tekken.json, *.tiktoken)",
            details,
        )
    small = (
        f" (fewer than {SMALL_OVERLAP}: almost every proposal will be rejected)"
        if overlap.shared < SMALL_OVERLAP
        else ""
    )
    return Check(
        name,
        "warn",
        f"{differs}; {HETEROGENEOUS_KEY} maps them through the {overlap.describe()} both hold{small}: the draft "
        "may only propose shared tokens and drafts greedily, so expect a lower acceptance rate than a draft with the "
        "same vocabulary",
        details,
    )


def _overlap_details(overlap: Overlap) -> dict[str, Any]:
    return {
        "shared_tokens": overlap.shared,
        "shared_of_target": round(overlap.share_of(overlap.target_tokens), 4),
        "shared_of_draft": round(overlap.share_of(overlap.draft_tokens), 4),
    }


def _show(token: bytes | None) -> str:
    return "(none)" if token is None else repr(display(token, 24))

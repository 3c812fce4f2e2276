"""Checks ``vocabulary`` (embedding sizes) and ``token_ids`` (id-by-id agreement of the tokenizers).

vLLM refuses a draft whose vocab size differs from the target's, padding included (e.g. 152064 vs 151936),
even when the tokenizers agree; and when the ids disagree the draft's proposals are garbage to the target, so
the acceptance rate collapses silently. Both are failures; differences limited to special/added tokens
(renamed reserved tokens) only warn.
"""

from __future__ import annotations

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.methods import HEADS
from specdeploy.validate.report import Check
from specdeploy.validate.vocab import display
from specdeploy.validate.vocabdiff import compare_vocabularies


def check_vocabulary(pair: Pair) -> Check:
    target, draft = pair.target, pair.draft
    if draft is None:
        return Check("vocabulary", "skip", f"{pair.method}: no separate draft model, nothing to compare")
    t_size, d_size = target.config.vocab_size, draft.config.vocab_size
    details = {
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
    if t_size != d_size:
        return Check(
            "vocabulary",
            "fail",
            f"vocab_size differs: target {t_size}, draft {d_size}; vLLM refuses a draft whose vocabulary size "
            "(embedding padding included) differs from the target's",
            details,
        )
    return Check("vocabulary", "pass", f"both models have vocab_size {t_size}", details)


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
    details = {
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
    if diff.special_only:
        return Check(
            "token_ids",
            "warn",
            f"{diff.total} of {diff.compared} ids differ, all of them special/added tokens ({sample}); "
            "ordinary text tokenizes identically, but prompts using these tokens will not speculate well",
            details,
        )
    return Check(
        "token_ids",
        "fail",
        f"{diff.total} of {diff.compared} token ids differ ({sample}); the draft would propose tokens the "
        "target reads as different text: the tokenizers are not the same",
        details,
    )


def _show(token: bytes | None) -> str:
    return "(none)" if token is None else repr(display(token, 24))

"""Check ``special_tokens``: bos/eos/unk/pad ids of draft and target, and the ids that end generation.

vLLM tokenizes with the target's tokenizer and stops on the target's eos list, so a draft that disagrees only
costs acceptance: a base-model draft never proposes an instruct target's end-of-turn token (warn). It fails
when an id the target uses as bos/eos means a different token to the draft: the draft then reads every prompt
start or end as an ordinary word.
"""

from __future__ import annotations

from typing import Any

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.methods import HEADS
from specdeploy.validate.models import Model
from specdeploy.validate.report import Check, Status
from specdeploy.validate.specials import ROLES


def check_special_tokens(pair: Pair) -> Check:
    target, draft = pair.target, pair.draft
    if draft is None:
        return Check("special_tokens", "skip", f"{pair.method}: no separate draft model, nothing to compare")
    if pair.method in HEADS and draft.vocab is None:
        return Check(
            "special_tokens",
            "skip",
            f"{pair.method} heads use the target's tokenizer and stop tokens; nothing to compare",
        )
    details: dict[str, Any] = {
        "target": _describe(target),
        "draft": _describe(draft),
    }
    status: Status = "pass"
    problems: list[str] = []
    for role in ("bos", "eos", "unk"):
        t_id, d_id = target.specials.get(role), draft.specials.get(role)
        if t_id is None or d_id is None or t_id == d_id:
            continue
        t_tok = target.vocab.token(t_id) if target.vocab else None
        d_tok_at_t = draft.vocab.token(t_id) if draft.vocab else None
        if role in ("bos", "eos") and t_tok is not None and draft.vocab is not None and d_tok_at_t != t_tok:
            status = "fail"
            problems.append(
                f"the target's {role} id {t_id} ({_name(target, t_id)}) is {_name(draft, t_id)} to the draft"
            )
        else:
            status = "warn" if status == "pass" else status
            problems.append(
                f"{role} differs: target {_name(target, t_id)} ({t_id}), draft {_name(draft, d_id)} ({d_id})"
            )
    missing = [i for i in target.specials.stop_ids if i not in draft.specials.stop_ids]
    if missing and draft.specials.stop_ids:
        status = "warn" if status == "pass" else status
        names = ", ".join(f"{_name(target, i)} ({i})" for i in missing[:4])
        problems.append(
            f"the target stops on {names} but the draft was configured to end with "
            f"{', '.join(str(i) for i in draft.specials.stop_ids[:4])}: expect rejected drafts at the end of "
            "replies (a base draft for an instruct target, or another chat format)"
        )
    if status == "pass":
        return Check("special_tokens", "pass", "bos/eos/unk ids and stop tokens agree", details)
    return Check("special_tokens", status, "; ".join(problems), details)


def _describe(model: Model) -> dict[str, Any]:
    out: dict[str, Any] = {role: model.specials.get(role) for role in ROLES if model.specials.get(role) is not None}
    if model.specials.stop_ids:
        out["stop_ids"] = list(model.specials.stop_ids)
    return out


def _name(model: Model, token_id: int) -> str:
    text = model.vocab.text(token_id) if model.vocab else None
    return repr(text) if text is not None else "an unnamed id"

"""Check ``special_tokens``: bos/eos/unk/pad ids of draft and target, and the ids that end generation.

vLLM tokenizes with the target's tokenizer and stops on the target's eos list, so a draft that disagrees only
costs acceptance: a base-model draft never proposes an instruct target's end-of-turn token, and an instruct draft
proposes end-of-turn tokens a base target does not stop on (warn, both directions, naming both sets). It fails
when an id the target uses as bos/eos means a different token to the draft: the draft then reads every prompt
start or end as an ordinary word. The message only claims agreement for what was compared, so it never says
"agree" while the details list different ids.
"""

from __future__ import annotations

from typing import Any

from specdeploy.validate.checks.pair import Pair
from specdeploy.validate.methods import HEADS
from specdeploy.validate.models import Model
from specdeploy.validate.report import Check, Status
from specdeploy.validate.specials import ROLES

_COMPARED_ROLES = ("bos", "eos", "unk")
_SHOWN_IDS = 4


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
    agreed: list[str] = []
    one_sided: list[str] = []
    for role in _COMPARED_ROLES:
        t_id, d_id = target.specials.get(role), draft.specials.get(role)
        if t_id is None and d_id is None:
            continue
        if t_id is None or d_id is None:
            one_sided.append(f"only the {'draft' if t_id is None else 'target'} defines {role}")
            continue
        if t_id == d_id:
            agreed.append(role)
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
    stop_problem, stop_note = _compare_stops(target, draft)
    if stop_problem:
        status = "warn" if status == "pass" else status
        problems.append(stop_problem)
    if status != "pass":
        return Check("special_tokens", status, "; ".join(problems), details)
    parts = [f"{'/'.join(agreed)} ids agree" if agreed else "no bos/eos/unk id is defined by both models"]
    parts += one_sided
    parts.append(stop_note)
    return Check("special_tokens", "pass", "; ".join(parts), details)


def _compare_stops(target: Model, draft: Model) -> tuple[str | None, str]:
    """(warning, or None) and the sentence a pass reports, comparing the stop ids in both directions."""
    t_stops, d_stops = target.specials.stop_ids, draft.specials.stop_ids
    if not t_stops or not d_stops:
        missing = "target" if not t_stops else "draft"
        other = draft if missing == "target" else target
        shown = _ids(other, other.specials.stop_ids) if other.specials.stop_ids else "none either"
        return None, f"the {missing} configures no stop ids, so they were not compared (the other: {shown})"
    only_target = [i for i in t_stops if i not in d_stops]
    only_draft = [i for i in d_stops if i not in t_stops]
    if not only_target and not only_draft:
        return None, f"both stop on {_ids(target, t_stops)}"
    both = f"the target stops on {_ids(target, t_stops)}, the draft was configured to end with {_ids(draft, d_stops)}"
    effects = []
    if only_target:
        effects.append(
            f"the draft never proposes {_ids(target, only_target)} where the target ends (a base draft for an "
            "instruct target, or another chat format)"
        )
    if only_draft:
        effects.append(
            f"the draft proposes {_ids(draft, only_draft)} which the target does not stop on and rejects "
            "(an instruct or chat draft for a base target, or another chat format)"
        )
    return f"stop ids differ: {both}; {' and '.join(effects)}: expect rejected drafts at the end of replies", ""


def _describe(model: Model) -> dict[str, Any]:
    out: dict[str, Any] = {role: model.specials.get(role) for role in ROLES if model.specials.get(role) is not None}
    if model.specials.stop_ids:
        out["stop_ids"] = list(model.specials.stop_ids)
    return out


def _ids(model: Model, ids: tuple[int, ...] | list[int]) -> str:
    shown = ", ".join(f"{_name(model, i)} ({i})" for i in ids[:_SHOWN_IDS])
    more = len(ids) - _SHOWN_IDS
    return f"{shown} and {more} more" if more > 0 else shown


def _name(model: Model, token_id: int) -> str:
    text = model.vocab.text(token_id) if model.vocab else None
    return repr(text) if text is not None else "an unnamed id"

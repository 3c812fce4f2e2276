"""Rejected input, described without repeating it: the operator's log lines and Events quote a value only in part.

Why: a spec the operator refuses is written by someone else, and whatever the operator logs ends up in log
collectors (and, for kopf's error lines, in Events anyone who may read the object can list). Echoing a rejected
value whole lets a 1 MiB string, terminal escapes or a newline that forges a log line through. pydantic's own
``str(ValidationError)`` includes each ``input_value``; :func:`validation_error` says the field and the rule
instead, with at most a short, escaped prefix of the value and its length.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

# How much of a rejected value a message may quote.
CLIP_CHARS: Final = 40
# How much of a rule's own message (pydantic or ours, which may embed the value) a line keeps.
MAX_RULE_CHARS: Final = 240
# How many errors one description lists before "and N more".
MAX_ERRORS: Final = 5


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """``value`` as an ASCII-escaped quote of at most ``limit`` characters, marked when cut (with the full length)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return ascii(text)
    return f"{text[:limit]!a}... ({len(text)} characters)"


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + clip(str(part), CLIP_CHARS).strip("'")
    return out


def _rule(message: str) -> str:
    text = ascii(message)[1:-1]  # escapes control characters and newlines; drops the quotes ascii() adds
    return text if len(text) <= MAX_RULE_CHARS else text[:MAX_RULE_CHARS] + "..."


def validation_error(err: ValidationError, root: str = "spec") -> str:
    """One line per refused field, ``root.path: rule (got <clipped value>)``, joined with "; "."""
    errors = err.errors(include_url=False, include_context=False, include_input=True)
    lines = []
    for e in errors[:MAX_ERRORS]:
        loc = _loc(tuple(e.get("loc") or ()))
        where = f"{root}.{loc}" if loc else root
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {clip(got)})"
        lines.append(f"{where}: {_rule(str(e.get('msg') or ''))}{shown}")
    if len(errors) > MAX_ERRORS:
        lines.append(f"and {len(errors) - MAX_ERRORS} more")
    return "; ".join(lines)

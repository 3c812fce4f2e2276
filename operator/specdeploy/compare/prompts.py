"""Prompts for a comparison, and the token contexts of an exact length built from them.

Why: acceptance depends on how much context the draft and target see, so ``compare-drafts`` measures per
context-length bucket. A bucket of length L gets, for each prompt, exactly L prompt tokens: the prompt's own tokens
at the end (the text being continued), preceded by the prompts before it in the list (cycling) as earlier context,
cut from the left; the tokenizer's leading special tokens (a BOS) come first and count towards L. Padding with
*other* prompts rather than the prompt itself keeps long buckets from turning into a copying exercise.
Tokenization itself is the server's (``/tokenize``), so no tokenizer library is needed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Used when no ``--prompts`` file is given: plain prose and code, our own words.
DEFAULT_PROMPTS: tuple[str, ...] = (
    "The harbour was quiet in the early morning. Fishing boats rocked against the pier while the gulls waited on "
    "the posts, and the first baker on the street opened his shutters to let the smell of bread out into the fog.",
    "To configure the service, create a file named settings.yaml in the working directory. The file lists the port, "
    "the log level and the path of the data folder. Restart the service after every change so it reads the file.",
    "def moving_average(values, window):\n    total = 0.0\n    out = []\n    for i, value in enumerate(values):\n"
    "        total += value\n        if i >= window:\n            total -= values[i - window]\n",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. It happens in the chloroplasts, "
    "where chlorophyll absorbs mostly red and blue light, which is why most leaves look green to us.",
    "Dear team, thank you for the quick turnaround on the quarterly report. Before we send it out, please check "
    "the figures in the second table against the finance export and add a short note on the delayed shipments.",
    "The recipe needs two cups of flour, one egg, a pinch of salt and a cup of milk. Whisk the egg and the milk "
    "first, then fold in the flour slowly so that no lumps form, and let the batter rest for half an hour.",
    "In 1869 the first transcontinental railroad in the United States was completed, joining the eastern network "
    "to the Pacific coast. Travel times across the country fell from months to about a week.",
    "SELECT customer_id, COUNT(*) AS orders, SUM(total) AS revenue\nFROM orders\nWHERE created_at >= '2024-01-01'\n"
    "GROUP BY customer_id\nORDER BY revenue DESC\nLIMIT 20;",
)


class PromptError(ValueError):
    """The prompts cannot be used; the message names the file."""


def read_prompts(path: Path) -> list[str]:
    """One prompt per non-blank line of ``path`` (a literal ``\\n`` in a line stands for a newline)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PromptError(f"--prompts {path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise PromptError(f"--prompts {path}: not UTF-8 text") from None
    prompts = [line.replace("\\n", "\n") for line in text.splitlines() if line.strip()]
    if not prompts:
        raise PromptError(f"--prompts {path}: no prompts (one per non-blank line expected)")
    return prompts


def build_contexts(
    prompts: Sequence[Sequence[int]], length: int, *, prefix: Sequence[int] = (), separator: Sequence[int] = ()
) -> list[list[int]]:
    """One context of exactly ``length`` tokens per prompt (see the module docstring).

    ``prompts`` are token ids without special tokens; ``prefix`` are the tokenizer's leading special tokens;
    ``separator`` goes between consecutive prompts. Raises ValueError when ``length`` cannot hold the prefix plus
    one token, or when every prompt is empty.
    """
    body = length - len(prefix)
    if body < 1:
        raise ValueError(f"context length {length} leaves no room for a prompt after {len(prefix)} special tokens")
    if not prompts or not any(prompts):
        raise ValueError("no prompt tokens to build contexts from")
    contexts: list[list[int]] = []
    count = len(prompts)
    for index in range(count):
        pieces: list[Sequence[int]] = [prompts[index]]
        size = len(prompts[index])
        back = 1
        while size < body:
            previous = prompts[(index - back) % count]
            pieces.append(separator)
            pieces.append(previous)
            size += len(separator) + len(previous)
            back += 1
        tokens = [token for piece in reversed(pieces) for token in piece]
        contexts.append([*prefix, *tokens[len(tokens) - body :]])
    return contexts

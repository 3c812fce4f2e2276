"""Hostile ``/metrics`` pages built from the real vLLM 0.32 capture, shared by the unit tier (parser, windows,
decision) and the reliability tier (the operator against them).

Each page keeps the real page's shape (every other vLLM series, HELP/TYPE lines, ``_created`` series) and changes
only what the case is about. Where a page carries spec-decode numbers at all, they say "acceptance 0.20": if the
operator believed a hostile page it would roll back, so a test that sees no rollback shows the page was not believed.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

REAL_PAGE = Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "vllm-0.32-cpu-unrelated-draft.metrics.txt"
K = 4  # the capture's draft depth: positions 0..3

_TOTAL = re.compile(
    r"^(vllm:spec_decode_num_(drafts|draft_tokens|accepted_tokens|accepted_tokens_per_pos)_total\{[^}]*\}) \S+$", re.M
)
_POSITION = re.compile(r'position="(\d+)"')
_CREATED = re.compile(r"^(vllm:spec_decode_[a-z_]+_created\{[^}]*\}) \S+$", re.M)


def real_text() -> str:
    return REAL_PAGE.read_text()


def page(
    drafts: float | str,
    draft_tokens: float | str,
    accepted: float | str,
    per_position: Sequence[float | str] | None = None,
    created: float | None = None,
) -> str:
    """The real page with its spec-decode counters replaced (values may be strings such as ``NaN``).

    ``created`` replaces every spec-decode ``_created`` start time (one process start for all series).
    """
    per_pos = list(per_position) if per_position is not None else [_fmt(accepted_share(accepted, i)) for i in range(K)]
    values = {"drafts": drafts, "draft_tokens": draft_tokens, "accepted_tokens": accepted}

    def total(m: re.Match[str]) -> str:
        kind = m.group(2)
        if kind == "accepted_tokens_per_pos":
            position = _POSITION.search(m.group(1))
            assert position is not None
            value = per_pos[int(position.group(1))]
        else:
            value = values[kind]
        return f"{m.group(1)} {_fmt(value)}"

    text = _TOTAL.sub(total, real_text())
    if created is not None:
        text = _CREATED.sub(lambda m: f"{m.group(1)} {created!r}", text)
    return text


def accepted_share(accepted: float | str, position: int) -> float | str:
    """Split ``accepted`` over positions the way a prefix-acceptance draft does (halving per position)."""
    if isinstance(accepted, str):
        return accepted
    weights = [0.5 ** (i + 1) for i in range(K)]
    return accepted * weights[position] / sum(weights)


def _fmt(value: float | str) -> str:
    return value if isinstance(value, str) else repr(float(value))


def bad(scale: float = 1.0) -> str:
    """A well-formed page that says acceptance 0.20 over ``4000 * scale`` draft tokens."""
    return page(1000 * scale, 4000 * scale, 800 * scale)


# ----------------------------------------------------------------------------------------------- the cases
def garbage() -> bytes:
    """Binary noise with no Prometheus structure at all (seeded: the same noise every run)."""
    rng = random.Random(8)
    return bytes(rng.randrange(256) for _ in range(4096))


def garbled() -> bytes:
    """The real page with its spec-decode lines mangled the way a broken proxy or encoder would."""
    text = bad()
    line = 'vllm:spec_decode_num_drafts_total{engine="0",model_name="tiny-target"} 1000.0'
    text = text.replace(line, line.replace("} 1000.0", " 1000.0 garbage"))
    return text.encode()


def truncated() -> bytes:
    """The page cut off inside a number: ``accepted_tokens ... 800.0`` arrives as ``... 80`` (a rate of 0.02)."""
    text = bad()
    line = next(ln for ln in text.splitlines() if ln.startswith("vllm:spec_decode_num_accepted_tokens_total"))
    return text[: text.index(line) + len(line) - 3].encode()


def nan() -> bytes:
    return page(1000, 4000, "NaN", per_position=["NaN"] * K).encode()


def inf() -> bytes:
    return page(1000, "+Inf", 800).encode()


def negative() -> bytes:
    return page(1000, 4000, -800.0, per_position=[-400.0, -200.0, -133.0, -67.0]).encode()


def duplicate() -> bytes:
    """A series exposed twice (two exporters merged into one page), with different values."""
    text = bad()
    line = next(ln for ln in text.splitlines() if ln.startswith("vllm:spec_decode_num_draft_tokens_total"))
    return text.replace(line, f"{line}\n{line.rsplit(' ', 1)[0]} 1.0").encode()


def huge(size: int = 10 * 1024 * 1024) -> Callable[[], bytes]:
    """A 10 MB page: a real page whose spec-decode numbers come after 10 MB of other series."""
    filler_line = 'vllm:lora_requests_info{max_lora="1",running_lora_adapters="",waiting_lora_adapters=""} 1.0\n'
    body = (filler_line * (size // len(filler_line) + 1) + bad()).encode()

    def serve() -> bytes:
        return body

    return serve


def decreasing(step: float = 1000.0) -> Callable[[], bytes]:
    """Counters that go down on every scrape while the start times stay put: not a restart, a broken exporter.

    Every reading on its own says acceptance 0.20 over millions of draft tokens.
    """
    counter = itertools.count()
    start = 1.7959688288698728e09

    def serve() -> bytes:
        n = next(counter)
        drafts = 1_000_000 - n * step
        return page(drafts, 4 * drafts, 0.8 * drafts, created=start).encode()

    return serve


def fixed(make: Callable[[], bytes]) -> Callable[[], bytes]:
    """Serve the same bytes on every scrape (built once)."""
    body = make()
    return lambda: body


def many_series(count: int = 100_000) -> bytes:
    """The real page plus ``count`` extra spec-decode series (one per fake engine), just under the 8 MiB page cap.

    Issue 11's memory bomb: every line is a well-formed ``vllm:spec_decode_num_drafts_total`` sample, so a reader
    that keeps every spec-decode series builds ``count`` Python objects per scrape; the page fits the byte cap, so
    only a cap on the number of series stops it.
    """
    extra = "".join(
        f'vllm:spec_decode_num_drafts_total{{engine="{i + 1}",model_name="tiny-t{i:07d}"}} 1.0\n' for i in range(count)
    )
    text = bad()
    marker = "# HELP vllm:spec_decode_num_draft_tokens_total"
    cut = text.index(marker)
    return (text[:cut] + extra + text[cut:]).encode()

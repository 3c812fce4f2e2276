"""Inputs on which the API server and pydantic must agree, as data: the unit tests run them through pydantic (and
an RE2 stand-in), tests/integration/test_api_parity.py through the real API server.

``HOSTILE_STRINGS`` is what a user can put in any string field: Unicode spaces, control characters, bidi and
zero-width marks, a trailing newline, non-BMP characters and long input. ``reserved_spellings`` writes a reserved
vLLM flag every way vLLM's parser accepts it; ``ALLOWED_ARGS`` are extra arguments that must stay allowed.
"""

from __future__ import annotations

from specdeploy.api.rules import RESERVED_FLAG_PREFIXES, RESERVED_FLAGS

_UNICODE_SPACES = {
    "no-break space": "\u00a0",
    "next line": "\u0085",
    "ogham space": "\u1680",
    "mongolian vowel separator": "\u180e",
    "em space": "\u2003",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "narrow no-break space": "\u202f",
    "ideographic space": "\u3000",
}
_INVISIBLE = {
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "left-to-right mark": "\u200e",
    "right-to-left override": "\u202e",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
}
# ASCII control characters: \v is in Python's \s but not Go's; \x1c-\x1f are whitespace to Python's str only.
_CONTROLS = {
    "tab": "\t",
    "newline": "\n",
    "carriage return": "\r",
    "vertical tab": "\v",
    "form feed": "\f",
    "NUL": "\x00",
    "escape": "\x1b",
    "file separator": "\x1c",
    "unit separator": "\x1f",
    "DEL": "\x7f",
    "C1 control": "\x9b",
}
_LOOKALIKES = {
    "fullwidth digit": "\uff11",
    "arabic-indic digit": "\u0661",
    "cyrillic a": "\u0430",
    "latin small dotless i": "\u0131",
    "kelvin sign": "\u212a",
    "non-BMP emoji": "\U0001f600",
    "non-BMP math letter": "\U0001d400",
}

HOSTILE_STRINGS: dict[str, str] = {
    "plain": "a1",
    "image from the issue": "vllm/vllm-openai:v1\u00a0",
    "trailing newline": "a1\n",
    "leading newline": "\na1",
    "inner newline": "a\n1",
    "trailing space": "a1 ",
    "empty": "",
    **{f"trailing {name}": f"a1{char}" for name, char in {**_UNICODE_SPACES, **_INVISIBLE, **_CONTROLS}.items()},
    **{f"inner {name}": f"a{char}1" for name, char in _LOOKALIKES.items()},
    "only a no-break space": "\u00a0",
    "url with a no-break space": "http://prometheus:9090/\u00a0",
    "url with a trailing newline": "http://prometheus:9090\n",
    "url with an idn host": "http://pr\u00f6metheus:9090",
    "63 characters": "a" * 63,
    "64 characters": "a" * 64,
    "253 characters": "a" * 253,
    "254 characters": "a" * 254,
    "63 non-BMP characters": "\U0001f600" * 63,
    "4097 characters": "a" * 4097,
}


def reserved_spellings(flag: str) -> list[str]:
    """``flag`` written as vLLM's parser accepts it: with a value after "=", a dotted key, underscores for dashes,
    abbreviated; a one-letter short option also with its value glued on."""
    out = [flag, f"{flag}=x", f"{flag}.key", f"{flag}.key=1"]
    if flag.startswith("--"):
        out += [flag.replace("-", "_").replace("__", "--", 1) if "-" in flag[2:] else flag, flag[:-1]]
    else:
        out.append(flag + "8" if len(flag) == 2 else flag + "=8")
    return list(dict.fromkeys(out))


def all_reserved_spellings() -> list[tuple[str, str]]:
    """(argument, the flag the refusal must name) for every reserved flag and prefix."""
    cases = [(arg, flag) for flag in RESERVED_FLAGS for arg in reserved_spellings(flag)]
    for prefix in RESERVED_FLAG_PREFIXES:
        cases += [(prefix + "keyfile", prefix + "*"), (prefix + "future-option=1", prefix + "*")]
    return cases


ALLOWED_ARGS: list[str] = [
    "--max-num-seqs",
    "64",
    "--max-num-seqs=64",
    "--max_num_seqs",
    "--enable-prefix-caching",
    "--seed",
    "-1",
    "-O3",
    "--quantization-param-path",
    "--quantization-config",
    "--model-impl",
    "--model-loader-extra-config",
    "--config-format",
    "--tokenizer-revision",
    "--code-revision",
    "--kv-cache-dtype",
    "--no-enable-ssl-refresh",
    "--no-trust-remote-code",
    "--api-key",
    "--root-path",
    "--data-parallel-size-local",
    "--dtypes-are-not-an-option-but-not-reserved",
    "org/model",
    "--port-not-reserved-because-it-is-longer",
    "-ep",
]

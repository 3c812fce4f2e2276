"""What a user may not override in the vLLM pod, written once for both enforcers.

Two kinds of vLLM flags are reserved in ``spec.serving.extraArgs``:

- the flags the operator renders itself (model, revision, parallelism, max model len, dtype, quantization,
  served model name, host, port, GPU memory, speculative config): a copy would silently replace the validated
  setup, since vLLM's parser lets a later flag win;
- the flags that silently break what the operator relies on: ``--disable-log-stats`` removes every engine
  series from ``/metrics`` (the monitor would wait for counters forever), ``--ssl-*`` and
  ``--enable-ssl-refresh`` turn the plain-HTTP probes and scrapes into TLS handshakes, ``--uds``, ``--grpc``
  and ``--headless`` take the HTTP API away, ``--config`` reads any of the above from a file, ``--hf-token``
  would put a token in the pod spec.

vLLM's parser accepts each flag in several spellings, and the rule covers them all: ``--flag value`` and
``--flag=value``; underscores for dashes (``--max_model_len``); dotted JSON keys (``--speculative-config.method
x``); unambiguous abbreviations (``--speculative-conf``, ``--po``); and a value glued to a one-letter short
option (``-qawq`` is ``-q awq``). :data:`RESERVED_FLAGS` lists the flags with all their aliases (a unit test
checks them against vLLM 0.32's captured ``serve`` option table), :data:`RESERVED_FLAG_PREFIXES` the families
reserved as a whole. The CEL rule built here runs in the API server and :func:`reserved_flag` runs in Python,
with the same logic, in the same order, so both refuse the same arguments and name the same flag:

1. an argument that does not start with "-" is a value, never refused;
2. its flag name is the text before the first "=" and then before the first ".", underscores read as dashes;
3. refused when that name is a prefix of a reserved flag (the flag itself or an abbreviation of it), or starts
   with a reserved prefix, or, for a single-dash argument, when it starts with a one-letter reserved option.

``--trust-remote-code`` is not in the list: whether a spec may run a model's own Python code is an admin's
decision (see :data:`TRUST_REMOTE_CODE_FLAG` and :func:`sets_flag`), not a rule of the schema.
"""

from __future__ import annotations

from typing import Final

# Flags the operator renders from the typed fields (render/vllm_args.py), with their short aliases.
RENDERED_FLAGS: Final = (
    "--model",
    "--revision",
    "--tensor-parallel-size",
    "-tp",
    "--max-model-len",
    "--dtype",
    "--quantization",
    "-q",
    "--served-model-name",
    "--host",
    "--port",
    "--gpu-memory-utilization",
    "--device-memory-utilization",  # the same option under another name
    "--speculative-config",
    "-sc",
)
# Flags that change the GPU count or the speculation behind the operator's back, or carry a secret or a file.
_SHADOWING_FLAGS: Final = (
    "--pipeline-parallel-size",
    "-pp",
    "--data-parallel-size",
    "-dp",
    "--spec-method",
    "--spec-model",
    "--spec-tokens",
    "--hf-token",
    "--config",
)
# Flags that silently break the probes, the Service or the metrics the operator reads.
_BREAKING_FLAGS: Final = (
    "--disable-log-stats",
    "--enable-ssl-refresh",
    "--uds",
    "--grpc",
    "--grpc-port",
    "--headless",
)
RESERVED_FLAGS: Final = RENDERED_FLAGS + _SHADOWING_FLAGS + _BREAKING_FLAGS
# Families reserved whole, including options a later vLLM adds (every --ssl-* option configures TLS).
RESERVED_FLAG_PREFIXES: Final = ("--ssl-",)
# One-letter short options: argparse also reads a value glued to them ("-qawq" sets --quantization awq).
_GLUED_SHORT_FLAGS: Final = tuple(flag for flag in RESERVED_FLAGS if len(flag) == 2 and flag[1] != "-")

# Runs the model repository's own Python code. Not refused by the schema: the tenancy layer decides (an admin
# may allow it); use :func:`sets_flag` to recognise it in every spelling.
TRUST_REMOTE_CODE_FLAG: Final = "--trust-remote-code"

# Environment variables the operator sets itself, or that would carry a secret as a literal.
RESERVED_ENV: Final = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME", "POD_IP")

_WHY: Final = (
    "the operator renders it from the typed fields of spec.target, spec.draft, spec.speculation and "
    "spec.serving, or relies on it staying unset (engine metrics on /metrics, plain HTTP on spec.serving.port)"
)
EXTRA_ARGS_MESSAGE: Final = (
    "spec.serving.extraArgs must not set a reserved vLLM flag in any spelling (abbreviated, with '=' or '.', "
    f"underscores for dashes): {', '.join(RESERVED_FLAGS)} or {', '.join(p + '*' for p in RESERVED_FLAG_PREFIXES)}"
    f"; {_WHY}"
)
RESERVED_ENV_MESSAGE: Final = (
    "spec.serving.env must not set HF_TOKEN or HUGGING_FACE_HUB_TOKEN (use spec.serving.hfTokenSecretRef) "
    "nor HF_HOME or POD_IP (set by the operator)"
)


def reserved_flag_message(flag: str) -> str:
    """The refusal for an argument that sets ``flag`` (a reserved flag, or a reserved prefix followed by ``*``)."""
    return f"spec.serving.extraArgs must not set {flag} (in any spelling): {_WHY}"


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def _cel_name(var: str) -> str:
    return f"{var}.split('=')[0].split('.')[0].replace('_', '-')"


def _cel_matches(var: str) -> str:
    name = _cel_name(var)
    return (
        f"{var}.startsWith('-') && ({_cel_list(RESERVED_FLAGS)}.exists(f, f.startsWith({name})) || "
        f"{_cel_list(RESERVED_FLAG_PREFIXES)}.exists(p, {name}.startsWith(p)) || "
        f"(!{var}.startsWith('--') && {_cel_list(_GLUED_SHORT_FLAGS)}.exists(s, {var}.startsWith(s))))"
    )


def _cel_flag(var: str) -> str:
    name = _cel_name(var)
    return (
        f"({_cel_list(RESERVED_FLAGS)}.filter(f, f.startsWith({name})) + "
        f"{_cel_list(RESERVED_FLAG_PREFIXES)}.filter(p, {name}.startsWith(p)).map(p, p + '*') + "
        f"{_cel_list(_GLUED_SHORT_FLAGS)}.filter(s, !{var}.startsWith('--') && {var}.startsWith(s)))[0]"
    )


EXTRA_ARGS_RULE: Final = f"self.all(a, !({_cel_matches('a')}))"
# Evaluated only when the rule fails, so the filter has a first element; names the flag as reserved_flag does.
EXTRA_ARGS_MESSAGE_EXPRESSION: Final = (
    "'spec.serving.extraArgs must not set ' + "
    f"self.filter(a, {_cel_matches('a')}).map(a, {_cel_flag('a')})[0] + "
    f"' (in any spelling): {_WHY}'"
)
RESERVED_ENV_RULE: Final = "!(self.name in " + _cel_list(RESERVED_ENV) + ")"


def flag_name(arg: str) -> str:
    """The flag an argument names, as vLLM's parser reads it ("--max_num_seqs=8" -> "--max-num-seqs")."""
    return arg.split("=", 1)[0].split(".", 1)[0].replace("_", "-")


def reserved_flag(arg: str) -> str | None:
    """The reserved flag that ``arg`` sets (a reserved prefix is named with ``*``), or None when it sets none."""
    if not arg.startswith("-"):
        return None
    name = flag_name(arg)
    for flag in RESERVED_FLAGS:
        if flag.startswith(name):
            return flag
    for prefix in RESERVED_FLAG_PREFIXES:
        if name.startswith(prefix):
            return prefix + "*"
    if not arg.startswith("--"):
        for short in _GLUED_SHORT_FLAGS:
            if arg.startswith(short):
                return short
    return None


def sets_flag(arg: str, flag: str) -> bool:
    """Whether the argument ``arg`` sets the long option ``flag`` in any spelling vLLM's parser accepts."""
    return arg.startswith("-") and flag.startswith(flag_name(arg)) and len(flag_name(arg)) > 2

"""What a user may not override in the vLLM pod, written once for both enforcers.

The operator owns the flags that decide which model is served, on which port and with which speculative
config; a copy in ``extraArgs`` would silently replace the validated setup (vLLM's parser lets a later flag
win, accepts ``--speculative_config`` for ``--speculative-config``, ``--speculative-config.method x`` for
the JSON form, and unambiguous abbreviations such as ``--speculative-conf``). ``OWNED_FLAGS`` lists them; the
CEL rule built from it runs in the API server and :func:`owned_flag` runs in Python, with the same logic:
an argument that starts with "-" is refused when its flag name (before "=" or ".", underscores read as
dashes) is a prefix of an owned flag.
"""

from __future__ import annotations

from typing import Final

# Every entry exists in vLLM 0.32's `serve` options (a unit test checks it against the captured option list).
OWNED_FLAGS: Final = (
    "--model",
    "--revision",
    "--tensor-parallel-size",
    "-tp",
    "--pipeline-parallel-size",
    "-pp",
    "--data-parallel-size",
    "-dp",
    "--nnodes",
    "-n",
    "--node-rank",
    "-r",
    "--master-addr",
    "--master-port",
    "--headless",
    "--max-model-len",
    "--dtype",
    "--quantization",
    "-q",
    "--served-model-name",
    "--host",
    "--port",
    "--uds",
    "--gpu-memory-utilization",
    "--speculative-config",
    "-sc",
    "--spec-method",
    "--spec-model",
    "--spec-tokens",
    "--hf-token",
    "--config",
)

# Environment variables the operator sets itself, or that would carry a secret as a literal.
RESERVED_ENV: Final = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME", "POD_IP")

EXTRA_ARGS_MESSAGE: Final = (
    "spec.serving.extraArgs must not set flags the operator owns (model, revision, parallelism, nodes, max model len, "
    "dtype, quantization, served model name, host, port, GPU memory, speculative config, HF token, config "
    "file) or abbreviations of them: use the typed fields of spec.target, spec.draft, spec.speculation and "
    "spec.serving instead"
)
RESERVED_ENV_MESSAGE: Final = (
    "spec.serving.env must not set HF_TOKEN or HUGGING_FACE_HUB_TOKEN (use spec.serving.hfTokenSecretRef) "
    "nor HF_HOME or POD_IP (set by the operator)"
)


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


EXTRA_ARGS_RULE: Final = (
    "self.all(a, !a.startsWith('-') || !"
    + _cel_list(OWNED_FLAGS)
    + ".exists(f, f.startsWith(a.split('=')[0].split('.')[0].replace('_', '-'))))"
)
RESERVED_ENV_RULE: Final = "!(self.name in " + _cel_list(RESERVED_ENV) + ")"


def flag_name(arg: str) -> str:
    """The flag an argument names, as vLLM's parser reads it ("--max_num_seqs=8" -> "--max-num-seqs")."""
    return arg.split("=", 1)[0].split(".", 1)[0].replace("_", "-")


def owned_flag(arg: str) -> str | None:
    """The owned flag that ``arg`` sets or abbreviates, or None when the operator does not own it."""
    if not arg.startswith("-"):
        return None
    name = flag_name(arg)
    return next((flag for flag in OWNED_FLAGS if flag.startswith(name)), None)

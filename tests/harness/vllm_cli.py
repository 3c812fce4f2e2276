"""Parse command lines with vLLM's own ``vllm serve`` parser; run with the vLLM venv's Python.

Reads a JSON list of argv lists (what follows ``vllm serve``) on stdin and prints one JSON object per argv: the
parsed options (``dest`` -> value, as JSON) or ``{"error": ...}`` when vLLM's parser refuses it. Nothing is
started: this is the parser alone, so tests can show what vLLM itself reads from a rendered argv.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any


def _parser() -> Any:
    from vllm.entrypoints.cli import serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    sub = parser.add_subparsers(required=False, dest="subparser")
    for command in serve.cmd_init():
        command.subparser_init(sub)
    return parser


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def main() -> int:
    argvs = json.loads(sys.stdin.read())
    parser = _parser()  # argparse keeps no state between parses
    results = []
    for argv in argvs:
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                parsed = parser.parse_args(["serve", *argv])
            results.append({key: _jsonable(value) for key, value in vars(parsed).items()})
        except SystemExit:
            results.append({"error": stderr.getvalue().strip().splitlines()[-1:]})
        except Exception as exc:  # vLLM raises ValueError for some refusals (e.g. --model without a value)
            results.append({"error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``specdeploy`` command line: one console script, one subcommand per module in ``specdeploy.commands``.

Each command module exposes ``register(subparsers)`` which adds its parser and sets ``func`` (a callable taking
the parsed namespace and returning an exit code); they are listed here by name, so what the console script offers
is what this file says. Command modules keep their heavy imports inside ``func`` so that ``specdeploy validate``
never loads kopf or the Kubernetes client and ``specdeploy --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from specdeploy import __version__
from specdeploy.commands import acceptance, compare_drafts, crd, render, run, validate

# In the order ``specdeploy --help`` lists them.
COMMANDS = (acceptance, compare_drafts, crd, render, run, validate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specdeploy",
        description="Speculative-decoding deployments on Kubernetes with vLLM.",
    )
    parser.add_argument("--version", action="version", version=f"specdeploy {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

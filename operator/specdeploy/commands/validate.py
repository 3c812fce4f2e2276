"""``specdeploy validate``: a thin adapter over ``specdeploy.validate.cli`` (the validator owns its options).

Only argparse wiring happens at import time; the validator itself is imported when the command runs, so other
subcommands never load tokenizer libraries and the validator never loads the operator.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand and point it at the validator."""
    from specdeploy.validate.cli import DESCRIPTION, add_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser("validate", help=DESCRIPTION, description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from specdeploy.validate.cli import run

    return run(args)

"""Subcommands of the ``specdeploy`` CLI; each module exposes ``register(subparsers)``."""

"""Why the validator could not check a pair: one exception type with a machine-readable kind.

Every failure to *obtain* or *read* model metadata (as opposed to a finding about the models) ends the run with
exit code 2. The kind tells the operator and the user which of these it was, so the message can say what to do:
set HF_TOKEN, accept a licence, fix a path, retry later.
"""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal[
    "usage",
    "network",
    "timeout",
    "auth",
    "not_found",
    "missing_files",
    "malformed",
    "oversized",
    "internal",
]


class CheckError(Exception):
    """The validator could not check the pair; ``kind`` says why and ``source`` which side (target/draft)."""

    def __init__(self, kind: ErrorKind, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.source = source

    def with_source(self, source: str) -> CheckError:
        """The same error attributed to ``source`` (``target`` or ``draft``) unless it already names one."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{self.message}"

"""Why the validator could not check a pair: one exception type with a machine-readable kind.

Every failure to *obtain* or *read* model metadata (as opposed to a finding about the models) ends the run with
exit code 2. The kind tells the operator and the user which of these it was, so the message can say what to do:
set HF_TOKEN, accept a licence, fix a path, retry later.
"""

from __future__ import annotations

import os
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


#: Environment variables that may hold a Hugging Face token (huggingface_hub reads both).
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
REDACTED = "[redacted HF token]"


def redact(text: str) -> str:
    """``text`` with every Hugging Face token from the environment replaced.

    Messages from the Hub and the HTTP client end up in the report, and the report ends up in the object's status:
    a Hub that echoes the Authorization header back in an error (some proxies and error pages do) must not turn
    the token into something every reader of the SpeculativeDeployment can see.
    """
    for name in TOKEN_VARIABLES:
        secret = os.environ.get(name, "")
        if len(secret) >= 8:  # a very short value would redact ordinary words; no real token is that short
            text = text.replace(secret, REDACTED)
    return text

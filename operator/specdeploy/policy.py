"""The cluster admin's policy: what a SpeculativeDeployment may ask the operator to run, beyond what the CRD allows.

Why: whoever may create a SpeculativeDeployment makes the operator create pods with the operator's rights, not
theirs. The CRD bounds the *shape* of a spec; this module bounds its *reach*, as the admin configured it with
``specdeploy run`` flags (chart values ``policy.*``):

- allow-lists of images (serving and validator), ServiceAccounts and PriorityClasses, as glob patterns
  (``*`` allows everything; an empty list allows nothing beyond the defaults);
- an allow-list of Prometheus base URLs for ``metrics.source: Prometheus`` (the operator queries them from its own
  network position, so a free choice is a server-side request forgery), and, whatever the list, no userinfo, query,
  fragment or dot segments in that URL;
- environment variable names a spec may never set (``RESERVED_ENV``: they redirect downloads that carry the
  Hugging Face token, reroute all traffic through a proxy, or make the vLLM process load other code), plus
  the admin's own additions;
- ``--trust-remote-code`` (Python from the model repository runs in the pod) only where the admin allows it.

:func:`check` is a pure function of the spec and the policy; the planner calls it once per loop and, when it
returns violations, changes no child and reports them (``rollout.refusal``). Each violation names the field,
and quotes the offending value only in part (:func:`specdeploy.redact.clip`).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.rules import flag_name
from specdeploy.redact import clip

ANY: Final = "*"

# Environment variables a spec may not set, compared without regard to case (curl, requests and aiohttp read
# both http_proxy and HTTP_PROXY; for the rest, a lower-case twin is refused too: no legitimate use, no cost).
RESERVED_ENV: Final[dict[str, str]] = {
    # Where huggingface_hub downloads from, and sends the token to.
    "HF_ENDPOINT": "redirects model downloads, with the Hugging Face token, to another server",
    "HF_TOKEN_PATH": "reads the Hugging Face token from another file",
    # Every HTTP request of the pod through another host.
    "HTTP_PROXY": "sends the pod's HTTP traffic, with the token, through a proxy",
    "HTTPS_PROXY": "sends the pod's HTTPS traffic through a proxy",
    "ALL_PROXY": "sends the pod's traffic through a proxy",
    "NO_PROXY": "changes which hosts bypass the cluster's proxy",
    # Which certificate authorities TLS trusts: with a proxy or a DNS answer, a man in the middle of the token.
    "REQUESTS_CA_BUNDLE": "replaces the certificate authorities TLS trusts",
    "CURL_CA_BUNDLE": "replaces the certificate authorities TLS trusts",
    "SSL_CERT_FILE": "replaces the certificate authorities TLS trusts",
    "SSL_CERT_DIR": "replaces the certificate authorities TLS trusts",
    # Code the process loads before or instead of the image's.
    "LD_PRELOAD": "loads a shared library into every process",
    "LD_LIBRARY_PATH": "changes where shared libraries are loaded from",
    "LD_AUDIT": "loads a shared library into every process",
    "PYTHONPATH": "changes where Python imports modules from",
    "PYTHONHOME": "changes where Python's standard library is loaded from",
    "PYTHONSTARTUP": "runs a Python file at start-up",
    "PYTHONUSERBASE": "changes where Python imports user packages from",
    "PYTHONWARNINGS": "imports the modules that warning categories name",
    "PYTHONBREAKPOINT": "imports and calls a function named in the variable",
    # vLLM's own: a logging config is a dictConfig that can call any importable function; pickled IPC.
    "VLLM_LOGGING_CONFIG_PATH": "loads a logging configuration that can call any importable function",
    "VLLM_ALLOW_INSECURE_SERIALIZATION": "lets vLLM unpickle its messages",
    "VLLM_PLUGINS": "changes which vLLM plugins are loaded",
}

TRUST_REMOTE_CODE: Final = "--trust-remote-code"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Violation:
    """One thing the spec asks for that the admin's policy refuses; ``message`` starts with the field."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class AdminPolicy:
    """The admin's allow-lists. The defaults allow what the operator allowed before (``*``), except the reserved
    environment names and ``--trust-remote-code``, which are refused unless the admin says otherwise."""

    images: tuple[str, ...] = (ANY,)
    service_accounts: tuple[str, ...] = (ANY,)
    priority_classes: tuple[str, ...] = (ANY,)
    prometheus_urls: tuple[str, ...] = (ANY,)
    allow_trust_remote_code: bool = False
    reserved_env: tuple[str, ...] = ()  # names the admin adds to RESERVED_ENV

    def describe(self) -> str:
        """One line for the operator's start-up log."""
        return (
            f"images={list(self.images)} serviceAccounts={list(self.service_accounts)} "
            f"priorityClasses={list(self.priority_classes)} prometheusURLs={list(self.prometheus_urls)} "
            f"trustRemoteCode={'allowed' if self.allow_trust_remote_code else 'refused'} "
            f"extraReservedEnv={list(self.reserved_env)}"
        )


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(p == ANY or fnmatch.fnmatchcase(value, p) for p in patterns)


def _allowed_words(patterns: tuple[str, ...]) -> str:
    return ", ".join(patterns[:8]) + (f" and {len(patterns) - 8} more" if len(patterns) > 8 else "") or "none"


def _image(field: str, image: str, policy: AdminPolicy) -> list[Violation]:
    if _matches(image, policy.images):
        return []
    return [
        Violation(
            field,
            f"{field}: image {clip(image)} is not allowed by the operator's policy "
            f"(allowed: {_allowed_words(policy.images)})",
        )
    ]


def url_problem(url: str) -> str | None:
    """What is wrong with a Prometheus base URL whatever the allow-list says, or None.

    No userinfo (credentials in the URL, and the ``user@host`` trick that makes a URL look like another host),
    no query or fragment (the operator appends the API path and its own query), no ``.``/``..`` segments, even
    percent-encoded (the HTTP client would resolve them after the prefix check).
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return "must be http:// or https:// with a host"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry userinfo (user:password@)"
    if parts.query or "?" in url:
        return "must not carry a query"
    if parts.fragment or "#" in url:
        return "must not carry a fragment"
    if "\\" in url:
        return "must not contain a backslash"
    segments = unquote(parts.path).split("/")
    if any(s in (".", "..") for s in segments):
        return "must not contain '.' or '..' path segments"
    return None


def _normalized(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    path = posixpath.normpath(unquote(parts.path)) if parts.path not in ("", "/") else ""
    path = "" if path in (".", "/") else path.rstrip("/")
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS[parts.scheme], path


def prometheus_url_allowed(url: str, allowed: Iterable[str]) -> bool:
    """``url`` is one of the allowed base URLs, or below one of them (same scheme, host and port, and the path
    continues the base path at a "/")."""
    if url_problem(url) is not None:
        return False
    scheme, host, port, path = _normalized(url)
    for base in allowed:
        if base == ANY:
            return True
        if url_problem(base) is not None:
            continue
        b_scheme, b_host, b_port, b_path = _normalized(base)
        if (scheme, host, port) == (b_scheme, b_host, b_port) and (path == b_path or path.startswith(b_path + "/")):
            return True
    return False


def _prometheus(spec: SpeculativeDeploymentSpec, policy: AdminPolicy) -> list[Violation]:
    prom = spec.metrics.prometheus
    if str(spec.metrics.source) != "Prometheus" or prom is None:
        return []
    field = "spec.metrics.prometheus.url"
    url = str(prom.url)
    problem = url_problem(url)
    if problem is not None:
        return [Violation(field, f"{field}: {clip(url)} {problem}")]
    if not prometheus_url_allowed(url, policy.prometheus_urls):
        return [
            Violation(
                field,
                f"{field}: {clip(url)} is not one of the Prometheus URLs the operator's policy allows "
                f"(allowed: {_allowed_words(policy.prometheus_urls)})",
            )
        ]
    return []


def reserved_env_reason(name: str, extra: Iterable[str] = ()) -> str | None:
    """Why ``name`` may not be set by a spec, or None when it may."""
    upper = name.upper()
    if upper in RESERVED_ENV:
        return RESERVED_ENV[upper]
    if any(upper == e.upper() for e in extra):
        return "reserved by the operator's policy"
    return None


def trust_remote_code_arg(args: Iterable[str]) -> str | None:
    """The argument that turns on ``--trust-remote-code`` (or an abbreviation vLLM's parser would expand to it)."""
    for arg in args:
        if not arg.startswith("--"):
            continue
        name = flag_name(arg)
        if len(name) > len("--t") and TRUST_REMOTE_CODE.startswith(name):
            return arg
    return None


def permits_metrics_source(spec: SpeculativeDeploymentSpec, policy: AdminPolicy) -> bool:
    """Whether the operator may read this spec's metrics at all: never from a Prometheus URL the policy refuses."""
    return not _prometheus(spec, policy)


def check(spec: SpeculativeDeploymentSpec, policy: AdminPolicy) -> list[Violation]:
    """Everything in ``spec`` that ``policy`` refuses, in manifest order; empty when the spec may run."""
    out: list[Violation] = []
    serving = spec.serving
    out += _image("spec.serving.image", str(serving.image), policy)
    if spec.validation.image is not None:
        out += _image("spec.validation.image", spec.validation.image, policy)
    for i, var in enumerate(serving.env):
        reason = reserved_env_reason(var.name, policy.reserved_env)
        if reason is not None:
            field = f"spec.serving.env[{i}].name"
            out.append(Violation(field, f"{field}: {clip(var.name)} may not be set by a spec ({reason})"))
    arg = trust_remote_code_arg(serving.extra_args)
    if arg is not None and not policy.allow_trust_remote_code:
        field = f"spec.serving.extraArgs[{list(serving.extra_args).index(arg)}]"
        out.append(
            Violation(
                field,
                f"{field}: {clip(arg)} turns on --trust-remote-code (Python from the model repository runs in the "
                "pod), which the operator's policy refuses",
            )
        )
    sa = serving.service_account_name
    if sa is not None and not _matches(sa, policy.service_accounts):
        field = "spec.serving.serviceAccountName"
        out.append(
            Violation(
                field,
                f"{field}: ServiceAccount {clip(sa)} is not allowed by the operator's policy "
                f"(allowed: {_allowed_words(policy.service_accounts)})",
            )
        )
    pc = serving.priority_class_name
    if pc is not None and not _matches(pc, policy.priority_classes):
        field = "spec.serving.priorityClassName"
        out.append(
            Violation(
                field,
                f"{field}: PriorityClass {clip(pc)} is not allowed by the operator's policy "
                f"(allowed: {_allowed_words(policy.priority_classes)})",
            )
        )
    out += _prometheus(spec, policy)
    return out

"""Counting API requests two ways: the API server's own ``apiserver_request_total`` counters, and its audit log.

Why both: ``apiserver_request_total`` (verb, resource, subresource) is the number the budget is stated in, but it
counts every client (controller-manager, scheduler, kwok, the benchmark itself). The audit log names the client
(User-Agent) of every request, so the operator's own reads and writes can be counted exactly: kopf's watches and
Events carry ``kopf/<version>``, the operator's ``kube.py`` calls carry the ``kubernetes`` client's
``OpenAPI-Generator/<version>/python``, and the benchmark sends ``specdeploy-bench``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ_VERBS = frozenset({"GET", "LIST", "WATCH", "WATCHLIST", "CONNECT"})
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"})
# audit verbs are the lower-case Kubernetes verbs; map them onto the metric's HTTP-ish verbs
_AUDIT_VERB = {
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETECOLLECTION",
}
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/")

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Key = tuple[str, str]  # (verb, resource[/subresource])


def request_totals(metrics_text: str) -> Counter[Key]:
    """``apiserver_request_total`` summed over code, group, version and scope, keyed by (verb, resource)."""
    out: Counter[Key] = Counter()
    for m in _SAMPLE.finditer(metrics_text):
        labels = dict(_LABEL.findall(m.group("labels")))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        out[(labels.get("verb", ""), resource)] += int(float(m.group("value")))
    return out


def delta(after: Counter[Key], before: Counter[Key]) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for key, value in after.items():
        d = value - before.get(key, 0)
        if d > 0:
            out[key] = d
    return out


@dataclass(frozen=True)
class Split:
    reads: int
    writes: int
    by_key: dict[str, int]

    def per(self, n: int) -> dict[str, Any]:
        return {
            "reads": self.reads / n,
            "writes": self.writes / n,
            "by_verb_resource": {k: round(v / n, 3) for k, v in sorted(self.by_key.items(), key=lambda kv: -kv[1])},
        }


def split(counts: Mapping[Key, int], *, exclude_resources: Iterable[str] = ()) -> Split:
    """Reads and writes of ``counts``, leaving out ``exclude_resources`` (e.g. the nodes' lease renewals)."""
    skip = set(exclude_resources)
    reads = writes = 0
    by_key: dict[str, int] = {}
    for (verb, resource), n in counts.items():
        if resource.split("/")[0] in skip:
            continue
        if verb in READ_VERBS:
            reads += n
        elif verb in WRITE_VERBS:
            writes += n
        else:
            continue
        by_key[f"{verb} {resource}"] = by_key.get(f"{verb} {resource}", 0) + n
    return Split(reads=reads, writes=writes, by_key=by_key)


# ------------------------------------------------------------------------------------------- audit log
@dataclass(frozen=True)
class AuditRecord:
    agent: str
    verb: str
    resource: str
    namespace: str
    name: str
    code: int
    received: str  # RFC 3339 with microseconds, as the API server wrote it

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def from_operator(self) -> bool:
        return self.agent.startswith(OPERATOR_AGENTS)


class AuditLog:
    """Read the API server's JSON audit log incrementally: ``mark()`` then ``since(mark)``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, offset: int) -> list[AuditRecord]:
        out: list[AuditRecord] = []
        with self.path.open("rb") as f:
            f.seek(offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a line still being written
                rec = parse_audit_line(line)
                if rec is not None:
                    out.append(rec)
        return out


def parse_audit_line(line: bytes) -> AuditRecord | None:
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    if ev.get("stage") != "ResponseComplete":
        return None
    ref = ev.get("objectRef") or {}
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    return AuditRecord(
        agent=ev.get("userAgent", ""),
        verb=_AUDIT_VERB.get(ev.get("verb", ""), ev.get("verb", "").upper()),
        resource=resource or ev.get("requestURI", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int((ev.get("responseStatus") or {}).get("code") or 0),
        received=ev.get("requestReceivedTimestamp", ""),
    )


def operator_counts(records: Iterable[AuditRecord]) -> Counter[Key]:
    """The operator's own requests, keyed like ``request_totals``."""
    return Counter((r.verb, r.resource) for r in records if r.from_operator)

"""The validation report: check results, the verdict, and a JSON rendering that always fits 4096 bytes.

Kubernetes keeps at most 4096 bytes of a container's termination message, which is how the Job hands the report
to the operator. When the full report is larger, details are dropped in stages (examples first, then details,
then long strings) until it fits; the verdict, the error kind and every check's name and status always survive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "skip"]
REPORT_LIMIT = 4096

CHECK_NAMES = (
    "vocabulary",
    "token_ids",
    "special_tokens",
    "context_length",
    "tensor_parallel",
    "architecture",
    "parameter_ratio",
    "memory",
    "dtype",
)


@dataclass
class Check:
    """One finding: ``name`` is part of the report contract; ``details`` are numbers for humans and tools."""

    name: str
    status: Status
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


def verdict(checks: list[Check]) -> bool:
    """Compatible means no check failed (warnings and skips do not block)."""
    return not any(c.status == "fail" for c in checks)


def build(
    *,
    method: str,
    target: dict[str, Any] | None,
    draft: dict[str, Any] | None,
    checks: list[Check],
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report object; with ``error`` set the pair could not be checked (exit code 2)."""
    report: dict[str, Any] = {
        "compatible": verdict(checks) if error is None else False,
        "method": method,
        "target": target,
        "draft": draft,
        "checks": [c.to_dict() for c in checks],
    }
    failed = [c.name for c in checks if c.status == "fail"]
    warned = [c.name for c in checks if c.status == "warn"]
    if error is not None:
        report["error"] = error
        report["summary"] = f"could not check: {error.get('message', '')}"
    else:
        parts = [f"failed: {', '.join(failed)}" if failed else "", f"warnings: {', '.join(warned)}" if warned else ""]
        report["summary"] = "; ".join(p for p in parts if p) or "all checks passed"
    return report


def to_json(report: dict[str, Any], limit: int = REPORT_LIMIT) -> str:
    """Compact JSON of ``report`` in at most ``limit`` bytes (UTF-8), trimming progressively if needed."""
    text = _dump(report)
    if len(text.encode("utf-8")) <= limit:
        return text
    trimmed = json.loads(text)
    trimmed["trimmed"] = True
    for step in _TRIM_STEPS:
        step(trimmed)
        text = _dump(trimmed)
        if len(text.encode("utf-8")) <= limit:
            return text
    raise AssertionError("report cannot be trimmed below the limit")  # unreachable: the last step is tiny


def _dump(report: dict[str, Any]) -> str:
    return json.dumps(report, separators=(",", ":"), ensure_ascii=False)


def _checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    checks = report.get("checks")
    return checks if isinstance(checks, list) else []


def _keep_examples(count: int) -> Callable[[dict[str, Any]], None]:
    def step(report: dict[str, Any]) -> None:
        for check in _checks(report):
            details = check.get("details", {})
            if isinstance(details.get("examples"), list):
                details["examples"] = details["examples"][:count]
                if not details["examples"]:
                    details.pop("examples")

    return step


def _drop_passing_details(report: dict[str, Any]) -> None:
    for check in _checks(report):
        if check.get("status") in ("pass", "skip"):
            check.pop("details", None)


def _drop_file_lists(report: dict[str, Any]) -> None:
    for side in ("target", "draft"):
        if isinstance(report.get(side), dict):
            report[side].pop("files", None)


def _drop_details(report: dict[str, Any]) -> None:
    for check in _checks(report):
        check.pop("details", None)


def _slim_models(report: dict[str, Any]) -> None:
    for side in ("target", "draft"):
        model = report.get(side)
        if isinstance(model, dict):
            report[side] = {k: _cut(v, 160) for k, v in model.items() if k in ("model", "revision", "commit")}


def _cut_strings(limit: int) -> Callable[[dict[str, Any]], None]:
    def step(report: dict[str, Any]) -> None:
        report["summary"] = _cut(report.get("summary", ""), limit)
        if isinstance(report.get("error"), dict):
            report["error"]["message"] = _cut(report["error"].get("message", ""), max(limit, 200))
        for check in _checks(report):
            check["message"] = _cut(check.get("message", ""), limit)
        for side in ("target", "draft"):
            if isinstance(report.get(side), dict):
                report[side] = {k: _cut(v, max(limit, 40)) for k, v in report[side].items()}

    return step


def _last_resort(report: dict[str, Any]) -> None:
    report["target"] = None
    report["draft"] = None
    report["summary"] = ""
    report["method"] = _cut(report.get("method"), 40)
    if isinstance(report.get("error"), dict):
        report["error"] = {"kind": report["error"].get("kind"), "message": _cut(report["error"].get("message"), 200)}
    for check in _checks(report):
        check["message"] = ""


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: max(limit - 1, 0)] + "…"
    return value


_TRIM_STEPS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _keep_examples(2),
    _drop_passing_details,
    _keep_examples(0),
    _drop_file_lists,
    _drop_details,
    _slim_models,
    _cut_strings(300),
    _cut_strings(120),
    _cut_strings(60),
    _last_resort,
)

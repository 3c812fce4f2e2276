"""Does a live object already hold everything we would write? If so, we write nothing.

The API server adds defaults (imagePullPolicy, terminationMessagePath, clusterIP, ...) and other actors add
their own labels and annotations; neither is a difference worth a write. So the comparison is "desired is a
subset of live": every key we set has the value we want, lists compared element by element, and Kubernetes
quantities compared by value ("1024Mi" equals "1Gi"). This is what keeps the steady state at zero API writes
and keeps the operator from fighting a user's own labels on its children.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity


def quantity(value: str) -> Decimal | None:
    """The numeric value of a Kubernetes quantity string (``kubernetes.utils.parse_quantity``), or None.

    parse_quantity reads its number with Python's ``Decimal``, which allows spaces and underscores ("1 Gi",
    "1_000"); the API server's quantities have neither, so such text is compared as text.
    """
    if any(c.isspace() or c == "_" for c in value):
        return None
    try:
        parsed: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call,unused-ignore]
        return parsed
    except (ValueError, ArithmeticError):
        return None


def _scalar_equal(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str | int) and isinstance(have, str | int) and not isinstance(want, bool):
        qa, qb = quantity(str(want)), quantity(str(have))
        return qa is not None and qa == qb
    return False


def is_subset(desired: Any, live: Any) -> bool:
    """True when every value in ``desired`` is present and equal in ``live``."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(k in live and is_subset(v, live[k]) for k, v in desired.items() if v is not None)
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(a, b) for a, b in zip(desired, live, strict=True))
    return _scalar_equal(desired, live)


def patch_for(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that makes a live object match ``desired``: its metadata we own, and its spec."""
    meta = desired.get("metadata", {})
    out: dict[str, Any] = {"metadata": {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}}
    for key, value in desired.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            out[key] = value
    return out

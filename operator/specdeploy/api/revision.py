"""The revision id: a short, stable name for "what the pods serve", computed from the spec alone.

Only the serving-relevant part of the spec goes in (target, draft, speculation less its control group and adaptive
settings, serving), so scaling
(``replicas``) or tuning the rollback, metrics or validation settings never creates a new revision, re-runs
the compatibility check or restarts GPU pods. The hash is taken over the *defaulted* model, dumped as
canonical JSON (sorted keys, no whitespace, unset optional fields left out), so writing a default explicitly,
reordering keys, or the API server filling in defaults all give the same id. Adding an optional field to the
API later keeps existing ids; changing a default value changes them (the pods would change too).
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from specdeploy.api.constants import REVISION_LENGTH
from specdeploy.api.spec import SpeculativeDeploymentSpec

SERVING_FIELDS: Final = frozenset({"target", "draft", "speculation", "serving"})
# Parts of the serving sections that do not change the speculative pods (issue 14, api/payoff.py): the control group
# is other pods, and the adaptive loop's settings only decide when the operator proposes a schedule (the schedule
# itself, speculation.numSpeculativeTokensPerBatchSize, is hashed).
NOT_HASHED: Final = {"speculation": {"control", "adaptive"}}


def canonical_serving_spec(spec: SpeculativeDeploymentSpec) -> str:
    """The exact text that is hashed: canonical JSON of the serving-relevant part of the defaulted spec."""
    data = spec.model_dump(
        mode="json", by_alias=True, exclude_none=True, include=set(SERVING_FIELDS), exclude=NOT_HASHED
    )
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def revision_id(spec: SpeculativeDeploymentSpec) -> str:
    """10 lowercase hex characters of SHA-256 over :func:`canonical_serving_spec`."""
    digest = hashlib.sha256(canonical_serving_spec(spec).encode("utf-8")).hexdigest()
    return digest[:REVISION_LENGTH]


def serving_snapshot(spec: SpeculativeDeploymentSpec) -> dict[str, object]:
    """The serving-relevant part of the spec as data (camelCase): what a ControllerRevision keeps of a revision."""
    snapshot: dict[str, object] = json.loads(canonical_serving_spec(spec))
    return snapshot

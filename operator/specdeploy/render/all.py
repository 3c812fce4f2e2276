"""Everything one SpeculativeDeployment becomes, in creation order: what ``specdeploy render`` prints.

Order: the validation Job (when one runs for this spec), then the Deployment (a LeaderWorkerSet when one replica
needs more GPUs than one node has), then the Service, then the PodDisruptionBudget (replicas >= 2) and the
InferencePool (when enabled). Defaults are
applied by parsing with the API models, exactly as the API server would have filled them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specdeploy.api.resource import SpeculativeDeployment
from specdeploy.api.revision import revision_id
from specdeploy.render.ecosystem import render_optional
from specdeploy.render.job import needs_validation_job, render_validation_job
from specdeploy.render.meta import OwnerRef, owner_for
from specdeploy.render.service import render_service
from specdeploy.render.workload import render_workload


def render_all(sd_obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Children of ``sd_obj`` (a manifest dict); ownerReferences only when ``metadata.uid`` is present.

    Raises ``pydantic.ValidationError`` for an invalid object, with locations such as ``spec.target.model``.
    """
    sd = SpeculativeDeployment.model_validate(sd_obj)
    owner: OwnerRef | None = owner_for(sd.name, sd.uid) if sd.uid else None
    revision = revision_id(sd.spec)
    objects: list[dict[str, Any]] = []
    if needs_validation_job(sd.spec):
        objects.append(render_validation_job(sd.name, sd.namespace, sd.spec, revision, owner=owner))
    objects.append(render_workload(sd.name, sd.namespace, sd.spec, revision, owner=owner))
    objects.append(render_service(sd.name, sd.namespace, sd.spec, revision, owner=owner))
    objects.extend(render_optional(sd.name, sd.namespace, sd.spec, revision, owner=owner))
    return objects

"""Pure renderers: a SpeculativeDeployment spec in, the Kubernetes objects the operator creates out.

No I/O and no API calls: ``specdeploy render`` and the operator call the same functions, so what a user
previews offline is what the cluster gets.
"""

from specdeploy.render.all import render_all
from specdeploy.render.deployment import render_deployment, startup_allowance
from specdeploy.render.job import needs_validation_job, render_validation_job, validator_args
from specdeploy.render.meta import OwnerRef, owner_for
from specdeploy.render.names import deployment_name, endpoint, job_name, service_name
from specdeploy.render.service import render_service
from specdeploy.render.vllm_args import speculative_config, vllm_args

__all__ = [
    "OwnerRef",
    "deployment_name",
    "endpoint",
    "job_name",
    "needs_validation_job",
    "owner_for",
    "render_all",
    "render_deployment",
    "render_service",
    "render_validation_job",
    "service_name",
    "speculative_config",
    "startup_allowance",
    "validator_args",
    "vllm_args",
]

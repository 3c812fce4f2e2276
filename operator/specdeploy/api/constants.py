"""Names that identify the SpeculativeDeployment kind and the defaults every other part must agree on.

They live in one module so the CRD, the renderers, the operator's API calls and the Helm chart cannot drift
apart: change a name here and every user of it follows.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "specdeploy.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "SpeculativeDeployment"
LIST_KIND: Final = "SpeculativeDeploymentList"
PLURAL: Final = "speculativedeployments"
SINGULAR: Final = "speculativedeployment"
SHORT_NAMES: Final = ("sd", "specdeploy")
CATEGORIES: Final = ("specdeploy", "llm")
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Pinned images. The vLLM tag matches the release whose `serve` options are checked by the unit tests
# (tests/fixtures/vllm/vllm-0.32-serve-options.json); the validator tag follows the operator's version.
DEFAULT_VLLM_IMAGE: Final = "vllm/vllm-openai:v0.32.0"
DEFAULT_VALIDATOR_IMAGE: Final = "ghcr.io/specdeploy/validator:0.1.0"

# Children append "-validate-<10 hex>" (20 characters) to the name, and a Job's name becomes the value of its
# pods' `job-name` label, which Kubernetes caps at 63 characters: 63 - 20 = 43.
MAX_NAME_LENGTH: Final = 43
REVISION_LENGTH: Final = 10
# A multi-node replica is a LeaderWorkerSet named <name>-<revision>[-nospec]; LWS makes a StatefulSet <lws> for the
# leaders and one <lws>-<group index> per group for the workers, and the StatefulSet controller labels each pod
# controller-revision-hash=<statefulset>-<10-character hash>, a label value capped at 63 characters, so a
# StatefulSet name may have 52 at most (kubernetes/kubernetes#64023: longer ones never get their pods). With the
# group index up to 999 (spec.replicas <= 1000): 52 - len("-999") - len("-nospec") - 1 - 10 = 30.
MAX_MULTI_NODE_NAME_LENGTH: Final = 52 - 4 - len("-nospec") - 1 - REVISION_LENGTH

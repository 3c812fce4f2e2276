"""specdeploy: a Kubernetes operator for speculative-decoding inference on vLLM.

The package is laid out as a pure core (``api``, ``render``, ``monitor``, ``rollout``, ``validate``) and a thin
shell (``handlers`` for kopf wiring, ``kube`` for API calls, ``cli`` for the command line).
"""

__version__ = "0.1.0"

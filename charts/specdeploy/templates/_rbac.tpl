{{/*
The operator's API permissions, written once and used both by the namespaced Roles and by the ClusterRole.
Each rule is a call the operator makes (tests/chart/conftest.py OPERATOR_RULES holds the same list, and
tests/chart/test_chart_install.py records the calls of a full reconcile against it); docs/install.md explains
each one. Never a wildcard, never Secrets: the vLLM pods read the Hugging Face token through secretKeyRef,
which the kubelet resolves. Call with (dict "root" . "peeringResource" "kopfpeerings" | "clusterkopfpeerings").
*/}}
{{- define "specdeploy.rbacRules" -}}
# SpeculativeDeployments: kopf lists and watches them, and merge-patches metadata to put its finalizer on
# and take it off. The operator never edits spec.
- apiGroups: ["specdeploy.io"]
  resources: ["speculativedeployments"]
  verbs: ["list", "watch", "patch"]
# Their status subresource: conditions, revision, validation and acceptance results (merge patches).
- apiGroups: ["specdeploy.io"]
  resources: ["speculativedeployments/status"]
  verbs: ["patch"]
# Children carry ownerReferences with blockOwnerDeletion; clusters running the OwnerReferencesPermissionEnforcement
# admission plugin (OpenShift) let only whoever may update the owner's finalizers set it.
- apiGroups: ["specdeploy.io"]
  resources: ["speculativedeployments/finalizers"]
  verbs: ["update"]
# The vLLM Deployments, one per revision: watched, created, patched (replicas, a hand-edited template), and the
# Deployment of a revision no longer serving deleted (an aborted canary, the old revision after a promotion;
# get: re-read after a create that met an existing one). The rest goes with the owner reference.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Revision history (which revision served, which failed): watched, read, then created by server-side apply
# (a patch that creates, so the API server checks both verbs); verdicts merge-patched; the oldest pruned
# beyond the history limit.
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Service in front of the vLLM pods, like the Deployment.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Pods, watched only: the serving pods' IPs to scrape /metrics from, and the validator pod's termination
# message (its report).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# The PodDisruptionBudget of the vLLM pods (replicas >= 2): watched, created, patched like the Service, and
# deleted when replicas drops below 2.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- if .root.Values.inferencePool.enabled }}
# Gateway API Inference Extension pools (spec.routing.inferencePool): created (get after a 409), patched when they
# differ, deleted when disabled. Not watched: the operator remembers what it applied.
- apiGroups: ["inference.networking.k8s.io"]
  resources: ["inferencepools"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
{{- if .root.Values.leaderWorkerSet.enabled }}
# LeaderWorkerSets (leaderworkerset.x-k8s.io) of multi-node revisions, one per revision like the Deployments:
# watched, created (get after a 409), patched (replicas, template), deleted when their revision no longer runs.
- apiGroups: ["leaderworkerset.x-k8s.io"]
  resources: ["leaderworkersets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}
# The validation Job: watched, created; an errored one is deleted to retry it.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Events that say in plain words what happened: core/v1 Events on the object, created by the operator under names
# derived from each transition (a 409 means already said; no get needed), and kopf's log Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .root.Values.operator.peering.enabled }}
# kopf peering: keep-alives in the peering object's status (patch), and watching the other operators'.
- apiGroups: ["kopf.dev"]
  resources: [{{ .peeringResource | quote }}]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end }}

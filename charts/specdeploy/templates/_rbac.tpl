{{/*
The operator's API permissions, written once and used both by the namespaced Roles and by the ClusterRole.
Each rule is what the operator actually calls; docs/install.md explains each one. Never a wildcard, never
Secrets: the vLLM pods read the Hugging Face token through secretKeyRef, which the kubelet resolves.
Call with (dict "root" . "peeringResource" "kopfpeerings" | "clusterkopfpeerings").
*/}}
{{- define "specdeploy.rbacRules" -}}
# SpeculativeDeployments: watched; metadata patched for kopf's finalizer and progress annotations.
- apiGroups: ["specdeploy.io"]
  resources: ["speculativedeployments"]
  verbs: ["get", "list", "watch", "patch"]
# Their status subresource: conditions, revision, validation and acceptance results.
- apiGroups: ["specdeploy.io"]
  resources: ["speculativedeployments/status"]
  verbs: ["get", "patch"]
# The vLLM Deployments the operator renders and rolls between revisions.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Revision history of each SpeculativeDeployment (which revision served, which failed).
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Service in front of the vLLM pods.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The vLLM pods' IPs to scrape /metrics from, and the validator pod's termination message (its report).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# The validation Jobs; a finished one is deleted when the spec changes.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Events that say in plain words what happened: kopf posts core/v1 Events; events.k8s.io/v1 is the same
# store under the newer API, for the operator's own Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- if .root.Values.operator.peering.enabled }}
# kopf peering: keep-alives in the peering object's status, and seeing the other operators.
- apiGroups: ["kopf.dev"]
  resources: [{{ .peeringResource | quote }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

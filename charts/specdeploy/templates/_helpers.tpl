{{/*
Names and labels shared by every template, so that one place decides how objects are named and selected.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "specdeploy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name prefix of every object: fullnameOverride, or the release name when it already contains the
chart name, or "release-chart". Truncated to 52 characters so that suffixes still fit a 63-character label.
*/}}
{{- define "specdeploy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The helm.sh/chart label value: name-version, with "+" (not allowed in labels) replaced. */}}
{{- define "specdeploy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of this release. */}}
{{- define "specdeploy.labels" -}}
helm.sh/chart: {{ include "specdeploy.chart" . }}
{{ include "specdeploy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: specdeploy
{{- end }}

{{/* Selector labels: name and instance only, because a Deployment's selector can never change. */}}
{{- define "specdeploy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "specdeploy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "specdeploy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "specdeploy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. Call with (dict "image" X "chart" .Chart). */}}
{{- define "specdeploy.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* The namespaces vLLM pods are looked for in by the PodMonitor; empty means every namespace. */}}
{{- define "specdeploy.vllmNamespaces" -}}
{{- if .Values.vllmPodMonitor.namespaces }}
{{- toJson .Values.vllmPodMonitor.namespaces }}
{{- else }}
{{- toJson .Values.watchNamespaces }}
{{- end }}
{{- end }}

{{/* The namespaces the admission policy applies in; empty means every namespace. */}}
{{- define "specdeploy.admissionNamespaces" -}}
{{- if .Values.admissionPolicy.namespaces }}
{{- toJson .Values.admissionPolicy.namespaces }}
{{- else }}
{{- toJson .Values.watchNamespaces }}
{{- end }}
{{- end }}

{{/* Names are cut to 63 characters: the limit of a DNS label and of a label value. */}}

{{- define "kadence.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kadence.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name derived from the full name with a suffix, still at most 63 characters. */}}
{{- define "kadence.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "kadence.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "kadence.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kadence.labels" -}}
helm.sh/chart: {{ include "kadence.chart" . }}
{{ include "kadence.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kadence
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kadence.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kadence.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "kadence.operatorSelectorLabels" -}}
{{ include "kadence.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kadence.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kadence.fullname" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kadence.workloadServiceAccountName" -}}
{{- default (include "kadence.suffixed" (list . "workloads")) .Values.workloads.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The namespaces the workloads ServiceAccount is created in: listed, else the watched ones, else the release's. */}}
{{- define "kadence.workloadNamespaces" -}}
{{- $namespaces := .Values.workloads.serviceAccount.namespaces | default .Values.watch.namespaces | default (list .Release.Namespace) -}}
{{- toJson (uniq $namespaces) -}}
{{- end -}}

{{/* registry/repository:tag@digest; the tag defaults to the chart's appVersion. */}}
{{- define "kadence.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- $registry := $root.Values.global.imageRegistry | default $image.registry -}}
{{- $reference := printf "%s/%s:%s" $registry $image.repository ($image.tag | default $root.Chart.AppVersion) -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $reference $image.digest -}}
{{- else -}}
{{- $reference -}}
{{- end -}}
{{- end -}}

{{- define "kadence.imagePullSecrets" -}}
{{- $secrets := concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The coordination.k8s.io Lease replicas elect their leader through; empty when a single replica runs alone. */}}
{{- define "kadence.leaseName" -}}
{{- if gt (int .Values.operator.replicas) 1 -}}
{{- .Values.operator.leaderElection.leaseName | default (include "kadence.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Object storage: the bundled MinIO when enabled, else the configured endpoint and Secret.
With neither, the operator starts without storage and reports it on every object that needs it.
*/}}
{{- define "kadence.storage.configured" -}}
{{- if or .Values.minio.enabled .Values.storage.endpoint -}}true{{- end -}}
{{- end -}}

{{- define "kadence.storage.endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "%s-minio.%s.svc:%d" .Release.Name .Release.Namespace (int (dig "service" "port" 9000 .Values.minio)) -}}
{{- else -}}
{{- .Values.storage.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "kadence.storage.secretName" -}}
{{- if .Values.minio.enabled -}}
{{- printf "%s-minio" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "storage.existingSecret is required with storage.endpoint: the name of a Secret holding the access and secret key" .Values.storage.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The operator's KADENCE_TENANCY: auto is minio with the bundled MinIO, else shared. */}}
{{- define "kadence.storage.tenancy" -}}
{{- if eq .Values.storage.tenancy "auto" -}}
{{- if .Values.minio.enabled -}}minio{{- else -}}shared{{- end -}}
{{- else -}}
{{- .Values.storage.tenancy -}}
{{- end -}}
{{- end -}}

{{- define "kadence.storage.accessKeyKey" -}}
{{- if .Values.minio.enabled -}}root-user{{- else -}}{{ .Values.storage.secretKeys.accessKey }}{{- end -}}
{{- end -}}

{{- define "kadence.storage.secretKeyKey" -}}
{{- if .Values.minio.enabled -}}root-password{{- else -}}{{ .Values.storage.secretKeys.secretKey }}{{- end -}}
{{- end -}}

{{- define "kadence.monitoring.available" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}

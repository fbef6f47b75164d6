{{/* The rules on namespaced objects, shared by the ClusterRole (all namespaces) and the per-namespace Roles. */}}
{{- define "kadence.namespacedRules" -}}
# The eight kinds: watched, annotated (kopf's progress), finalized. TrainingRuns are created by
# MonitorPolicies that retrain and ModelVersions by TrainingRuns that register a model.
- apiGroups: [kadence.dev]
  resources: [datasets, featuresets, inferenceservices, monitorpolicies, batchpredictions, erasurerequests]
  verbs: [get, list, watch, patch]
- apiGroups: [kadence.dev]
  resources: [trainingruns, modelversions]
  verbs: [get, list, watch, patch, create]
- apiGroups: [kadence.dev]
  resources: [datasets/status, featuresets/status, trainingruns/status, modelversions/status, inferenceservices/status, monitorpolicies/status, batchpredictions/status, erasurerequests/status]
  verbs: [get, patch]
# Children carry ownerReferences with blockOwnerDeletion, which the
# OwnerReferencesPermissionEnforcement admission plugin allows only with this right.
- apiGroups: [kadence.dev]
  resources: [datasets/finalizers, featuresets/finalizers, trainingruns/finalizers, modelversions/finalizers, inferenceservices/finalizers, monitorpolicies/finalizers, batchpredictions/finalizers, erasurerequests/finalizers]
  verbs: [update]
# Children: Jobs for ingest/materialize/train/monitor; Deployments, Services, ConfigMaps,
# autoscalers and routes for model servers.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
# Each InferenceService's feedback-token Secret: created once (a 409 means it exists), never
# read, listed or changed by the operator (the model servers get it through secretKeyRef).
# The namespace's store keys, Secret kadence-tenant-storage: created (server-side apply) and
# kept up to date by name; the operator reads and lists no other Secret.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [kadence-tenant-storage]
  verbs: [get, patch]
# Read-only: why a Job's pod failed (its last log lines) and whether model servers are ready.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Events about handler progress, stage changes, promotions and rollbacks.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
